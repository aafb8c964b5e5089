-- A usage error inside a scenario (a typo'd method): the run exits 2.
scenario("passes", function(t) end)
scenario("typo", function(t)
  t:crsh(t:instances()[1])
end)

-- expect: bad t:sleep duration: "5 s" is not a duration
scenario("sleeps badly", function(t)
  t:note("about to sleep")
  t:sleep("5 s") -- @error
end)

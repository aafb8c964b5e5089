-- A busy loop that catches every error, including the timeout's: it must still be stopped.
scenario("busy loop that swallows errors", function(t)
  while true do
    pcall(function() while true do end end)
  end
end)

scenario("runs after the swallowing loop", function(t)
  t:note("after pcall spin: the run went on")
end)

-- Scenarios that never end on their own: each must be stopped by its timeout, and the run
-- must go on with the next one. Lines tagged "-- @name" are located by test_verdicts.sh.
scenario("busy loop", function(t)
  t:note("spin: started")
  while true do end -- @spin
end)

scenario("busy loop with its own timeout", { timeout = "1s" }, function(t)
  local x = 0
  while true do x = x + 1 end -- @spin_opt
end)

scenario("stuck in a long sleep", { timeout = 0.5 }, function(t)
  t:sleep(1000) -- @sleep
end)

scenario("runs after the timeouts", function(t)
  t:note("after timeouts: the run went on")
end)

-- For test_orphans.sh: services whose processes fork children of their own, one of them
-- paused, and a scenario that waits long enough for the test to SIGKILL the harness.
local procs = require "procs"
local MARK = { FL_IT_MARK = procs.mark }

topology {
  services = {
    forker = { cmd = { "sh", "-c", "sleep 1000 & sleep 1000 & exec sleep 1000" }, ready = "none",
               replicas = 2, env = MARK },
    web = { cmd = { "echo-svc" }, env = MARK },
  },
}

scenario("the harness is killed mid-scenario", { timeout = "60s" }, function(t)
  for n = 1, 2 do
    local f = t:instance("forker", n)
    t:eventually(function() return select(2, procs.group(f)) == 3 end, "5s",
      f.name .. " runs its three sleeps")
  end
  t:pause(t:instance("forker", 1))
  t:pause(t:instance("web"))
  t:note("waiting to be killed")
  t:sleep(50)
end)

-- FAULTLINE_BUG=no-deregister: echo-svc skips its deregistration on SIGTERM, the defect the
-- suites must catch. A stopped replica stays in the catalog, critical once its check fails,
-- where a correct one (discovery.lua) leaves at once. Every scenario must pass.
local disco = require "disco"

local env = disco.env

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2,
             env = env { ECHO_CHECK_INTERVAL = "100ms", FAULTLINE_BUG = "no-deregister" } },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = env { PINGER_CONSUL_SERVICE = "echo", PINGER_INTERVAL_MS = 20,
                           PINGER_TIMEOUT_MS = 500 } },
    probe = { cmd = { "sh", "-c", disco.PROBE }, ready = "none",
              env = env { PROBE_SERVICE = "echo" } },
  },
}

scenario("a stopped replica that does not deregister stays registered, critical", function(t)
  t:eventually(function() return #t:healthy("echo") == 2 end, "5s", "two healthy replicas")
  local c, victim = t:instance("client"), t:instance("echo", 1)
  t:stop(victim)
  t:expect(victim.exit_code == 0, "echo-1 exited 0 all the same")
  t:expect(t:log(victim):find("not deregistering from consul (FAULTLINE_BUG=no-deregister)", 1, true) ~= nil,
    "echo-1 says it did not deregister")
  t:eventually(function() return disco.names(t:healthy("echo")) == "echo-2" end, "1s",
    "its check goes critical within about one interval")
  t:eventually(function() return disco.ids(t:consul_view(c, "echo")) == "echo-2" end, "1s",
    "so it leaves the client's (passing) view")
  t:eventually(function()
    local p = disco.next_probes(t, t:instance("probe"), 1)[1]
    return p.n == 2 and p.critical == 1 and p.ids == "echo-1,echo-2,"
  end, "2s", "but the probe still sees echo-1 registered, critical")
  t:always(function()
    local l = disco.probes(t, t:instance("probe"))
    return l[#l].n == 2
  end, "600ms", "and it stays registered")
end)

-- Discovery through the fake Consul: three echo replicas register themselves with an HTTP
-- check; a pinger finds them with a blocking health query and calls whatever Consul says
-- is healthy. Consul tells each client its own links, so faults still target one link.
local pinger = require "pinger"

topology {
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 3, ready = "healthy",
             env = { ECHO_CHECK_INTERVAL = "100ms" } },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = { PINGER_CONSUL_SERVICE = "echo", PINGER_INTERVAL_MS = 20,
                       PINGER_TIMEOUT_MS = 500 } },
  },
}

local function all_healthy(t)
  t:eventually(function() return #t:healthy("echo") == 3 end, "5s", "three healthy replicas")
end

scenario("replicas register, pass their checks, and the client is told its links", function(t)
  all_healthy(t)
  local c = t:instance("client")
  local view = t:consul_view(c, "echo")
  t:expect(#view == 3, "the client sees three replicas")
  local links = {}
  for _, l in pairs(t:link(c, "echo"):stats().links) do links[l.listen] = true end
  for _, e in ipairs(view) do
    t:expect(links[e.address .. ":" .. e.port], e.id .. " is answered as the client's link")
  end
  local pings = pinger.summary(pinger.next(t, c, pinger.mark(t, c, 3), 12))
  t:expect(pings.ok == 12, "the client's discovered calls succeed")
end)

scenario("a crashed replica leaves the client's view, and returns after a restart", function(t)
  all_healthy(t)
  local c, victim = t:instance("client"), t:instance("echo", 2)
  t:crash(victim)
  t:eventually(function() return #t:consul_view(c, "echo") == 2 end, "3s",
    "echo-2 leaves the client's view once its check fails")
  local after = pinger.next(t, c, pinger.mark(t, c, 3), 12)
  for _, p in ipairs(after) do
    t:expect(p.result == "ok" and p.instance ~= "echo-2", "answered by a live replica")
  end
  t:restart(victim)
  t:eventually(function() return #t:consul_view(c, "echo") == 3 end, "3s", "echo-2 is back")
end)

scenario("with Consul down, the client keeps calling what it last knew", function(t)
  all_healthy(t)
  local c = t:instance("client")
  pinger.next(t, c, 0, 3)
  t.consul:down()
  local during = pinger.summary(pinger.next(t, c, pinger.mark(t, c, 3), 12))
  t:expect(during.ok == 12, "calls go on while Consul is down")
  t.consul:up()
  all_healthy(t)
end)

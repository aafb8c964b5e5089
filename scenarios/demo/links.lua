-- Faults on links: a pinger calls two echo replicas through faultline's proxies, and each
-- scenario degrades those links and checks what the pinger saw.
local pinger = require "pinger"

topology {
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2 },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = { PINGER_INTERVAL_MS = 20, PINGER_TIMEOUT_MS = 500 } },
  },
}

scenario("latency on the links is what the client sees", function(t)
  local c = t:instance("client")
  local before = pinger.summary(pinger.next(t, c, 0, 10))
  t:expect(before.ok == 10 and before.median_ms < 50, "fast and healthy at first")

  local slow = t:link(c, "echo"):latency { ms = 100 }
  local during = pinger.summary(pinger.next(t, c, pinger.mark(t, c, 2), 10))
  t:expect(during.ok == 10, "slow, but every request answered")
  t:expect(during.median_ms >= 100, "about 100 ms added: median " .. tostring(during.median_ms))
  t:expect(slow:stats().fired, "the fault fired")

  slow:remove()
  local after = pinger.summary(pinger.next(t, c, pinger.mark(t, c, 2), 10))
  t:expect(after.median_ms < 50, "fast again once removed")
end)

scenario("a partition from one replica, then heal", function(t)
  local c, echo1, echo2 = t:instance("client"), t:instance("echo", 1), t:instance("echo", 2)
  local to1, to2 = pinger.target(t, c, echo1), pinger.target(t, c, echo2)
  pinger.next(t, c, 0, 4)
  local cut = t:partition(c, echo1)
  local mark = pinger.mark(t, c, 0)
  local lost = pinger.summary(pinger.next(t, c, mark, 2, "5s", to1))
  t:expect(lost.timeout == 2, "requests to echo-1 time out")
  local kept = pinger.next(t, c, mark, 10, "5s", to2)
  t:expect(pinger.summary(kept).ok == 10, "requests to echo-2 still succeed")
  for _, p in ipairs(kept) do t:expect(p.instance == "echo-2", "answered by echo-2") end

  cut:remove()
  local healed = pinger.summary(pinger.next(t, c, pinger.mark(t, c, 2), 10))
  t:expect(healed.ok == 10, "every request succeeds after the heal")
end)

scenario("reset the first two connections, then let everything through", function(t)
  local c = t:instance("client")
  pinger.next(t, c, 0, 2)
  local mark = pinger.mark(t, c, 0) -- the ping in flight now is one of the first two
  local resets = t:link(c, "echo"):reset_peer { first = 2 }
  local after = pinger.summary(pinger.next(t, c, mark, 12))
  t:expect(after.reset == 2, "exactly two requests were reset: " .. tostring(after.reset))
  t:expect(after.ok == 10, "and the rest succeeded")
  local counted = resets:stats().resets
  t:expect(counted == 2, "the fault counted two resets: " .. counted)
end)

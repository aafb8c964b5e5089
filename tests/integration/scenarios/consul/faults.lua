-- Breaking the fake Consul with t.consul, as the clients of services/ live it: three
-- echo-svc replicas registered with an HTTP check every 100 ms, a pinger that follows the
-- passing ones with blocking queries, a probe timing agent/self on its own agent, and a
-- late echo started mid-scenario. Every scenario must pass; bounds are loose on purpose
-- (2-core CI machines, ASan builds).
local disco = require "disco"

local env = disco.env

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 3, ready = "healthy",
             env = env { ECHO_CHECK_INTERVAL = "100ms" } },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = env { PINGER_CONSUL_SERVICE = "echo", PINGER_INTERVAL_MS = 20,
                           PINGER_TIMEOUT_MS = 500 } },
    probe = { cmd = { "sh", "-c", disco.PROBE }, ready = "none",
              env = env { PROBE_SERVICE = "echo" } },
    late = { cmd = { "echo-svc" }, start = false, env = env { ECHO_CHECK_INTERVAL = "100ms" } },
  },
}

local INFLIGHT = 3

local function targets_are(t, c, names)
  local links, want = disco.links(t, c, "echo"), {}
  for _, n in ipairs(names) do want[#want + 1] = links[n] end
  table.sort(want)
  return table.concat(disco.targets(t, c), ",") == table.concat(want, ",")
end

-- Setup waited for the checks (ready = "healthy"); the client follows within a moment.
local function steady_start(t, c)
  t:assert(#t:healthy("echo") == 3, "three healthy replicas after setup")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "3s",
    "the client's targets are its three links")
end

scenario("down: the client keeps its targets and its calls; registrations wait for up", function(t)
  local c, probe = t:instance("client"), t:instance("probe")
  steady_start(t, c)
  local lists = #disco.target_lists(t, c)
  t.consul:down()
  local down = disco.next_probes(t, probe, 2, "5s", "probe lines while down")
  t:expect(down[2].self == 0, "agents refuse connections while down: " .. down[2].line)
  t:start("late-1") -- listens, then fails to register and retries
  t:eventually(function() return t:log("late-1"):find("registration failed: connection refused", 1, true) end,
    "3s", "late-1's registration is refused")
  local ps = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 20)
  t:expect(disco.count(ps, "ok") == 20, "the client's calls go on while Consul is down: " .. disco.describe(ps))
  t:expect(targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) and #disco.target_lists(t, c) == lists,
    "the client keeps the targets it last knew")
  t:eventually(function() return t:log(c):find("consul query failed", 1, true) end, "3s",
    "the client notices and retries")
  t:expect(#t:healthy("late") == 0, "late-1 is not registered while Consul is down")
  local index = t.consul:index()
  t:sleep("300ms")
  t.consul:up()
  t:eventually(function() return #t:healthy("late") == 1 end, "5s",
    "late-1's retried registration succeeds after up, and its check passes")
  t:expect(t:log("late-1"):find("registered with consul", 1, true) ~= nil, "late-1 logged it")
  t:expect(t.consul:index() > index, "the catalog's index moved: " .. index .. " -> " .. t.consul:index())
  t:eventually(function() return disco.next_probes(t, probe, 1)[1].self == 200 end, "3s",
    "the agents answer again")
  -- discovery works again: a crash reaches the client
  t:crash(t:instance("echo", 3))
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2" }) end, "4s",
    "after up, the client follows Consul again (echo-3 crashed)")
end)

scenario("latency: every answer leaves late, so views change late", function(t)
  local c, probe = t:instance("client"), t:instance("probe")
  steady_start(t, c)
  local base = disco.next_probes(t, probe, 3)
  t:expect(base[3].self == 200 and base[3].secs < 0.3, "agent/self is quick at first: " .. base[3].line)
  t.consul:latency("400ms")
  local slow = disco.next_probes(t, probe, 2, "10s") -- the first may have started before
  t:expect(slow[2].self == 200 and slow[2].secs >= 0.38,
    "agent/self takes the 400ms: " .. slow[2].line)
  -- a crash: the catalog knows at once, the client is told 400ms later
  t:crash(t:instance("echo", 1))
  t:eventually(function() return #t:healthy("echo") == 2 end, "1s", "echo-1 goes critical")
  local t1 = t:now()
  t:eventually(function() return targets_are(t, c, { "echo-2", "echo-3" }) end, "4s",
    "the client drops echo-1, late")
  local lag = t:now() - t1
  t:expect(lag >= 0.25, string.format("the client's view changed %.3fs after the catalog's", lag))
  t.consul:heal() -- latency back to 0 (with down, freeze and stale)
  local fast = disco.next_probes(t, probe, 3, "10s")
  t:expect(fast[3].self == 200 and fast[3].secs < 0.3, "quick again after heal: " .. fast[3].line)
end)

scenario("freeze: a crash is not seen by the client until the thaw", function(t)
  local c, probe = t:instance("client"), t:instance("probe")
  local links = disco.links(t, c, "echo")
  steady_start(t, c)
  t.consul:freeze()
  t:crash(t:instance("echo", 2))
  local mark = disco.mark(t, c, INFLIGHT)
  t:always(function()
    return #t:healthy("echo") == 3 and #t:consul_view(c, "echo") == 3 and
        targets_are(t, c, { "echo-1", "echo-2", "echo-3" })
  end, "800ms", "nothing changes while frozen: healthy, the view and the client's targets")
  local failed = 0
  for _, p in ipairs(disco.pings(t, c)) do
    if p.seq > mark and p.target == links["echo-2"] and p.result ~= "ok" then failed = failed + 1 end
  end
  t:expect(failed >= 2, "the client still calls the dead echo-2 (" .. failed .. " failed pings)")
  local pr = disco.next_probes(t, probe, 1, "5s")[1]
  t:expect(pr.self == 200, "reads that need not wait still answer: " .. pr.line)
  t.consul:thaw()
  t:eventually(function() return #t:healthy("echo") == 2 end, "1s", "the thaw applies echo-2's failed check")
  t:eventually(function() return disco.ids(t:consul_view(c, "echo")) == "echo-1,echo-3" end, "1s",
    "echo-2 leaves the client's view")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-3" }) end, "2s",
    "the client's held query returns and it drops echo-2")
end)

scenario("stale: the client's view lags a crash by about the staleness", function(t)
  local c = t:instance("client")
  steady_start(t, c)
  t.consul:stale("2s")
  -- the catalog 2s ago may predate the registrations: wait until the stale view has them
  t:eventually(function() return #t:consul_view(c, "echo") == 3 end, "4s",
    "the stale view catches up with the registrations")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "4s",
    "and so do the client's targets")
  t:crash(t:instance("echo", 2))
  t:eventually(function() return #t:healthy("echo") == 2 end, "1s",
    "the live catalog has echo-2 critical within an interval")
  local t1 = t:now()
  t:expect(#t:consul_view(c, "echo") == 3, "the client's view still has echo-2")
  t:eventually(function() return #t:consul_view(c, "echo") == 2 end, "5s", "the view catches up")
  local lag = t:now() - t1
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-3" }) end, "2s",
    "the client's blocking query wakes when its stale view catches up")
  local lag2 = t:now() - t1
  t:expect(lag >= 1.6 and lag <= 3.5, string.format("the view lagged the catalog by %.3fs (~2s)", lag))
  t:expect(lag2 >= 1.6 and lag2 <= 4, string.format("the client's targets lagged by %.3fs", lag2))
  t.consul:stale(0)
  t:expect(#t:consul_view(c, "echo") == 2, "stale(0): the view is current again")
end)

scenario("flap: the checks alternate, t:healthy between 0 and 3, and steady stops it", function(t)
  local c = t:instance("client")
  steady_start(t, c)
  t.consul:flap("echo", "300ms")
  t:expect(#t:healthy("echo") == 0, "flapping starts critical at once")
  local seen, changes, last = {}, 0, 0
  t:always(function()
    local n = #t:healthy("echo")
    seen[n] = (seen[n] or 0) + 1
    if n ~= last then changes, last = changes + 1, n end
    return n == 0 or n == 3
  end, "1.65s", "all three flap together: t:healthy is 0 or 3")
  t:expect(seen[0] and seen[3], "both 0 and 3 were seen")
  t:expect(changes >= 3, "t:healthy changed " .. changes .. " times in 1.65s of a 300ms flap")
  local empty, full = 0, 0
  for _, l in ipairs(disco.target_lists(t, c)) do
    if #l == 0 then empty = empty + 1 elseif #l == 3 then full = full + 1 end
  end
  t:expect(empty >= 2 and full >= 3, "the client's targets flap too: " .. empty .. " empty lists, " .. full .. " full")
  t:expect(disco.count(disco.pings(t, c), "no_target") >= 1, "and it had moments with nothing to call")
  t.consul:steady("echo")
  t:eventually(function() return #t:healthy("echo") == 3 end, "1s", "steady: the checks' own results again")
  t:always(function() return #t:healthy("echo") == 3 end, "700ms", "and they stay passing")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "2s",
    "the client's targets settle")
end)

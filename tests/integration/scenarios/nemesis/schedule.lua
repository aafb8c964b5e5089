-- t:nemesis as a scenario sees it: a seeded random schedule of faults on two echo-svc
-- replicas that a pinger (services/pinger) pings through its links. Each scenario must pass;
-- test_nemesis.sh also compares the "plan ..." notes of runs with the same and with other
-- seeds, and reads the JSON report for the fault intervals. Timings are loose on purpose:
-- CI machines are small and ASan builds slow.
local pings = require "pings"
local procs = require "procs"

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2, env = { FL_IT_MARK = procs.mark } },
    pinger = { cmd = { "pinger" }, needs = { "echo" },
               env = { FL_IT_MARK = procs.mark, PINGER_INTERVAL_MS = 25, PINGER_TIMEOUT_MS = 800 } },
  },
}

local ALL = { "crash", "pause", "partition", "latency", "reset_peer", "consul_down", "broker_restart" }

-- n pings sent from now on that all succeed (within a few seconds).
local function flowing(t, what)
  local p = t:instance("pinger")
  local l = pings.wait(t, p, pings.mark(t, p, 2), 6, "8s", what)
  t:expect(pings.all_are(l, "ok"), what .. ": " .. pings.describe(l))
end

local function notes(t, tag, steps)
  for _, e in ipairs(steps) do
    t:note(string.format("%s %d %s %s at=%.6f hold=%.6f", tag, e.n, e.fault, e.target, e.at, e.hold))
  end
end

scenario("every kind of fault, each held then healed", function(t)
  flowing(t, "pings before the nemesis")
  local n = t:nemesis { faults = ALL, targets = "echo", interval = "100ms", hold = "150ms", duration = "7s" }
  t:expect(n:running(), "the nemesis runs in the background")
  notes(t, "plan", n:plan())
  local h = n:wait()
  t:expect(not n:running(), "and has ended once wait returns")
  notes(t, "did", h)
  t:expect(#h == #n:plan() and #h >= 8, "every step of the plan ran: " .. #h .. " of " .. #n:plan())
  local kinds, kinds_n = {}, 0
  for _, e in ipairs(h) do
    t:expect(e.status == "healed" or e.status == "skipped",
      string.format("step %d (%s of %s) is healed or skipped, not %s %s", e.n, e.fault, e.target,
        e.status, e.error or ""))
    if e.status == "healed" then
      if not kinds[e.fault] then kinds_n = kinds_n + 1 end
      kinds[e.fault] = true
      local held = e.healed - e.started
      t:expect(held >= e.hold - 0.01 and held < e.hold + 2,
        string.format("step %d held %.3fs as planned (%.3fs)", e.n, held, e.hold))
    end
  end
  t:expect(kinds_n >= 6, "at least 6 kinds of faults were applied, got " .. kinds_n)
  -- nothing is left on
  for _, i in ipairs(t:instances()) do t:expect(i.state == "up", i.name .. " is up") end
  t:expect(not t.consul.on.down and not t.broker.on.down, "consul and the broker are up")
  local restarts = 0
  for _, e in ipairs(h) do
    if e.fault == "crash" and e.status == "healed" then restarts = restarts + 1 end
  end
  t:expect(t:instance("echo", 1).starts + t:instance("echo", 2).starts == 2 + restarts,
    "every crash was followed by a restart (" .. restarts .. ")")
  flowing(t, "pings after the nemesis")
end)

scenario("stop heals the fault that is on, at once", function(t)
  flowing(t, "pings before")
  local n = t:nemesis { faults = { "partition" }, targets = "echo-1", interval = "100ms", hold = "60s",
    duration = "90s" }
  t:eventually(function() local h = n:history() return h[1] and h[1].status == "on" end, "3s",
    "the partition is on")
  t:sleep("200ms")
  local started = t:now()
  local h = n:stop()
  t:expect(t:now() - started < 1, "stop returns at once")
  t:expect(#h == 1 and h[1].status == "stopped", "the step is stopped: " .. (h[1] and h[1].status or "none"))
  t:expect(not n:running(), "the nemesis has ended")
  flowing(t, "pings after stop")
  t:expect(#n:stop() == 1, "stop again is harmless")
end)

scenario("a crashed instance is restarted, and wait returns once it is ready", function(t)
  local n = t:nemesis { faults = { "crash" }, targets = { t:instance("echo", 2) }, interval = "100ms",
    hold = "300ms", duration = "2s" }
  local h = n:wait()
  local crashes = 0
  for _, e in ipairs(h) do
    t:expect(e.fault == "crash" and e.target == "echo-2", "only echo-2 is crashed")
    if e.status == "healed" then crashes = crashes + 1 end
  end
  t:expect(crashes >= 1, "it was crashed at least once: " .. crashes)
  t:expect(t:instance("echo", 2).state == "up", "echo-2 is up again")
  t:expect(t:instance("echo", 2).starts == 1 + crashes, "started once more per crash")
  t:expect(t:instance("echo", 1).starts == 1, "echo-1 was left alone")
end)

scenario("the seed option fixes the plan", function(t)
  local a = t:nemesis { faults = ALL, seed = 12345, duration = "20s" }
  local b = t:nemesis { faults = ALL, seed = 12345, duration = "20s" }
  local c = t:nemesis { faults = ALL, seed = 54321, duration = "20s" }
  a:stop(); b:stop(); c:stop()
  notes(t, "seeded", a:plan())
  local function same(x, y)
    if #x ~= #y then return false end
    for i = 1, #x do
      for _, k in ipairs({ "fault", "target", "at", "hold" }) do
        if x[i][k] ~= y[i][k] then return false end
      end
    end
    return true
  end
  t:expect(same(a:plan(), b:plan()), "the same seed gives the same plan")
  t:expect(not same(a:plan(), c:plan()), "another seed another plan")
  t:expect(#a:history() == 0, "stopped before its first step: no history")
  for _, e in ipairs(a:plan()) do
    t:expect(e.at > 0 and e.hold > 0 and e.at + e.hold <= 20, "step " .. e.n .. " is within the duration")
  end
end)

scenario("a nemesis still running when the scenario ends is healed", function(t)
  t:nemesis { faults = { "latency" }, targets = "echo-1", interval = "50ms", hold = "60s", duration = "90s" }
  t:nemesis { faults = { "consul_down" }, interval = "50ms", hold = "60s", duration = "90s" }
  t:sleep("400ms")
end)

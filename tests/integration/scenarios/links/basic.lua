-- Toxics and partitions as real clients see them: a pinger (services/pinger) pings two
-- echo-svc replicas through its links, and each scenario reads its log to check that the
-- fault did what it says, and that removing it brings healthy traffic back. Every scenario
-- must pass. Timings are loose on purpose: CI machines are small and ASan builds slow.
local pings = require "pings"
local procs = require "procs"

local function env(extra)
  local e = { FL_IT_MARK = procs.mark }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

-- curl in a loop, reading each answer until the server closes (so a delayed close shows).
local CURL_LOOP = [[
while :; do
  curl -s -o /dev/null --ignore-content-length -H 'Connection: close' --max-time 3 \
    -w 'curl code=%{http_code} bytes=%{size_download} first=%{time_starttransfer} total=%{time_total}\n' \
    "http://${ECHO_ADDR%%,*}/curl"
  sleep 0.05
done]]

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2, env = env() },
    pinger = { cmd = { "pinger" }, needs = { "echo" },
               env = env { PINGER_INTERVAL_MS = 25, PINGER_TIMEOUT_MS = 800 } },
    -- started by the scenarios that need a client with no traffic before the fault
    late = { cmd = { "pinger" }, needs = { "echo" }, start = false,
             env = env { PINGER_INTERVAL_MS = 25, PINGER_TIMEOUT_MS = 800 } },
    curler = { cmd = { "sh", "-c", CURL_LOOP }, needs = { "echo" }, ready = "none",
               start = false, env = env() },
  },
}

local TARGETS = 2 -- the pinger's targets: at most this many pings in flight

-- n healthy pings, to start from a known state; returns them.
local function healthy(t, p, n)
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), n or 6, "5s", "healthy pings")
  t:assert(pings.all_are(l, "ok"), "healthy pings are ok: " .. pings.describe(l))
  return l
end

scenario("latency adds its delay to every answer and removal takes it away", function(t)
  local p = t:instance("pinger")
  local base = healthy(t, p, 8)
  local f = t:link("pinger", "echo"):latency { ms = 150 }
  local slow = pings.wait(t, p, pings.mark(t, p, TARGETS), 8, "5s", "pings with latency")
  t:expect(pings.all_are(slow, "ok"), "slow pings still succeed: " .. pings.describe(slow))
  t:expect(pings.min(slow) >= 145, "every answer is 150ms late: " .. pings.describe(slow))
  t:expect(pings.median(slow) < pings.median(base) + 150 + 250,
    "and not much more: " .. pings.describe(slow) .. " vs " .. pings.describe(base))
  local st = f:stats()
  t:expect(st.fired and st.active and st.chunks >= 8 and st.connections >= 8,
    "the fault counts what it delayed: chunks " .. st.chunks .. ", connections " .. st.connections)
  f:remove()
  t:expect(not f:stats().active, "removed")
  local fast = pings.wait(t, p, pings.mark(t, p, TARGETS), 8, "5s", "pings after removal")
  t:expect(pings.all_are(fast, "ok"), "ok after removal: " .. pings.describe(fast))
  t:expect(pings.median(fast) < 100 and pings.median(fast) < pings.median(slow) - 100,
    "fast again after removal: " .. pings.describe(fast))
end)

scenario("jitter spreads the delays", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local f = t:link("pinger", "echo"):latency { ms = 100, jitter = 90 }
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), 16, "8s", "pings with jitter")
  t:expect(pings.all_are(l, "ok"), "jittered pings succeed: " .. pings.describe(l))
  t:expect(pings.min(l) >= 8, "none faster than ms - jitter: " .. pings.describe(l))
  t:expect(pings.max(l) - pings.min(l) >= 60, "delays spread over the jitter range: min " ..
    pings.min(l) .. ", max " .. pings.max(l))
  t:expect(pings.min(l) < 90 and pings.max(l) > 110, "some below ms and some above: " ..
    pings.describe(l))
  f:remove()
  local fast = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings after removal")
  t:expect(pings.all_are(fast, "ok") and pings.median(fast) < 100,
    "fast again after removal: " .. pings.describe(fast))
end)

scenario("a partition makes requests time out and heal restores traffic", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local f = t:partition("pinger", "echo")
  local cut = pings.wait(t, p, pings.mark(t, p, TARGETS), 4, "6s", "pings during the partition")
  t:expect(pings.all_are(cut, "timeout"), "every ping times out: " .. pings.describe(cut))
  t:expect(f:stats().fired, "the partition held what was sent")
  local before = t:link("pinger", "echo"):stats()
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings after the heal")
  t:expect(pings.all_are(back, "ok"), "healed traffic is ok: " .. pings.describe(back))
  t:expect(pings.median(back) < 100, "and fast: " .. pings.describe(back))
  local after = t:link("pinger", "echo"):stats()
  t:expect(after.bytes_down > before.bytes_down, "answers flow again on the links")
end)

scenario("isolate cuts one instance off and no one else", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local e1 = t:instance("echo", 1)
  local to1, to2 = pings.target(t, p, e1), pings.target(t, p, "echo-2")
  local f = t:isolate(e1)
  local mark = pings.mark(t, p, TARGETS)
  local cut = pings.wait(t, p, mark, 2, "6s", "pings to the isolated echo-1", to1)
  local other = pings.wait(t, p, mark, 10, "6s", "pings to echo-2", to2)
  t:expect(pings.all_are(cut, "timeout"), "echo-1 is unreachable: " .. pings.describe(cut))
  t:expect(pings.all_are(other, "ok"), "echo-2 is untouched: " .. pings.describe(other))
  for _, q in ipairs(other) do
    t:expect(q.instance == "echo-2", "echo-2's link reaches echo-2: " .. q.line)
  end
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p, TARGETS), 4, "5s", "pings to echo-1 after", to1)
  t:expect(pings.all_are(back, "ok"), "echo-1 answers again: " .. pings.describe(back))
  t:expect(back[1].instance == "echo-1", "and it is echo-1 answering: " .. back[1].line)
end)

scenario("reset_peer with first = 2 fails exactly two connections", function(t)
  local late = t:instance("late")
  local f = t:link("late", "echo"):reset_peer { first = 2 }
  local st = f:stats()
  t:expect(st.fired == false and st.connections == 0 and st.resets == 0 and st.active,
    "nothing fired before any traffic")
  t:start(late)
  local l = pings.wait(t, late, 0, 12, "5s", "the first pings of late-1")
  t:expect(l[1].seq == 1, "the log starts at seq 1: " .. l[1].line)
  t:expect(l[1].result == "reset" and l[2].result == "reset",
    "the first two connections are reset: " .. pings.describe(l))
  t:expect(pings.count(l, "ok") == 10, "every later one succeeds: " .. pings.describe(l))
  st = f:stats()
  t:expect(st.fired and st.resets == 2 and st.connections == 2,
    "fired on two connections, reset two: connections " .. st.connections .. ", resets " ..
    st.resets)
end)

scenario("refuse resets new connections until it is removed", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local f = t:link("pinger", "echo"):refuse()
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings while refused")
  t:expect(pings.all_are(l, "refused", "reset"), "new connections fail: " .. pings.describe(l))
  local st = f:stats()
  t:expect(st.fired and st.refused >= 6, "the fault counts them: refused " .. st.refused)
  t:expect(t:link("pinger", "echo"):stats().refused >= 6, "and so do the links")
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings after removal")
  t:expect(pings.all_are(back, "ok"), "connections succeed again: " .. pings.describe(back))
end)

scenario("limit_data cuts the answers", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local f = t:link("pinger", "echo"):limit_data { bytes = 40 }
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings with limit_data")
  t:expect(pings.all_are(l, "closed"), "answers end early: " .. pings.describe(l))
  for _, q in ipairs(l) do
    t:expect(q.status == nil, "40 bytes do not hold a whole head: " .. q.line)
  end
  local st = f:stats()
  t:expect(st.fired and st.closes >= 6 and st.dropped > 0,
    "closes " .. st.closes .. ", dropped " .. st.dropped)
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings after removal")
  t:expect(pings.all_are(back, "ok"), "whole answers again: " .. pings.describe(back))
end)

scenario("timeout closes connections after its delay", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  local f = t:link("pinger", "echo"):timeout { ms = 300 }
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "6s", "pings with timeout")
  t:expect(pings.all_are(l, "closed"), "the proxy closes them (EOF): " .. pings.describe(l))
  t:expect(pings.min(l) >= 290 and pings.max(l) < 780, "after ~300ms: " .. pings.describe(l))
  local st = f:stats()
  t:expect(st.fired and st.closes >= 6, "closes " .. st.closes)
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p, TARGETS), 6, "5s", "pings after removal")
  t:expect(pings.all_are(back, "ok") and pings.median(back) < 100,
    "fast answers again: " .. pings.describe(back))
end)

scenario("slow_close delays the close, not the data", function(t)
  local c = t:instance("curler")
  t:start(c)
  local base = pings.wait_curls(t, c, 0, 4, "5s", "curl before the fault")
  t:expect(pings.count(base, 200) == 4, "curl gets answers: " .. pings.describe(base))
  local f = t:link("curler", "echo"):slow_close { ms = 400 }
  local n = #pings.curls(t, c) + 1 -- skip the one that may be in flight
  local l = pings.wait_curls(t, c, n, 3, "8s", "curl with slow_close")
  t:expect(pings.count(l, 200) == 3, "answers are whole: " .. pings.describe(l))
  for _, q in ipairs(l) do
    t:expect(q.total >= 0.39, "the close comes 400ms late: " .. q.line)
    t:expect(q.first < 0.3, "the data does not: " .. q.line)
    t:expect(q.bytes == base[1].bytes, "every byte arrives: " .. q.line)
  end
  t:expect(f:stats().fired, "the fault fired")
  f:remove()
  n = #pings.curls(t, c) + 1
  local back = pings.wait_curls(t, c, n, 3, "5s", "curl after removal")
  t:expect(pings.count(back, 200) == 3 and pings.max(back, "total") < 0.3,
    "prompt closes again: " .. pings.describe(back))
end)

-- The next two run in this order: the first ends with faults on, the second must not see them.
scenario("a scenario that ends with its faults on", function(t)
  local p = t:instance("pinger")
  healthy(t, p)
  t:link("pinger", "echo-1"):latency { ms = 400, direction = "both" }
  t:partition("pinger", "echo-2")
  t:link("pinger", "echo"):refuse { toxicity = 0.5 }
  local l = pings.wait(t, p, pings.mark(t, p, TARGETS), 2, "5s", "pings under the faults")
  t:expect(pings.count(l, "ok") < 2, "the faults hurt: " .. pings.describe(l))
end)

scenario("the next scenario starts healed", function(t)
  local p = t:instance("pinger")
  local links = t:links():stats()
  for name, s in pairs(links.links) do
    t:expect(next(s.toxics) == nil, name .. " has no toxic left")
  end
  local l = pings.wait(t, p, 0, 10, "5s", "the first pings")
  t:expect(l[1].seq == 1, "a fresh pinger: " .. l[1].line)
  t:expect(pings.all_are(l, "ok"), "healthy from the start: " .. pings.describe(l))
  t:expect(pings.median(l) < 100, "and fast: " .. pings.describe(l))
end)

-- Toxics that reshape a large answer: the pinger asks echo-svc for a ~6 KB answer (the path
-- is echoed back), so bandwidth shows as time and slicer as many small writes that must
-- still add up to the same answer. Every scenario must pass.
local pings = require "pings"
local procs = require "procs"

local PATH = "/big/" .. string.rep("x", 6000)

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    pinger = { cmd = { "pinger" }, needs = { "echo" },
               env = { FL_IT_MARK = procs.mark, PINGER_PATH = PATH, PINGER_INTERVAL_MS = 25,
                       PINGER_TIMEOUT_MS = 5000 } },
  },
}

local function healthy(t, p)
  local l = pings.wait(t, p, pings.mark(t, p), 4, "5s", "healthy pings")
  t:assert(pings.all_are(l, "ok"), "healthy pings are ok: " .. pings.describe(l))
  t:assert(l[1].bytes > 6000, "the answer is large: " .. l[1].line)
  return l
end

scenario("bandwidth slows a large answer down to its rate", function(t)
  local p = t:instance("pinger")
  local base = healthy(t, p)
  -- 80 kbit/s is 10 KB/s: a ~6.2 KB answer takes ~600ms
  local f = t:link("pinger", "echo"):bandwidth { kbps = 80 }
  local l = pings.wait(t, p, pings.mark(t, p), 3, "10s", "pings through the bandwidth limit")
  t:expect(pings.all_are(l, "ok"), "slow answers still succeed: " .. pings.describe(l))
  t:expect(pings.min(l) >= 450, "each takes ~600ms: " .. pings.describe(l))
  t:expect(pings.max(l) < 3000, "and not forever: " .. pings.describe(l))
  for _, q in ipairs(l) do
    t:expect(q.bytes == base[1].bytes, "every byte arrives: " .. q.line)
  end
  local st = f:stats()
  t:expect(st.fired and st.bytes >= 3 * 6000, "the fault paced " .. st.bytes .. " bytes")
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p), 4, "5s", "pings after removal")
  t:expect(pings.all_are(back, "ok") and pings.median(back) < 150,
    "full speed again: " .. pings.describe(back))
end)

scenario("slicer cuts answers into small writes that add up to the same answer", function(t)
  local p = t:instance("pinger")
  local base = healthy(t, p)
  local f = t:link("pinger", "echo"):slicer { avg = 64, variation = 32 }
  local l = pings.wait(t, p, pings.mark(t, p), 6, "5s", "pings through the slicer")
  t:expect(pings.all_are(l, "ok"), "sliced answers parse: " .. pings.describe(l))
  for _, q in ipairs(l) do
    t:expect(q.bytes == base[1].bytes and q.instance == "echo-1",
      "every answer intact (same length, JSON readable): " .. q.line)
  end
  local st = f:stats()
  t:expect(st.fired and st.chunks >= 6 * 50,
    "about 100 slices per answer: " .. st.chunks .. " over " .. st.connections .. " connections")
  f:remove()
  local back = pings.wait(t, p, pings.mark(t, p), 4, "5s", "pings after removal")
  t:expect(pings.all_are(back, "ok"), "whole answers after removal: " .. pings.describe(back))
end)

scenario("slicer spaces its slices delay_us apart on average", function(t)
  local p = t:instance("pinger")
  local base = healthy(t, p)
  -- ~6.2 KB in 64-byte slices: ~97 slices, 200us apart: ~19ms per answer. The loop's timers
  -- tick in milliseconds, so several slices must leave per tick to keep that average.
  local f = t:link("pinger", "echo"):slicer { avg = 64, delay_us = 200 }
  local l = pings.wait(t, p, pings.mark(t, p), 6, "5s", "pings through the slicer")
  t:expect(pings.all_are(l, "ok"), "sliced answers parse: " .. pings.describe(l))
  t:expect(pings.median(l) >= 15, "the slices are spaced out: " .. pings.describe(l) ..
    " (no slicer: " .. pings.describe(base) .. ")")
  t:expect(pings.median(l) < 60, "by 200us on average, not by a timer tick each (~19ms " ..
    "expected): " .. pings.describe(l))
  f:remove()
end)

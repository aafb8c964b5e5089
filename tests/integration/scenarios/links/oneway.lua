-- One-way partitions, with clients on both sides: pinger a calls echo b, and pinger c calls a
-- (a's own server answers and logs a "served" line per request). With A = a and B = {b, c},
-- t:partition(A, B, {oneway = true}) must hold everything A sends to B — a's requests to b
-- and a's answers to c — while what B sends to A still arrives; and the reverse for
-- t:partition(B, A, ...). Each side's log and the links' byte counters show which way
-- traffic flowed. Every scenario must pass.
local pings = require "pings"
local procs = require "procs"

local function pinger(var)
  return { FL_IT_MARK = procs.mark, PINGER_TARGET_VAR = var, PINGER_INTERVAL_MS = 25,
           PINGER_TIMEOUT_MS = 500 }
end

topology {
  grace = "2s",
  services = {
    b = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    a = { cmd = { "pinger" }, needs = { "b" }, env = pinger("B_ADDR") },
    c = { cmd = { "pinger" }, needs = { "a" }, env = pinger("A_ADDR") },
  },
}

local function served(t)
  local _, n = t:log("a-1"):gsub("served GET /ping", "")
  return n
end

local function healthy(t)
  for _, name in ipairs({ "a-1", "c-1" }) do
    local l = pings.wait(t, name, pings.mark(t, name), 4, "5s", "healthy pings from " .. name)
    t:assert(pings.all_are(l, "ok"), name .. " is healthy: " .. pings.describe(l))
  end
end

-- During a one-way partition both pingers time out, whichever way it cuts: a request needs
-- both directions.
local function both_time_out(t)
  local la = pings.wait(t, "a-1", pings.mark(t, "a-1"), 2, "5s", "a's pings")
  local lc = pings.wait(t, "c-1", pings.mark(t, "c-1"), 2, "5s", "c's pings")
  t:expect(pings.all_are(la, "timeout"), "a gets no answer from b: " .. pings.describe(la))
  t:expect(pings.all_are(lc, "timeout"), "c gets no answer from a: " .. pings.describe(lc))
end

scenario("a one-way partition from A to B holds A's bytes and lets B's through", function(t)
  healthy(t)
  t:expect(t:log("c-1"):find("instance=a-1", 1, true), "c's pings are answered by a")
  local f = t:partition("a", { "b", "c" }, { oneway = true })
  local ab0, ca0, served0 = t:link("a", "b"):stats(), t:link("c", "a"):stats(), served(t)
  both_time_out(t)
  local ab1, ca1 = t:link("a", "b"):stats(), t:link("c", "a"):stats()
  t:expect(ab1.bytes_up == ab0.bytes_up, "a's requests never reach b")
  t:expect(ca1.bytes_up > ca0.bytes_up, "c's requests still reach a")
  t:expect(served(t) >= served0 + 2, "a's log shows it served them: " .. served0 .. " -> " ..
    served(t))
  t:expect(ca1.bytes_down == ca0.bytes_down, "a's answers to c are held")
  t:expect(f:stats().fired, "the partition fired")
  f:remove()
  healthy(t)
end)

scenario("a one-way partition from B to A holds B's bytes and lets A's through", function(t)
  healthy(t)
  local f = t:partition({ "b", "c" }, "a", { oneway = true })
  local ab0, ca0, served0 = t:link("a", "b"):stats(), t:link("c", "a"):stats(), served(t)
  both_time_out(t)
  local ab1, ca1 = t:link("a", "b"):stats(), t:link("c", "a"):stats()
  t:expect(ab1.bytes_up > ab0.bytes_up, "a's requests still reach b")
  t:expect(ab1.bytes_down == ab0.bytes_down, "b's answers to a are held")
  t:expect(ca1.bytes_up == ca0.bytes_up, "c's requests never reach a")
  t:expect(served(t) == served0, "a's log shows nothing served: " .. served0 .. " -> " ..
    served(t))
  f:remove()
  healthy(t)
end)

-- Faults on connections that are already open: a pinger with PINGER_KEEPALIVE=1 sends every
-- request on one persistent connection (its conn= stays the same), so a fault added later
-- must act on that connection, not only on new ones. Every scenario must pass.
local pings = require "pings"
local procs = require "procs"

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    pinger = { cmd = { "pinger" }, needs = { "echo" },
               env = { FL_IT_MARK = procs.mark, PINGER_KEEPALIVE = 1, PINGER_INTERVAL_MS = 25,
                       PINGER_TIMEOUT_MS = 600 } },
  },
}

local function same_conn(list, conn)
  for _, q in ipairs(list) do
    if q.conn ~= conn then return false end
  end
  return #list > 0
end

scenario("faults apply to an open keep-alive connection", function(t)
  local p = t:instance("pinger")
  local base = pings.wait(t, p, pings.mark(t, p), 6, "5s", "healthy pings")
  local conn = base[1].conn
  t:assert(pings.all_are(base, "ok") and same_conn(base, conn),
    "one connection carries every ping: " .. pings.describe(base))
  local links = t:link("pinger", "echo")
  local accepted = links:stats().accepted

  local lat = links:latency { ms = 150 }
  local slow = pings.wait(t, p, pings.mark(t, p), 6, "5s", "pings with latency")
  t:expect(pings.all_are(slow, "ok") and pings.min(slow) >= 145,
    "the open connection is slowed: " .. pings.describe(slow))
  t:expect(same_conn(slow, conn), "on the same connection (conn=" .. conn .. ")")
  t:expect(links:stats().accepted == accepted, "no new connection was opened")
  lat:remove()
  local fast = pings.wait(t, p, pings.mark(t, p), 6, "5s", "pings after removal")
  t:expect(pings.all_are(fast, "ok") and pings.median(fast) < 100 and same_conn(fast, conn),
    "the same connection is fast again: " .. pings.describe(fast))

  local cut = t:partition("pinger", "echo")
  local held = pings.wait(t, p, pings.mark(t, p), 2, "5s", "pings during the partition")
  t:expect(pings.all_are(held, "timeout"), "the open connection is cut: " .. pings.describe(held))
  local open_cut = false
  for _, q in ipairs(pings.after(t, p, 0)) do
    open_cut = open_cut or (q.conn == conn and q.result == "timeout")
  end
  t:expect(open_cut, "the open connection conn=" .. conn .. " timed out first")
  cut:remove()
  local back = pings.wait(t, p, pings.mark(t, p), 4, "5s", "pings after the heal")
  t:expect(pings.all_are(back, "ok"), "traffic is back: " .. pings.describe(back))
  t:expect(back[1].conn ~= conn, "on a new connection: " .. back[1].line)
end)

scenario("reset_peer with first = 1 resets the open connection only", function(t)
  local p = t:instance("pinger")
  local base = pings.wait(t, p, pings.mark(t, p), 4, "5s", "healthy pings")
  t:assert(pings.all_are(base, "ok"), "healthy: " .. pings.describe(base))
  local conn = base[#base].conn
  local f = t:link("pinger", "echo"):reset_peer { first = 1 }
  local st = f:stats()
  t:expect(st.fired and st.resets == 1 and st.connections == 1,
    "the open connection is reset at once: resets " .. st.resets)
  -- a ping sent on the old connection just before its RST was read would fail too: skip two
  local after = pings.wait(t, p, pings.mark(t, p, 2), 6, "5s", "pings after the reset")
  t:expect(pings.all_are(after, "ok"), "new connections are spared: " .. pings.describe(after))
  t:expect(same_conn(after, after[1].conn) and after[1].conn ~= conn,
    "one new connection replaced conn=" .. conn .. ": " .. pings.describe(after))
  t:expect(f:stats().resets == 1, "still one reset")
  t:expect(t:log(p):find("connection " .. conn .. " to [^ ]+ closed while idle %(ECONNRESET%)")
    or t:log(p):find("seq=%d+ target=%S+ result=reset .* conn=" .. conn .. " "),
    "the pinger saw conn=" .. conn .. " reset")
end)

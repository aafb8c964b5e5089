-- Reading what a pinger (services/pinger) saw: it logs one line per request,
--   ping seq=17 target=127.3.0.2:41234 result=ok status=200 ms=12.345 instance=echo-2
-- and these helpers turn its log into tables, so scenarios can assert on real traffic.
local M = {}

-- Every ping the instance logged, in the order they were sent.
function M.pings(t, inst)
  local out = {}
  for line in t:log(inst):gmatch("ping [^\n]+") do
    local p = {}
    for k, v in line:gmatch("(%w+)=(%S+)") do p[k] = tonumber(v) or v end
    if p.seq then out[#out + 1] = p end
  end
  table.sort(out, function(a, b) return a.seq < b.seq end)
  return out
end

-- The highest seq logged so far: pings after it were sent after this call (give or take
-- the one in flight per target, which `slack` skips).
function M.mark(t, inst, slack)
  local top = 0
  for _, p in ipairs(M.pings(t, inst)) do top = math.max(top, p.seq) end
  return top + (slack or 1)
end

-- Waits until n pings sent after mark (to target, a link address, if given) are logged,
-- and returns them. A ping that is still waiting for its answer is not logged yet.
function M.next(t, inst, mark, n, timeout, target)
  return t:eventually(function()
    local got = {}
    for _, p in ipairs(M.pings(t, inst)) do
      if p.seq > mark and (not target or p.target == target) then got[#got + 1] = p end
      if #got == n then return got end
    end
  end, timeout or "5s", n .. " more pings from " .. tostring(inst) .. (target and (" to " .. target) or ""))
end

-- The address of the link from client to server, as pings name it in target=.
function M.target(t, client, server)
  for _, l in pairs(t:link(client, server):stats().links) do return l.listen end
end

-- Summary of a list of pings: { ok = count, timeout = count, ..., median_ms = number }
function M.summary(list)
  local s, ms = { ok = 0 }, {}
  for _, p in ipairs(list) do
    s[p.result] = (s[p.result] or 0) + 1
    if p.result == "ok" then ms[#ms + 1] = p.ms end
  end
  table.sort(ms)
  s.median_ms = ms[(#ms + 1) // 2]
  return s
end

return M

-- What the clients of the links/ scenarios saw, read from their logs: the pinger's lines
-- (services/pinger: "ping seq=17 target=... result=ok status=200 ms=12.3 ...") and the
-- curl loop's ("curl code=200 bytes=74 first=0.001 total=0.002"). Pings finish out of
-- order (a timeout ends long after the pings sent next), so they are picked by seq.
local M = {}

local NUMBERS = { seq = true, status = true, ms = true, bytes = true, conn = true,
  code = true, first = true, total = true }

-- The key=value lines of `text` that start with `tag`, each as a table (numbers converted,
-- "-" as nil).
local function parse(text, tag)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #tag + 1) == tag .. " " then
      local r = { line = line }
      for k, v in line:gmatch("(%w+)=(%S+)") do
        if v ~= "-" then r[k] = NUMBERS[k] and tonumber(v) or v end
      end
      out[#out + 1] = r
    end
  end
  return out
end

-- Every ping in inst's log, by seq.
function M.all(t, inst)
  local list = parse(t:log(inst), "ping")
  table.sort(list, function(a, b) return a.seq < b.seq end)
  return list
end

-- Every curl line in inst's log, in order.
function M.curls(t, inst)
  return parse(t:log(inst), "curl")
end

-- A mark in inst's pings: pings with a larger seq were sent after this call. A pinger has
-- at most one request in flight per target, so `inflight` (its number of targets) bounds
-- how many sent before the mark can still be unlogged.
function M.mark(t, inst, inflight)
  local top = 0
  for _, p in ipairs(M.all(t, inst)) do top = math.max(top, p.seq) end
  return top + (inflight or 1)
end

-- The pings sent after `mark` (all of them when mark is 0), optionally only those to target.
function M.after(t, inst, mark, target)
  local out = {}
  for _, p in ipairs(M.all(t, inst)) do
    if p.seq > mark and (not target or p.target == target) then out[#out + 1] = p end
  end
  return out
end

-- Waits until n pings sent after mark (to target, if given) are logged; returns the first n.
function M.wait(t, inst, mark, n, timeout, what, target)
  return t:eventually(function()
    local l = M.after(t, inst, mark, target)
    if #l < n then return false end
    return { table.unpack(l, 1, n) }
  end, timeout or "5s", what or (n .. " pings from " .. tostring(inst)))
end

-- Waits until n curl lines more than `from` are logged; returns those n.
function M.wait_curls(t, inst, from, n, timeout, what)
  return t:eventually(function()
    local l = M.curls(t, inst)
    if #l < from + n then return false end
    return { table.unpack(l, from + 1, from + n) }
  end, timeout or "5s", what or (n .. " curl lines from " .. tostring(inst)))
end

-- How many of list have result r (or, for curl lines, code r).
function M.count(list, r)
  local n = 0
  for _, p in ipairs(list) do
    if p.result == r or p.code == r then n = n + 1 end
  end
  return n
end

-- true when every item of list has one of the results given.
function M.all_are(list, ...)
  local ok = {}
  for _, r in ipairs({ ... }) do ok[r] = true end
  for _, p in ipairs(list) do
    if not ok[p.result] then return false end
  end
  return #list > 0
end

-- The values of field in list, sorted.
local function values(list, field)
  local v = {}
  for _, p in ipairs(list) do
    if p[field] then v[#v + 1] = p[field] end
  end
  table.sort(v)
  return v
end

function M.median(list, field)
  local v = values(list, field or "ms")
  return v[(#v + 1) // 2] or math.huge
end

function M.min(list, field)
  return values(list, field or "ms")[1] or math.huge
end

function M.max(list, field)
  local v = values(list, field or "ms")
  return v[#v] or -math.huge
end

-- A short account of list for failure messages: results and times.
function M.describe(list)
  local by, order = {}, {}
  for _, p in ipairs(list) do
    local r = p.result or ("code " .. tostring(p.code))
    if not by[r] then order[#order + 1] = r end
    by[r] = (by[r] or 0) + 1
  end
  local parts = {}
  for _, r in ipairs(order) do parts[#parts + 1] = r .. " " .. by[r] end
  local times = {}
  for i, p in ipairs(list) do
    if i > 12 then
      times[#times + 1] = "..."
      break
    end
    times[#times + 1] = string.format("%.0f", p.ms or (p.total or 0) * 1000)
  end
  return string.format("%d lines (%s; ms %s)", #list, table.concat(parts, ", "),
    table.concat(times, " "))
end

-- The address ("host:port") of the link from client instance to server instance: what the
-- client has in its <NEED>_ADDR for that server, and what its ping lines call the target.
function M.target(t, client, server)
  local links = t:link(client, server):stats().links
  for _, l in pairs(links) do return l.listen end
end

return M

-- What the clients of the consul/ scenarios saw, read from their logs:
--   the pinger (services/pinger with PINGER_CONSUL_SERVICE): "ping seq=17 target=...
--   result=ok ... instance=echo-2" per request and "pinger[client-1]: targets: [a,b] (index
--   N)" whenever its Consul answer changes;
--   the probe (PROBE below, a curl loop on its own agent): "probe seq=3 self=200
--   secs=0.0012 n=3 critical=1 ids=echo-1,echo-2,echo-3," — agent/self's status and time,
--   and the instances registered for a service whatever their checks say.
local procs = require "procs"

local M = {}

-- The environment every service of these scenarios gets, plus extra.
function M.env(extra)
  local e = { FL_IT_MARK = procs.mark }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

-- A shell service that asks its own agent (CONSUL_HTTP_ADDR), every 50 ms, for agent/self
-- (timed) and for every instance of $PROBE_SERVICE, passing or not.
M.PROBE = [[
i=0
while :; do
  i=$((i + 1))
  s=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "http://$CONSUL_HTTP_ADDR/v1/agent/self")
  a=$(curl -s --max-time 5 "http://$CONSUL_HTTP_ADDR/v1/health/service/$PROBE_SERVICE")
  n=$(printf '%s' "$a" | grep -o '"Service":{"ID":"[^"]*"' | wc -l)
  c=$(printf '%s' "$a" | grep -o '"Status":"critical"' | wc -l)
  ids=$(printf '%s' "$a" | grep -o '"Service":{"ID":"[^"]*"' | sed 's/.*"ID":"//; s/"$//' | sort | tr '\n' ',')
  echo "probe seq=$i self=${s% *} secs=${s#* } n=$n critical=$c ids=$ids"
  sleep 0.05
done]]

-- The key=value lines of text that start with tag, as tables (numbers converted).
local function parse(text, tag)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #tag + 1) == tag .. " " then
      local r = { line = line }
      for k, v in line:gmatch("(%w+)=(%S*)") do r[k] = tonumber(v) or v end
      out[#out + 1] = r
    end
  end
  return out
end

-- ---- the pinger

-- Every ping in inst's log, by seq.
function M.pings(t, inst)
  local list = parse(t:log(inst), "ping")
  table.sort(list, function(a, b) return a.seq < b.seq end)
  return list
end

-- A mark: pings with a larger seq were sent after this call (`inflight`, the pinger's
-- number of targets, skips those that may still be unlogged).
function M.mark(t, inst, inflight)
  local top = 0
  for _, p in ipairs(M.pings(t, inst)) do top = math.max(top, p.seq) end
  return top + (inflight or 3)
end

-- Waits until n pings sent after mark are logged; returns the first n.
function M.wait(t, inst, mark, n, timeout, what)
  return t:eventually(function()
    local l = {}
    for _, p in ipairs(M.pings(t, inst)) do
      if p.seq > mark then l[#l + 1] = p end
      if #l == n then return l end
    end
  end, timeout or "5s", what or (n .. " more pings from " .. tostring(inst)))
end

-- How many of list have result r; count_where(list, f) how many f(p) is true for.
function M.count(list, r)
  local n = 0
  for _, p in ipairs(list) do
    if p.result == r then n = n + 1 end
  end
  return n
end

-- "ok 10, refused 2 (echo-1 4, echo-3 6)": a short account of pings for messages.
function M.describe(list)
  local by, order, inst = {}, {}, {}
  for _, p in ipairs(list) do
    if not by[p.result] then order[#order + 1] = p.result end
    by[p.result] = (by[p.result] or 0) + 1
    inst[p.instance] = (inst[p.instance] or 0) + 1
  end
  local parts, who = {}, {}
  for _, r in ipairs(order) do parts[#parts + 1] = r .. " " .. by[r] end
  for k, v in pairs(inst) do who[#who + 1] = k .. " " .. v end
  table.sort(who)
  return #list .. " pings: " .. table.concat(parts, ", ") .. " (" .. table.concat(who, ", ") .. ")"
end

-- The pinger's target lists, oldest first, each a sorted list of addresses (with .index).
function M.target_lists(t, inst)
  local out = {}
  for list, index in t:log(inst):gmatch("targets: %[([^%]]*)%] %(index (%d+)%)") do
    local l = { index = tonumber(index) }
    for a in list:gmatch("[^,]+") do l[#l + 1] = a end
    table.sort(l)
    out[#out + 1] = l
  end
  return out
end

-- The pinger's current targets (its last list), or {} before its first answer.
function M.targets(t, inst)
  local all = M.target_lists(t, inst)
  return all[#all] or {}
end

-- ---- links and views

-- The client's link addresses to each instance of service: { ["echo-2"] = "127.x:port" }.
function M.links(t, client, service)
  local out = {}
  for name, l in pairs(t:link(client, service):stats().links) do
    out[name:match("%->(.+)$")] = l.listen
  end
  return out
end

-- The ids in a t:consul_view answer, sorted and joined: "echo-1,echo-3".
function M.ids(view)
  local ids = {}
  for _, e in ipairs(view) do ids[#ids + 1] = e.id end
  table.sort(ids)
  return table.concat(ids, ",")
end

-- The names of a list of instances (t:healthy), joined.
function M.names(list)
  local n = {}
  for _, i in ipairs(list) do n[#n + 1] = i.name end
  return table.concat(n, ",")
end

-- ---- the probe

function M.probes(t, inst)
  return parse(t:log(inst), "probe")
end

-- Waits for n probe lines after the current last one; returns them.
function M.next_probes(t, inst, n, timeout, what)
  local from = #M.probes(t, inst)
  return t:eventually(function()
    local l = M.probes(t, inst)
    if #l >= from + n then return { table.unpack(l, from + 1, from + n) } end
  end, timeout or "5s", what or (n .. " more probe lines"))
end

return M

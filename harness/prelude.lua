-- faultline's Lua prelude: the parts of the scenario API that are clearest in Lua, built on
-- the C primitives in C (engine.c). Loaded once per scenario file, as chunk "=faultline",
-- so error locations skip it and point at the user's line.
local T, C = ...

local function seconds(d, what)
  return C.seconds(d, what)
end

local function check_fn(fn, what)
  if type(fn) ~= "function" then
    C.usage(string.format("bad %s: expected a function, got %s", what, C.typename(fn)))
  end
end

local function opt_msg(msg, what)
  if msg ~= nil and type(msg) ~= "string" then
    C.usage(string.format("bad %s message: expected a string, got %s", what, C.typename(msg)))
  end
  return msg
end

-- t:eventually(fn, [timeout=5s], [msg]): polls fn until it returns a true value (which is
-- returned); fails the scenario if that does not happen within timeout.
function T:eventually(fn, timeout, msg)
  check_fn(fn, "t:eventually condition")
  local limit = seconds(timeout == nil and 5 or timeout, "t:eventually timeout")
  msg = opt_msg(msg, "t:eventually") or "condition"
  local start, delay, last = C.now(self), 0.005, nil
  while true do
    local ok, res = pcall(fn)
    if ok and res then
      C.record(self, true, string.format("eventually %s (after %s)", msg, C.fmt(C.now(self) - start)))
      return res
    end
    if not ok then
      if C.ours(res) then error(res, 0) end
      last = tostring(res)
    end
    local elapsed = C.now(self) - start
    if elapsed >= limit then
      C.fail(self, string.format("eventually %s: still not true after %s%s", msg, C.fmt(limit),
        last and (" (last error: " .. last .. ")") or ""))
    end
    self:sleep(math.min(delay, limit - elapsed))
    delay = math.min(delay * 2, 0.1)
  end
end

-- t:always(fn, during, [msg]): checks fn repeatedly for the whole of during; fails the
-- scenario at the first check that is not true.
function T:always(fn, during, msg)
  check_fn(fn, "t:always condition")
  local limit = seconds(during, "t:always duration")
  msg = opt_msg(msg, "t:always") or "condition"
  local start, checks = C.now(self), 0
  while true do
    local ok, res = pcall(fn)
    checks = checks + 1
    if not ok and C.ours(res) then error(res, 0) end
    if not ok or not res then
      C.fail(self, string.format("always %s: broken after %s%s", msg, C.fmt(C.now(self) - start),
        ok and "" or (" (error: " .. tostring(res) .. ")")))
    end
    local elapsed = C.now(self) - start
    if elapsed >= limit then
      C.record(self, true, string.format("always %s (held for %s, %d checks)", msg, C.fmt(limit), checks))
      return true
    end
    self:sleep(math.min(0.01, limit - elapsed))
  end
end

function T:start(inst)
  local i = C.instance(self, inst, "t:start")
  C.act(self, i, "start")
  C.spawn(self, i)
  C.await(self, i, "ready")
  return i
end

function T:crash(inst)
  local i = C.instance(self, inst, "t:crash")
  C.act(self, i, "crash")
  C.kill(self, i)
  C.await(self, i, "down", 10)
  return i
end

function T:stop(inst, grace)
  local i = C.instance(self, inst, "t:stop")
  local g = grace == nil and C.grace(i) or seconds(grace, "t:stop grace")
  C.act(self, i, "stop")
  C.term(self, i, g)
  C.await(self, i, "down", g + 10)
  return i
end

function T:restart(inst, opts)
  local i = C.instance(self, inst, "t:restart")
  if opts ~= nil and type(opts) ~= "table" then
    C.usage("bad t:restart options: expected a table like { crash = true }, got " .. C.typename(opts))
  end
  C.keys(opts, "t:restart option", { "crash", "grace" })
  opts = opts or {}
  C.act(self, i, opts.crash and "restart (crash)" or "restart")
  if i.state ~= "down" then
    if opts.crash then
      C.kill(self, i)
      C.await(self, i, "down", 10)
    else
      local g = opts.grace == nil and C.grace(i) or seconds(opts.grace, "t:restart grace")
      C.term(self, i, g)
      C.await(self, i, "down", g + 10)
    end
  end
  C.spawn(self, i)
  C.await(self, i, "ready")
  return i
end

-- t:pause returns once every process of the instance has really stopped (SIGSTOP takes
-- effect when a process is next scheduled), or after 2 s at the most.
function T:pause(inst)
  local i = C.instance(self, inst, "t:pause")
  local paused = C.fields_of(self).paused
  if not paused[i.name] then paused[i.name] = C.act(self, i, "pause", "on") else C.act(self, i, "pause") end
  C.pause(self, i)
  local start = C.now(self)
  while not C.stopped(self, i) and i.state == "paused" and C.now(self) - start < 2 do
    self:sleep(0.001)
  end
  return i
end

function T:resume(inst)
  local i = C.instance(self, inst, "t:resume")
  local paused = C.fields_of(self).paused
  if paused[i.name] then C.act(self, i, "resume", "off", paused[i.name]) else C.act(self, i, "resume") end
  paused[i.name] = nil
  C.resume(self, i)
  return i
end

-- Links and faults ---------------------------------------------------------------------

-- An object whose unknown keys are usage errors with a suggestion.
local function strict(what, methods)
  return { __index = function(_, k)
    local m = methods[k]
    if m ~= nil then return m end
    C.no_key(what, k, methods)
  end, __tostring = function(self) return self.label end }
end

local function describe(x)
  if type(x) == "table" and getmetatable(x) == nil then
    local parts = {}
    for i, v in ipairs(x) do parts[i] = tostring(v) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(x)
end

local function describe_opts(kind, opts)
  local keys = {}
  for k in pairs(opts or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = opts[k]
    parts[#parts + 1] = k .. "=" .. (type(v) == "string" and string.format("%q", v) or tostring(v))
  end
  return kind .. "{" .. table.concat(parts, ", ") .. "}"
end

local Fault, LinkSet = {}, {}
local FaultMT = strict("a fault", Fault)
local LinkSetMT = strict("a link", LinkSet)

-- Every fault that is on, by id, per scenario (t): heal() closes their timeline intervals.
local function active_faults(t)
  return C.fields_of(t).faults
end

local function new_fault(t, parts, what, label, id)
  local f = setmetatable({ t = t, parts = parts, what = what, label = label, removed = false, id = id },
    FaultMT)
  active_faults(t)[id] = f
  return f
end

local STAT_FIELDS = { "connections", "chunks", "bytes", "dropped", "resets", "closes", "refused" }

local function add_stats(sum, s)
  for _, f in ipairs(STAT_FIELDS) do sum[f] = (sum[f] or 0) + (s[f] or 0) end
end

local function summary(sum)
  local fired = {}
  for _, f in ipairs(STAT_FIELDS) do
    if f ~= "connections" and sum[f] > 0 then fired[#fired + 1] = f .. " " .. sum[f] end
  end
  return string.format("applied to %d connection%s%s", sum.connections,
    sum.connections == 1 and "" or "s", #fired > 0 and (", " .. table.concat(fired, ", ")) or ", never fired")
end

-- fault:stats() → { connections, chunks, bytes, dropped, resets, closes, refused, fired, active }
function Fault:stats()
  local sum = {}
  add_stats(sum, {})
  for _, p in ipairs(self.parts) do
    local s = p.final or C.toxic_stats(self.t, p.id, p.name)
    if s then add_stats(sum, s) end
  end
  sum.fired = (sum.chunks + sum.bytes + sum.resets + sum.closes + sum.refused) > 0
  sum.active = not self.removed
  return sum
end

local function final_sum(f)
  local sum = {}
  add_stats(sum, {})
  for _, p in ipairs(f.parts) do add_stats(sum, p.final or {}) end
  return sum
end

-- Closes the fault's timeline interval, with what it did.
local function closed(f, how)
  f.removed = true
  active_faults(f.t)[f.id] = nil
  local sum = final_sum(f)
  C.fault(f.t, f.label, how .. " " .. f.what .. ": " .. summary(sum), "off", f.id, sum)
end

-- fault:remove(): takes the fault off its links; what it held flows on, in order.
function Fault:remove()
  if self.removed then return self end
  for _, p in ipairs(self.parts) do
    if not p.final then p.final = C.untoxic(self.t, p.id, p.name) or {} end
  end
  closed(self, "removed")
  return self
end
Fault.heal = Fault.remove

function LinkSet:toxic(kind, opts)
  local id = C.fault_id(self.t)
  local parts = C.toxic(self.t, self.ids, kind, opts, id)
  local what = describe_opts(kind, opts)
  C.fault(self.t, self.label, what, "on", id)
  return new_fault(self.t, parts, what, self.label, id)
end

for _, kind in ipairs(C.toxic_kinds()) do
  LinkSet[kind] = function(self, opts) return self:toxic(kind, opts) end
end

-- link:heal(): removes every fault from these links.
function LinkSet:heal()
  local mine, n = {}, 0
  for _, id in ipairs(self.ids) do mine[id] = true end
  local faults, order = active_faults(self.t), {}
  for fid in pairs(faults) do order[#order + 1] = fid end
  table.sort(order)
  for _, fid in ipairs(order) do -- a fault ends once none of its toxics is left
    local f, left, touched = faults[fid], false, false
    for _, p in ipairs(f.parts) do
      if not p.final then
        if mine[p.id] then
          p.final = C.untoxic(self.t, p.id, p.name) or {}
          n, touched = n + 1, true
        else
          left = true
        end
      end
    end
    if touched and not left then closed(f, "healed") end
  end
  for _, id in ipairs(self.ids) do n = n + C.heal(self.t, id) end
  C.fault(self.t, self.label, "healed (" .. n .. " toxic" .. (n == 1 and "" or "s") .. " removed)")
  return self
end

-- link:drop([{ reset = true }]): closes every open connection of these links.
function LinkSet:drop(opts)
  C.keys(opts, "drop option", { "reset" })
  for _, id in ipairs(self.ids) do C.drop(self.t, id, opts and opts.reset) end
  C.fault(self.t, self.label, (opts and opts.reset) and "connections reset" or "connections closed")
  return self
end

-- link:stats() → totals over these links, and .links[name] for each one
function LinkSet:stats()
  local sum = { accepted = 0, active = 0, upstream_failed = 0, refused = 0, resets = 0,
    bytes_up = 0, bytes_down = 0, links = {} }
  for _, id in ipairs(self.ids) do
    local s = C.link_stats(self.t, id)
    for k, v in pairs(s) do
      if type(v) == "number" then sum[k] = sum[k] + v end
    end
    sum.links[s.name] = s
  end
  return sum
end

function LinkSet:names()
  local names = {}
  for i, id in ipairs(self.ids) do names[i] = C.link_name(self.t, id) end
  return names
end

local function new_linkset(t, ids, label)
  return setmetatable({ t = t, ids = ids, label = label }, LinkSetMT)
end

-- t:link(a, b): every link from an instance of a to an instance of b (instances, service or
-- instance names, or lists of them).
function T:link(a, b)
  local ids = C.links(self, a, b, "t:link")
  local label = #ids == 1 and C.link_name(self, ids[1]) or (describe(a) .. "->" .. describe(b))
  return new_linkset(self, ids, label)
end

-- t:links(): every link of the topology
function T:links()
  return new_linkset(self, C.all_links(self), "all links")
end

-- t:partition(a, b, [{ oneway = true }]): a and b can no longer reach each other (with
-- oneway, a cannot reach b: what a sends towards b is held, replies b sends to a as well).
local function partition(self, a, b, opts, label)
  if opts ~= nil and type(opts) ~= "table" then
    C.usage("bad t:partition options: expected a table like { oneway = true }, got " .. C.typename(opts))
  end
  C.keys(opts, "t:partition option", { "oneway" })
  local oneway = opts and opts.oneway
  local ab = C.links(self, a, b, "t:partition", true)
  local ba = C.links(self, b, a, "t:partition", true)
  if #ab + #ba == 0 then
    C.usage("t:partition: no link between " .. describe(a) .. " and " .. describe(b) ..
      " (links exist only where a service `needs` the other)")
  end
  local parts, id = {}, C.fault_id(self)
  local function cut(ids, direction)
    if #ids == 0 then return end
    for _, p in ipairs(C.toxic(self, ids, "timeout", { ms = 0, direction = direction }, id)) do
      parts[#parts + 1] = p
    end
  end
  if oneway then
    cut(ab, "upstream")   -- a's requests to b
    cut(ba, "downstream") -- a's replies to b's requests
  else
    cut(ab, "both")
    cut(ba, "both")
  end
  label = label or (describe(a) .. (oneway and " -/-> " or " <-/-> ") .. describe(b))
  local what = oneway and "one-way partition" or "partition"
  C.fault(self, label, what, "on", id)
  return new_fault(self, parts, what, label, id)
end

function T:partition(a, b, opts)
  return partition(self, a, b, opts)
end

-- t:isolate(inst): inst can reach nobody and nobody can reach it.
function T:isolate(inst)
  local others = C.others(self, inst, "t:isolate")
  if #others == 0 then C.usage("t:isolate: there is nobody to isolate " .. describe(inst) .. " from") end
  return partition(self, inst, others, nil, "isolate " .. describe(inst))
end

-- t:heal(): removes every fault from every link.
function T:heal()
  return self:links():heal()
end

-- The fake Consul ------------------------------------------------------------------------

local Consul = {}
local ConsulMT = strict("t.consul", Consul)

-- Each fault remembers its state (self.on[fault]), so :heal() undoes only what is on.
local function set_fault(self, fault, value)
  C.consul(self.t, fault, value)
  self.on[fault] = value ~= false and value ~= 0 and value or nil
  return self
end

-- t.consul:down() / :up(): agents refuse connections, then listen again on the same ports.
function Consul:down() return set_fault(self, "down", true) end
function Consul:up() return set_fault(self, "down", false) end
-- t.consul:latency(d): every answer leaves d late (0 or nil: none).
function Consul:latency(d)
  return set_fault(self, "latency", d == nil and 0 or seconds(d, "t.consul:latency duration"))
end
-- t.consul:freeze() / :thaw(): blocking queries never return, writes hang, until thawed.
function Consul:freeze() return set_fault(self, "freeze", true) end
function Consul:thaw() return set_fault(self, "freeze", false) end
-- t.consul:stale(d): answers describe the catalog as it was d ago (0 or nil: current).
function Consul:stale(d)
  return set_fault(self, "stale", d == nil and 0 or seconds(d, "t.consul:stale duration"))
end
-- t.consul:flap(service, period): the service's checks alternate passing/critical.
function Consul:flap(service, period)
  C.consul(self.t, "flap", service, seconds(period, "t.consul:flap period"))
  return self
end
-- t.consul:steady(service): stops a flap; the checks' own results count again.
function Consul:steady(service) C.consul(self.t, "flap", service, 0); return self end
-- t.consul:heal(): undoes whichever of down, latency, freeze and stale is on.
function Consul:heal()
  if self.on.down then set_fault(self, "down", false) end
  if self.on.latency then set_fault(self, "latency", 0) end
  if self.on.freeze then set_fault(self, "freeze", false) end
  if self.on.stale then set_fault(self, "stale", 0) end
  return self
end
-- t.consul:index(): the catalog's index (X-Consul-Index).
function Consul:index() return C.consul_index(self.t) end

-- t:healthy(service): its instances that pass every check, as Consul says now.
function T:healthy(service)
  return C.healthy(self, service)
end

-- t:consul_view(inst, service): what inst would be told about service now (passing only,
-- addresses as inst sees them: its links): a list of { id, service, node, address, port,
-- tags }.
function T:consul_view(inst, service)
  return C.consul_view(self, inst, service)
end

-- The collector ---------------------------------------------------------------------------

-- A trace's spans as a tree: children in start order; spans whose parent never arrived are
-- roots too (the first root, by start, is the trace's root).
local function tree(tr)
  local by_id, roots = {}, {}
  for _, s in ipairs(tr.spans) do
    s.children = {}
    by_id[s.span_id] = s
  end
  for _, s in ipairs(tr.spans) do
    local p = s.parent_id and by_id[s.parent_id]
    if p and p ~= s then table.insert(p.children, s) else table.insert(roots, s) end
  end
  local function by_start(a, b)
    if a.start ~= b.start then return a.start < b.start end
    return a.span_id < b.span_id
  end
  for _, s in ipairs(tr.spans) do table.sort(s.children, by_start) end
  table.sort(roots, by_start)
  table.sort(tr.spans, by_start)
  -- a span whose parent is absent is an orphan unless it is the only root
  local root = roots[1]
  for _, r in ipairs(roots) do if not r.parent_id then root = r break end end
  tr.root = root
  tr.roots = roots
  return tr
end

-- t:traces{ service =, name =, since = }: the traces the collector holds with a span of that
-- service (and that name) that started at or after since (seconds since the scenario
-- started), each { trace_id, root, roots, spans } with every span's children.
function T:traces(opts)
  if opts ~= nil and type(opts) ~= "table" then
    C.usage("bad t:traces argument: expected a table like { service = \"gateway\" }, got " ..
      C.typename(opts))
  end
  opts = opts or {}
  C.keys(opts, "t:traces option", { "service", "name", "since" })
  for _, k in ipairs({ "service", "name" }) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      C.usage(string.format("bad t:traces %s: expected a string, got %s", k, C.typename(opts[k])))
    end
  end
  local since = opts.since == nil and 0 or seconds(opts.since, "t:traces since")
  local list = C.traces(self, opts.service, opts.name, since)
  for i, tr in ipairs(list) do list[i] = tree(tr) end
  return list
end

-- t:collector(): the collector's base URL, as instances find it in OTEL_EXPORTER_OTLP_ENDPOINT.
function T:collector()
  return C.collector(self)
end

-- Load ------------------------------------------------------------------------------------

-- t:load{ to =, rate =, duration =, request =, concurrency =, timeout =, name =, keep = }: an
-- open-loop generator; returns its handle (:wait, :stop, :stats, :results) at once.
function T:load(opts)
  return C.load(self, opts)
end

-- t:http{ to =, method =, path =, body =, headers =, timeout = } → { status, body, headers,
-- latency } or { error =, message =, latency } (a failed request never raises).
function T:http(opts)
  return C.http(self, opts)
end

-- t:grpc{ to =, method = "/pkg.Svc/Method", message =, metadata =, timeout = } → { code,
-- message, body, latency }.
function T:grpc(opts)
  return C.grpc(self, opts)
end

-- Checks ----------------------------------------------------------------------------------

local function check_opts(opts, what, example, keys)
  if opts ~= nil and type(opts) ~= "table" then
    C.usage(string.format("bad %s options: expected a table like %s, got %s", what, example,
      C.typename(opts)))
  end
  C.keys(opts, what .. " option", keys)
  return opts or {}
end

local function opt_since(opts, what)
  if opts.since == nil then return nil end
  return seconds(opts.since, what .. " since")
end

-- Runs check() (→ ok, message, [usage]) until it passes or within has gone by, then records
-- the last verdict on the timeline (a failure does not stop the scenario, like t:expect).
local function settle(t, within, check)
  local start = C.now(t)
  while true do
    local ok, msg, usage = check()
    if ok or C.now(t) - start >= within then
      if not ok and usage then C.usage(usage) end
      C.record(t, ok, msg)
      return ok
    end
    t:sleep(math.min(0.05, within - (C.now(t) - start)))
  end
end

-- t:distribution(service, { since = }): requests served per instance since `since` (default:
-- when the scenario function began), counted from the service's SERVER spans by
-- service.instance.id: { ["users-1"] = 34, ... }, every instance included.
function T:distribution(service, opts)
  opts = check_opts(opts, "t:distribution", "{ since = 2 }", { "since" })
  local counts = C.distribution(self, service, opt_since(opts, "t:distribution"))
  return counts
end

-- t:expect_balanced(service, { tolerance = 0.2, since =, within = 0 }): every instance up for
-- the whole window served within tolerance of the even share (see docs/lua-api.md).
function T:expect_balanced(service, opts)
  opts = check_opts(opts, "t:expect_balanced", "{ tolerance = 0.2 }", { "tolerance", "since", "within" })
  local tol = opts.tolerance == nil and 0.2 or opts.tolerance
  if type(tol) ~= "number" or tol < 0 or tol ~= tol then
    C.usage("bad t:expect_balanced tolerance: expected a number >= 0 (0.2 = within 20% of the even share), got " ..
      (type(tol) == "number" and tostring(tol) or C.typename(tol)))
  end
  local since = opt_since(opts, "t:expect_balanced")
  local within = opts.within == nil and 0 or seconds(opts.within, "t:expect_balanced within")
  return settle(self, within, function() return C.balance(self, service, tol, since) end)
end

-- t:expect_traces{ root =, complete = true, max_attempts =, within = "2s", since = }: every
-- trace rooted at a span of service root is connected and no call made more attempts than
-- max_attempts, once the exports of the last `within` have had time to arrive.
function T:expect_traces(opts)
  if type(opts) ~= "table" then
    C.usage("bad t:expect_traces argument: expected a table like { root = \"gateway\" }, got " ..
      C.typename(opts))
  end
  C.keys(opts, "t:expect_traces option", { "root", "complete", "max_attempts", "within", "since" })
  if type(opts.root) ~= "string" then
    C.usage("bad t:expect_traces root: expected the name of the service requests enter by, got " ..
      C.typename(opts.root))
  end
  local complete = opts.complete
  if complete == nil then complete = true end
  if type(complete) ~= "boolean" then
    C.usage("bad t:expect_traces complete: expected a boolean, got " .. C.typename(complete))
  end
  local max = opts.max_attempts
  if max ~= nil and (math.type(max) ~= "integer" or max < 1) then
    C.usage("bad t:expect_traces max_attempts: expected a whole number >= 1, got " ..
      (type(max) == "number" and tostring(max) or C.typename(max)))
  end
  local since = opt_since(opts, "t:expect_traces")
  local within = seconds(opts.within == nil and 2 or opts.within, "t:expect_traces within")
  local called = C.now(self) -- traces begun after the call are not judged
  return settle(self, within, function()
    local ok, _, msg = C.trace_check(self, opts.root, complete, max, since, called)
    return ok, msg
  end)
end

-- t:expect_discovery(service, { within = "3s" }): within that time, every running client of
-- service (an instance of a service that needs it) was last told by its Consul agent exactly
-- the instances of service that are up and pass their checks, and no instance that exited on
-- its own is still registered.
function T:expect_discovery(service, opts)
  opts = check_opts(opts, "t:expect_discovery", "{ within = \"3s\" }", { "within" })
  local within = seconds(opts.within == nil and 3 or opts.within, "t:expect_discovery within")
  return settle(self, within, function() return C.discovery(self, service) end)
end

-- The fake broker -------------------------------------------------------------------------

local Broker = {}
local BrokerMT = strict("t.broker", Broker)

local function broker_fault(self, fault, value)
  C.broker(self.t, fault, value)
  self.on[fault] = value ~= false and value ~= 0 and value or nil
  return self
end

-- A rate given as a number or as { rate = r }.
local function rate_arg(v, what)
  if type(v) == "table" then
    for k in pairs(v) do
      if k ~= "rate" then C.usage(what .. ": unknown option '" .. tostring(k) .. "' (there is: rate)") end
    end
    v = v.rate
  end
  if type(v) ~= "number" then
    C.usage(what .. " expects a rate between 0 and 1 ({ rate = 0.1 }), got " .. type(v))
  end
  return v
end

-- t.broker:down() / :up(): the listener closes and every connection drops; then it listens
-- again on the same port, with what it held.
function Broker:down() return broker_fault(self, "down", true) end
function Broker:up() return broker_fault(self, "down", false) end
-- t.broker:restart(): connections get CONNECTION_FORCED; transient state is lost, durable
-- queues keep their persistent messages (unacked ones come back redelivered).
function Broker:restart() C.broker(self.t, "restart"); return self end
-- t.broker:drop_connections(): every client connection closes at once, without a word.
function Broker:drop_connections() return C.broker(self.t, "drop_connections") end
-- t.broker:block() / :unblock(): connection.blocked; publishers are not read until unblocked.
function Broker:block() return broker_fault(self, "block", true) end
function Broker:unblock() return broker_fault(self, "block", false) end
-- t.broker:delay(d): messages become deliverable d after they are enqueued (0 or nil: none).
function Broker:delay(d)
  return broker_fault(self, "delay", d == nil and 0 or seconds(d, "t.broker:delay duration"))
end
-- t.broker:duplicate{ rate = r } / :drop{ rate = r }: that share of deliveries to consumers is
-- sent twice (the copy redelivered) / lost; seeded. 0 turns it off.
function Broker:duplicate(r)
  return broker_fault(self, "duplicate", rate_arg(r, "t.broker:duplicate"))
end
function Broker:drop(r)
  return broker_fault(self, "drop", rate_arg(r, "t.broker:drop"))
end
-- t.broker:heal(): undoes whichever of down, block, delay, duplicate and drop is on.
function Broker:heal()
  if self.on.down then broker_fault(self, "down", false) end
  if self.on.block then broker_fault(self, "block", false) end
  if self.on.delay then broker_fault(self, "delay", 0) end
  if self.on.duplicate then broker_fault(self, "duplicate", 0) end
  if self.on.drop then broker_fault(self, "drop", 0) end
  return self
end
-- t.broker:stats(queue[, vhost]): { ready, unacked, consumers, published, delivered, acked,
-- redelivered, dropped, duplicated, dead_lettered, expired }, or nil when there is no queue.
function Broker:stats(queue, vhost) return C.broker_stats(self.t, queue, vhost) end
-- t.broker:connections(): how many client connections are open now.
function Broker:connections() return C.broker_info(self.t).connections end
-- t.broker:address(): "host:port" the broker listens on (instances reach it through links).
function Broker:address() return C.broker_info(self.t).address end

-- Background tasks --------------------------------------------------------------------------

-- Functions that run at a given time (seconds since the scenario started) from the scenario's
-- background timer, outside its coroutine, while the scenario goes on: they must not wait
-- (t:sleep there is a usage error). The nemesis is built on them.

local function rearm(t)
  local first
  for _, task in ipairs(C.fields_of(t).tasks) do
    if not first or task.at < first then first = task.at end
  end
  C.wake_at(t, first)
end

local function after(t, at, where, fn)
  local f = C.fields_of(t)
  f.seq = f.seq + 1
  local task = { at = at, seq = f.seq, where = where, fn = fn }
  f.tasks[#f.tasks + 1] = task
  rearm(t)
  return task
end

local function cancel(t, task)
  local tasks = C.fields_of(t).tasks
  for i, x in ipairs(tasks) do
    if x == task then table.remove(tasks, i) break end
  end
  rearm(t)
end

-- Called by the engine when the background timer fires: runs every task that is due, in
-- time order (tasks a task adds for now run in the same turn).
function C.background(t)
  local tasks = C.fields_of(t).tasks
  local now = C.now(t) + 0.001
  while true do
    local best
    for i, x in ipairs(tasks) do
      local b = best and tasks[best]
      if x.at <= now and (not b or x.at < b.at or (x.at == b.at and x.seq < b.seq)) then best = i end
    end
    if not best then break end
    local task = table.remove(tasks, best)
    C.bg_where(t, task.where)
    task.fn()
  end
  rearm(t)
end

-- The nemesis ------------------------------------------------------------------------------

-- What a nemesis can do, each with what it acts on (an instance, or a fake), which of the
-- targets it can act on, how to start it (a reason when it cannot, now) and how to heal it.
-- Starting and healing never wait: they run as background tasks.
local MENU = { "crash", "pause", "partition", "latency", "reset_peer", "consul_down", "broker_restart" }

local Nemesis = {}
local NemesisMT = strict("a nemesis", Nemesis)

-- The links into inst (from anyone), or when it has none, out of it; and every link of it.
local function links_of(t, inst)
  local others = C.others(t, inst.name, "t:nemesis")
  if #others == 0 then return {}, {} end
  local into = C.links(t, others, inst.name, "t:nemesis", true)
  local out = C.links(t, inst.name, others, "t:nemesis", true)
  local all = {}
  for _, id in ipairs(into) do all[#all + 1] = id end
  for _, id in ipairs(out) do all[#all + 1] = id end
  return #into > 0 and into or out, all, others
end

local function link_fault(kind)
  return {
    eligible = function(t, inst) local some = links_of(t, inst) return #some > 0 end,
    start = function(n, e, inst)
      local ids = links_of(n.t, inst)
      local opts = kind == "latency" and { ms = n.latency_ms, jitter = n.latency_ms // 4 } or { ms = 0 }
      e.handle = new_linkset(n.t, ids, "links to " .. inst.name .. " (nemesis)"):toxic(kind, opts)
    end,
    heal = function(_, e) e.handle:remove() end,
  }
end

local ACTIONS = {
  crash = {
    eligible = function() return true end,
    start = function(n, e, inst)
      if inst.state ~= "up" then return inst.name .. " is " .. inst.state end
      e.id = C.act(n.t, inst, "crash (nemesis)", "on")
      C.kill(n.t, inst)
    end,
    -- restarts it once it is down (returns false to be called again a little later)
    heal = function(n, e, inst, final)
      if final or inst.state == "up" or inst.state == "starting" then
        C.act(n.t, inst, final and "crash: nemesis stopped" or "crash: restarted already", "off", e.id)
        return true
      end
      if inst.state ~= "down" then
        if C.now(n.t) - e.heal_at < 10 then return false end
        C.act(n.t, inst, "crash: cannot restart, still " .. inst.state, "off", e.id)
        C.record(n.t, false, "nemesis: " .. inst.name .. " still " .. inst.state .. " 10s after its crash")
        return true
      end
      C.act(n.t, inst, "restart (nemesis)", "off", e.id)
      C.spawn(n.t, inst)
      n.restarted[inst.name] = inst
      return true
    end,
  },
  pause = {
    eligible = function() return true end,
    start = function(n, e, inst)
      local paused = C.fields_of(n.t).paused
      if inst.state ~= "up" then return inst.name .. " is " .. inst.state end
      if paused[inst.name] then return inst.name .. " is paused already" end
      e.id = C.act(n.t, inst, "pause (nemesis)", "on")
      paused[inst.name] = e.id
      C.pause(n.t, inst)
    end,
    heal = function(n, e, inst)
      local paused = C.fields_of(n.t).paused
      if paused[inst.name] ~= e.id then return end -- t:resume did it
      paused[inst.name] = nil
      C.act(n.t, inst, "resume (nemesis)", "off", e.id)
      if inst.state == "paused" then C.resume(n.t, inst) end
    end,
  },
  partition = {
    eligible = function(t, inst) local _, all = links_of(t, inst) return #all > 0 end,
    start = function(n, e, inst)
      local _, _, others = links_of(n.t, inst)
      e.handle = partition(n.t, inst.name, others, nil, "isolate " .. inst.name .. " (nemesis)")
    end,
    heal = function(_, e) e.handle:remove() end,
  },
  latency = link_fault("latency"),
  reset_peer = link_fault("reset_peer"),
  consul_down = {
    fake = "consul",
    start = function(n)
      if n.t.consul.on.down then return "consul is down already" end
      n.t.consul:down()
    end,
    heal = function(n) if n.t.consul.on.down then n.t.consul:up() end end,
  },
  broker_restart = {
    fake = "broker",
    start = function(n)
      if n.t.broker.on.down then return "the broker is down already" end
      n.t.broker:restart()
      n.t.broker:down()
    end,
    heal = function(n) if n.t.broker.on.down then n.t.broker:up() end end,
  },
}

local FAKE_NEEDS = {
  consul = 'the fake Consul (topology consul = "fake", the default)',
  broker = 'the fake broker (topology amqp = "fake", the default)',
}

local function positive(v, what, default)
  local s = seconds(v == nil and default or v, what)
  if s <= 0 then C.usage(string.format("bad %s: must be more than 0", what)) end
  return s
end

-- The instances the targets option names (all of them by default).
local function target_list(t, targets)
  local all = t:instances()
  if targets == nil then return all end
  local out = {}
  for _, name in ipairs(C.others(t, targets, "t:nemesis targets")) do out[name] = true end
  local list = {}
  for _, inst in ipairs(all) do
    if not out[inst.name] then list[#list + 1] = inst end
  end
  if #list == 0 then C.usage("t:nemesis targets: no instance in " .. describe(targets)) end
  return list
end

-- The faults option: a non-empty list of names from MENU (a name given twice is drawn twice
-- as often); each with the targets it can act on here.
local function fault_menu(t, faults, targets)
  if type(faults) ~= "table" or getmetatable(faults) ~= nil or #faults == 0 then
    C.usage("bad t:nemesis faults: expected a list of fault names like { \"crash\", \"partition\" }, got " ..
      (type(faults) == "table" and "an empty table" or C.typename(faults)))
  end
  local fakes, menu = C.fakes(t), {}
  for i, name in ipairs(faults) do
    if type(name) ~= "string" then
      C.usage(string.format("bad t:nemesis faults[%d]: expected a fault name, got %s", i, C.typename(name)))
    end
    local a = ACTIONS[name]
    if not a then
      local sug = C.suggest(name, MENU)
      C.usage(string.format("t:nemesis: unknown fault '%s'%s (faults: %s)", name,
        sug and (" (did you mean '" .. sug .. "'?)") or "", table.concat(MENU, ", ")))
    end
    local entry = { name = name, targets = {} }
    if a.fake then
      if not fakes[a.fake] then
        C.usage(string.format("t:nemesis: fault '%s' needs %s", name, FAKE_NEEDS[a.fake]))
      end
    else
      for _, inst in ipairs(targets) do
        if a.eligible(t, inst) then entry.targets[#entry.targets + 1] = inst end
      end
      if #entry.targets == 0 then
        C.usage(string.format("t:nemesis: fault '%s' has nothing to act on: none of the targets " ..
          "has a link (links exist only where a service `needs` another)", name))
      end
    end
    menu[#menu + 1] = entry
  end
  return menu
end

-- The schedule: quiet for about interval, a fault held for about hold, quiet again...; each
-- time uniform in [0.5, 1.5] of its mean; every fault healed by the end of duration.
local function plan(menu, rng, interval, hold, duration)
  local list, now = {}, 0
  while true do
    local at = now + interval * (0.5 + rng:float())
    local held = hold * (0.5 + rng:float())
    if at + held > duration then break end
    local entry = menu[rng:below(#menu) + 1]
    local target = entry.targets[1] and entry.targets[rng:below(#entry.targets) + 1]
    list[#list + 1] = { n = #list + 1, fault = entry.name, target = target and target.name or
      ACTIONS[entry.name].fake, at = at, hold = held, inst = target }
    now = at + held
  end
  return list
end

local start_next

-- Heals step e (final: the nemesis is stopping; a crashed instance stays down).
local function heal_step(n, e, final)
  local a = ACTIONS[e.fault]
  local done = a.heal(n, e, e.inst, final)
  if done == false then return false end
  e.healed = C.now(n.t)
  e.status = final and "stopped" or "healed"
  n.current = nil
  return true
end

local function heal_task(n, e)
  return function()
    n.task = nil
    local ok, err = pcall(heal_step, n, e, false)
    if ok and not err then -- not down yet: look again soon
      n.task = after(n.t, C.now(n.t) + 0.02, n.where, heal_task(n, e))
      return
    end
    if not ok then
      e.status, e.error, e.healed, n.current = "failed", tostring(err), C.now(n.t), nil
      C.record(n.t, false, string.format("nemesis: healing %s of %s failed: %s", e.fault, e.target, tostring(err)))
    end
    start_next(n)
  end
end

local function start_task(n, e)
  return function()
    n.task = nil
    e.started = C.now(n.t)
    local ok, why = pcall(ACTIONS[e.fault].start, n, e, e.inst)
    if not ok then
      e.status, e.error = "failed", tostring(why)
      C.record(n.t, false, string.format("nemesis: %s of %s failed: %s", e.fault, e.target, tostring(why)))
      start_next(n)
    elseif why then
      e.status, e.reason = "skipped", why
      n.t:note(string.format("nemesis: %s of %s skipped (%s)", e.fault, e.target, why))
      start_next(n)
    else
      e.status, n.current = "on", e
      e.heal_at = e.started + e.hold -- held for hold, even when it started late
      n.task = after(n.t, e.heal_at, n.where, heal_task(n, e))
    end
  end
end

-- Schedules the next step of the plan, or ends the nemesis.
start_next = function(n)
  n.next = n.next + 1
  local e = n.steps[n.next]
  if not e then
    n.done = true
    n.ended = C.now(n.t)
    return
  end
  n.task = after(n.t, n.t0 + e.at, n.where, start_task(n, e))
end

-- Stops n now: no new fault; the one on is healed (final: the scenario is ending).
local function stop(n, final)
  if n.done then return end
  if n.task then cancel(n.t, n.task) n.task = nil end
  local e = n.current
  if e then
    local ok, err = pcall(heal_step, n, e, final)
    if ok and not err then -- a crashed instance not down yet: it is restarted once it is
      if not final then
        C.await(n.t, e.inst, "down", 10)
        heal_step(n, e, false)
      end
    elseif not ok then
      e.status, e.error, e.healed = "failed", tostring(err), C.now(n.t)
      C.record(n.t, false, string.format("nemesis: healing %s of %s failed: %s", e.fault, e.target, tostring(err)))
    end
    if e.status == "healed" then e.status = "stopped" end
    n.current = nil
  end
  for i = n.next + 1, #n.steps do n.steps[i].status = "cancelled" end
  n.done = true
  n.ended = C.now(n.t)
end

-- Instances the nemesis restarted are ready again (a usage of the scenario coroutine).
local function await_restarted(n)
  local names = {}
  for name in pairs(n.restarted) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local inst = n.restarted[name]
    if inst.state == "starting" then C.await(n.t, inst, "ready") end
  end
  n.restarted = {}
end

local HISTORY_FIELDS = { "n", "fault", "target", "at", "hold", "status", "started", "healed", "reason", "error" }

-- nemesis:history() → what it did so far, in order: { n, fault, target, at, hold, status,
-- started, healed, reason, error } per step (at and hold as planned, relative to the start
-- of the nemesis; started and healed as they happened, in t:now() time).
function Nemesis:history()
  local out = {}
  for _, e in ipairs(self.s.steps) do
    if e.status ~= "pending" and e.status ~= "cancelled" then
      local copy = {}
      for _, k in ipairs(HISTORY_FIELDS) do copy[k] = e[k] end
      out[#out + 1] = copy
    end
  end
  return out
end

-- nemesis:plan() → the whole schedule, as drawn when it started: { n, fault, target, at,
-- hold } per step.
function Nemesis:plan()
  local out = {}
  for i, e in ipairs(self.s.steps) do
    out[i] = { n = e.n, fault = e.fault, target = e.target, at = e.at, hold = e.hold }
  end
  return out
end

-- nemesis:wait() → history: returns once every step has run and every fault is healed (and
-- every instance it restarted is ready again).
function Nemesis:wait()
  local n = self.s
  while not n.done do
    local left = n.t0 + n.duration - C.now(n.t)
    n.t:sleep(math.max(0.01, math.min(left, 1)))
  end
  await_restarted(n)
  return self:history()
end

-- nemesis:stop() → history: no new fault; the one that is on is healed now.
function Nemesis:stop()
  stop(self.s, false)
  await_restarted(self.s)
  return self:history()
end

-- nemesis:running() → true until it has ended (all steps run, or stopped).
function Nemesis:running()
  return not self.s.done
end

local NEMESIS_KEYS = { "faults", "targets", "interval", "hold", "duration", "seed", "latency" }

-- t:nemesis{ faults =, targets =, interval =, hold =, duration =, seed =, latency = }: a
-- seeded random schedule of faults, run in the background from now on; returns its handle.
function T:nemesis(opts)
  if type(opts) ~= "table" then
    C.usage("bad t:nemesis argument: expected a table like { faults = { \"crash\" }, duration = \"10s\" }, got " ..
      C.typename(opts))
  end
  C.keys(opts, "t:nemesis option", NEMESIS_KEYS)
  local interval = positive(opts.interval, "t:nemesis interval", 1)
  local hold = positive(opts.hold, "t:nemesis hold", interval)
  local duration = positive(opts.duration, "t:nemesis duration", 10)
  local latency = positive(opts.latency, "t:nemesis latency", 0.2)
  if duration < interval + hold then
    C.usage(string.format("t:nemesis: duration %s is shorter than interval + hold (%s + %s): no room for a fault",
      C.fmt(duration), C.fmt(interval), C.fmt(hold)))
  end
  local seed = opts.seed
  if seed ~= nil and math.type(seed) ~= "integer" then
    C.usage("bad t:nemesis seed: expected a whole number, got " ..
      (type(seed) == "number" and tostring(seed) or C.typename(seed)))
  end
  local menu = fault_menu(self, opts.faults, target_list(self, opts.targets))
  if seed == nil then seed = self:random(0, math.maxinteger) end
  -- the handle's state, apart from the handle (whose unknown keys are usage errors)
  local n = { t = self, where = C.where(self), t0 = C.now(self), duration = duration,
    latency_ms = math.floor(latency * 1000 + 0.5), seed = seed, next = 0, restarted = {}, done = false }
  n.steps = plan(menu, C.rng(seed), interval, hold, duration)
  for _, e in ipairs(n.steps) do e.status = "pending" end
  table.insert(C.fields_of(self).nemeses, n)
  self:note(string.format("nemesis: %d fault%s over %s (seed %d)", #n.steps,
    #n.steps == 1 and "" or "s", C.fmt(duration), seed))
  start_next(n)
  return setmetatable({ s = n }, NemesisMT)
end

-- Called by the engine as the scenario ends, whatever way: every nemesis stops and heals
-- what it holds; no background task runs any more.
function C.ending(t)
  for _, n in ipairs(C.fields_of(t).nemeses) do
    C.bg_where(t, n.where)
    stop(n, true)
  end
  C.fields_of(t).tasks = {}
end

-- The fields of t that are objects: built once per scenario.
local per_t = setmetatable({}, { __mode = "k" })

-- Per-scenario bookkeeping of the prelude, kept off t: faults on, instances paused.
function C.fields_of(t)
  local f = per_t[t]
  if not f then
    f = { faults = {}, paused = {}, tasks = {}, seq = 0, nemeses = {} }
    per_t[t] = f
  end
  return f
end

function C.fields(t)
  return {
    consul = setmetatable({ t = t, label = "consul", on = {} }, ConsulMT),
    broker = setmetatable({ t = t, label = "broker", on = {} }, BrokerMT),
    pb = C.pb,
  }
end

-- The body of every scenario coroutine: start the topology wave by wave (a service starts
-- once everything it needs is ready), then run the scenario function.
function C.main(t, fn, waves)
  for _, wave in ipairs(waves) do
    for _, inst in ipairs(wave) do C.spawn(t, inst) end
    for _, inst in ipairs(wave) do C.await(t, inst, "ready", nil, "setup: ") end
  end
  C.phase(t, "scenario")
  fn(t)
end

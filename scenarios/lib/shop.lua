-- The shop (services/: gateway, users, orders, payments) in scenarios: how to declare it,
-- how to drive it, and its invariants. Shop-specific, so it lives here and not in the C core.
--
--   local shop = require "shop"
--   local db = shop.dbs()                       -- fresh SQLite files for orders and payments
--   topology { services = shop.services { users = 3, orders = 2, payments = 2, db = db,
--                                          client = { kind = "orders", n = 30 } } }
--   ...
--   t:start("client-1")
--   local ids = shop.accepted(shop.wait_client(t, "client-1", "10s"))
--   t:eventually(function() return shop.no_lost_orders(ids, db) end, "10s")
--   t:expect(shop.no_lost_orders(ids, db))     -- true, or false and the evidence
--
-- Every invariant returns ok, evidence: evidence names the orders that break it and what
-- state each is in where (the gateway's answer, the orders and payments databases, the
-- payments logs), so a failed t:expect says what went wrong without opening a log.
local M = {}

-- Client service name -> the file its answers go to (filled by shop.services).
M.out_file = {}

-- The temporary files this file's scenarios made (databases, client answers): removed when
-- faultline closes the file's Lua state, by the finalizer of an object only M holds.
local tmpfiles = {}
local function tmpname()
  local p = os.tmpname()
  tmpfiles[#tmpfiles + 1] = p
  return p
end
M._cleanup = setmetatable({}, { __gc = function()
  for _, p in ipairs(tmpfiles) do
    for _, suffix in ipairs { "", "-wal", "-shm", "-journal" } do os.remove(p .. suffix) end
  end
end })

-- ---- declaring the shop ----

-- The FAULTLINE_BUG values the shop's services implement (docs/services.md), for a
-- topology's `mutants`: the gateway's clients (no-retry, retry-past-max, sticky-lb,
-- drop-traceparent), users and orders (ignore-deadline), every service (no-deregister),
-- payments (ack-before-commit; shop.mutants without it for topologies without payments).
M.MUTANTS = { "no-retry", "retry-past-max", "sticky-lb", "drop-traceparent", "no-deregister",
              "ignore-deadline", "ack-before-commit" }
function M.mutants(with_payments)
  local out = {}
  for _, m in ipairs(M.MUTANTS) do
    if with_payments or m ~= "ack-before-commit" then out[#out + 1] = m end
  end
  return out
end

-- The environment every shop service gets: sub-second health checks (so discovery reacts
-- within a scenario), spans flushed every 100 ms (so traces are complete within one).
-- FL_IT_MARK lets the integration tests find anything a scenario left running. The bug
-- switches (FAULTLINE_BUG) are the harness's: `faultline run --mutants` sets them.
function M.env(...)
  local e = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms",
              OTEL_BSP_SCHEDULE_DELAY = "100" }
  for _, extra in ipairs { ... } do
    for k, v in pairs(extra) do e[k] = v end
  end
  return e
end

-- Fresh database files for one scenario file (orders and payments replicas share them),
-- already in WAL mode: two replicas switching a new file to WAL at the same moment can find
-- it locked (SQLITE_BUSY, which the busy timeout does not cover) and exit at startup.
function M.dbs()
  local db = { orders = tmpname(), payments = tmpname() }
  for _, f in pairs(db) do M.query(f, "PRAGMA journal_mode=WAL") end
  return db
end

-- The curl loop that drives the gateway before scenarios have a load generator of their own:
-- `parallel` workers, each posting `n` requests (`kind` "users" or "orders") to `to` (a
-- service the client needs), `pause` seconds apart, each with a `max_time` limit. One line
-- per answer in the file $SHOP_OUT (not stdout, whose last 64 KiB only are kept):
--   <worker>.<i> <http status, 0 for none> <id from the answer, or -> <seconds it took>
-- then "done" once every worker is through. Bounded: parallel * n requests at most.
local CLIENT = [[
: > "$SHOP_OUT"
eval "addr=\$$SHOP_TO"
go() {
  i=0
  while [ $i -lt "$SHOP_N" ]; do
    i=$((i + 1))
    k="$1.$i"
    if [ "$SHOP_KIND" = users ]; then
      path=/users body="{\"name\":\"u$k\",\"email\":\"u$k@shop\"}"
    else
      path=/orders body="{\"user_id\":\"u$SHOP_RUN.$k\",\"item\":\"book\",\"amount\":$((100 + i))}"
    fi
    r=$(curl -s --max-time "$SHOP_MAX_TIME" -w ' %{http_code} %{time_total}' -X POST -d "$body" \
        "http://$addr$path")
    id=-
    case "$r" in *'"id":"'*) id=${r#*\"id\":\"}; id=${id%%\"*} ;; esac
    secs=${r##* }
    r=${r% *}
    echo "$k ${r##* } $id $secs" >> "$SHOP_OUT"
    [ "$SHOP_PAUSE" = 0 ] || sleep "$SHOP_PAUSE"
  done
}
w=0
while [ $w -lt "$SHOP_PARALLEL" ]; do
  w=$((w + 1))
  go $w &
done
wait
echo done >> "$SHOP_OUT"
echo "client done"
exec sleep 600]]

-- A client service (see CLIENT above); start it with t:start. opts: kind ("users"), n (100),
-- parallel (1), pause (0.02 s), max_time (5 s), to ("gateway").
function M.client(opts)
  opts = opts or {}
  local to = opts.to or "gateway"
  return {
    cmd = { "sh", "-c", CLIENT }, needs = { to }, ready = "none", start = false,
    env = M.env {
      SHOP_OUT = tmpname(), SHOP_KIND = opts.kind or "users", SHOP_N = opts.n or 100,
      SHOP_PARALLEL = opts.parallel or 1, SHOP_PAUSE = opts.pause or 0.02,
      SHOP_MAX_TIME = opts.max_time or 5, SHOP_RUN = tostring(os.time()),
      SHOP_TO = to:upper():gsub("-", "_") .. "_ADDR",
    },
  }
end

-- The services of a shop topology. o: users, orders, payments (replica counts; 0 or nil
-- leaves orders and payments out), db (shop.dbs(), needed with orders), env (for every
-- service), and per service <name>_env; clients = { name = client opts } (or client = opts
-- for one named "client"); extra = { name = service } added as they are.
function M.services(o)
  local s = {}
  local function env(name) return M.env(o.env or {}, o[name .. "_env"] or {}) end
  s.users = { cmd = { "users" }, replicas = o.users or 3, ready = "healthy", env = env("users") }
  local gw_needs = { "users" }
  if (o.orders or 0) > 0 then
    assert(o.db, "shop.services: orders need db = shop.dbs()")
    local e = env("orders")
    e.ORDERS_DB = o.db.orders
    e.ORDERS_OUTBOX_MS = e.ORDERS_OUTBOX_MS or 200
    s.orders = { cmd = { "orders" }, replicas = o.orders, ready = "healthy", env = e }
    gw_needs[2] = "orders"
  end
  if (o.payments or 0) > 0 then
    local e = env("payments")
    e.PAYMENTS_DB = o.db.payments
    s.payments = { cmd = { "payments" }, replicas = o.payments, ready = "healthy", env = e }
  end
  s.gateway = { cmd = { "gateway" }, replicas = o.gateways or 1, needs = gw_needs,
                ready = "healthy", env = env("gateway") }
  local clients = o.clients or {}
  if o.client then clients.client = o.client end
  for name, c in pairs(clients) do
    s[name] = M.client(c)
    M.out_file[name] = s[name].env.SHOP_OUT
  end
  for name, svc in pairs(o.extra or {}) do s[name] = svc end
  return s
end

-- ---- requests (tables in the form t:load and t:http take) ----

local seq = 0
local function unique(prefix, i)
  seq = seq + 1
  return string.format("%s%d.%d.%d", prefix, os.time(), seq, i or 0)
end

-- POST /users with a fresh name and e-mail.
function M.new_user(i)
  local k = unique("u", i)
  return { method = "POST", path = "/users", headers = { ["content-type"] = "application/json" },
           body = string.format('{"name":"%s","email":"%s@shop"}', k, k) }
end

-- POST /orders for a fresh user id, amount 100 + i cents.
function M.new_order(i)
  return { method = "POST", path = "/orders", headers = { ["content-type"] = "application/json" },
           body = string.format('{"user_id":"%s","item":"book","amount":%d}', unique("buyer", i),
             100 + (i or 0) % 1000) }
end

-- ---- what the curl client saw ----

-- The client's answers so far: a list of { key, status, id, secs } (status 0: no answer; id
-- nil when none; secs: how long the request took), and whether every worker is done.
function M.responses(t, inst)
  local name = tostring(inst)
  local path = M.out_file[name:match("^(.-)%-%d+$") or name]
  assert(path, "shop.responses: " .. name .. " is not a shop client")
  local list, done = {}, false
  local f = io.open(path, "r")
  if not f then return list, done end
  for line in f:lines() do
    if line == "done" then
      done = true
    else
      local k, st, id, secs = line:match("^(%S+) (%d+) (%S+) (%S+)$")
      if k then
        list[#list + 1] = { key = k, status = tonumber(st), id = id ~= "-" and id or nil, secs = tonumber(secs) }
      end
    end
  end
  f:close()
  return list, done
end

-- Starts a client (t:start), its answers from an earlier scenario forgotten first.
function M.start(t, inst)
  local name = tostring(inst)
  local path = M.out_file[name:match("^(.-)%-%d+$") or name]
  assert(path, "shop.start: " .. name .. " is not a shop client")
  assert(io.open(path, "w")):close()
  return t:start(inst)
end

-- Waits for the client to be done (within timeout) and returns its answers.
function M.wait_client(t, inst, timeout)
  return t:eventually(function()
    local list, done = M.responses(t, inst)
    return done and list
  end, timeout or "20s", tostring(inst) .. " sent all its requests")
end

-- Counts answers by status: { [201] = n, ... }, the number of answers, and a summary string
-- ("48 answers: 201 x45, 503 x3").
function M.statuses(list)
  local by, keys = {}, {}
  for _, r in ipairs(list) do
    if not by[r.status] then keys[#keys + 1] = r.status end
    by[r.status] = (by[r.status] or 0) + 1
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = string.format("%s x%d", k == 0 and "no answer" or k, by[k]) end
  return by, #list, string.format("%d answers: %s", #list, #parts > 0 and table.concat(parts, ", ") or "none")
end

-- The ids of the orders (or users) the gateway accepted (201).
function M.accepted(list)
  local ids = {}
  for _, r in ipairs(list) do
    if r.status == 201 and r.id then ids[#ids + 1] = r.id end
  end
  return ids
end

-- Waits until the client has n more answers after its first `from`, and returns those n, how
-- many were 201, and their summary (see statuses).
function M.next_answers(t, inst, from, n, within)
  local list = t:eventually(function()
    local l = M.responses(t, inst)
    return #l >= from + n and l
  end, within or "10s", n .. " more answers from " .. tostring(inst))
  local part = table.move(list, from + 1, from + n, 1, {})
  local by, _, summary = M.statuses(part)
  return part, by[201] or 0, summary
end

-- How many answers the client has so far.
function M.answered(t, inst)
  return #(M.responses(t, inst))
end

-- ---- what the services logged ----

-- Calls the instance answered OK, from its log ("users[users-2]: CreateUser users-2.7 ok").
function M.served(t, inst, method)
  local n = 0
  for _ in t:log(inst):gmatch((method or "CreateUser") .. " %S+ ok") do n = n + 1 end
  return n
end

-- The gateway's requests, from its log ("POST /users 201 attempts=2 via ADDR 3.1ms"), after
-- its first `from`: { [attempts] = requests }, and how many request lines there are in all.
function M.attempts(t, gateway, from)
  local by, i = {}, 0
  for a in t:log(gateway or "gateway-1"):gmatch("[A-Z]+ /%S+ %d+ attempts=(%d+)") do
    i = i + 1
    if i > (from or 0) then by[tonumber(a)] = (by[tonumber(a)] or 0) + 1 end
  end
  return by, i
end

-- What Consul tells `inst` about `service` now: the instance ids, sorted, in one string
-- ("users-1 users-3").
function M.view(t, inst, service)
  local ids = {}
  for _, e in ipairs(t:consul_view(inst, service)) do ids[#ids + 1] = e.id end
  table.sort(ids)
  return table.concat(ids, " ")
end

-- ---- traces ----

local function span_names(list)
  local out = {}
  for i, sp in ipairs(list) do out[i] = sp.service .. ":" .. sp.name end
  return table.concat(out, ", ")
end

-- Spans of a trace that match: kind, service and (optionally) a name prefix.
function M.spans(tr, kind, service, name)
  local out = {}
  for _, sp in ipairs(tr.spans) do
    if sp.kind == kind and sp.service == service and (not name or sp.name:sub(1, #name) == name) then
      out[#out + 1] = sp
    end
  end
  return out
end

-- What is wrong with one request's trace through the gateway: nil when it is complete, else
-- a description. Complete: a single root, the gateway's SERVER span; under it one CLIENT span
-- per attempt; under the last attempt the SERVER span of `callee` ("users", "orders") —
-- unless that attempt went to an address in `lost` (a set: a replica that crashed, taking
-- its unsent spans along). Also returns the number of attempts (CLIENT spans).
function M.trace_problem(tr, callee, lost)
  local root = tr.root
  local attempts = {}
  for _, c in ipairs(root.children) do
    if c.kind == "client" then attempts[#attempts + 1] = c end
  end
  local why
  if #tr.roots ~= 1 then
    why = string.format("%d roots (%s)", #tr.roots, span_names(tr.roots))
  elseif root.service ~= "gateway" or root.kind ~= "server" then
    why = "its root is " .. root.service .. ":" .. root.name .. ", not the gateway's SERVER span"
  elseif #attempts == 0 then
    why = "no CLIENT span under the gateway's"
  else
    local last = attempts[#attempts]
    local served = false
    for _, ch in ipairs(last.children) do
      if ch.kind == "server" and ch.service == callee then served = true end
    end
    if not served and not (lost and lost[last.attributes["server.address"]]) then
      why = "no " .. callee .. " SERVER span under the last attempt"
    end
  end
  return why and string.format("trace %s: %s; spans: %s", tr.trace_id, why, span_names(tr.spans)), #attempts
end

-- Every trace of the gateway's `route` spans ("POST /users") is complete (see trace_problem)
-- and there are `n` of them: ok, evidence, and the attempts over all traces. `lost`: see
-- trace_problem.
function M.complete_traces(t, route, callee, n, lost)
  local bad, attempts = {}, 0
  local list = t:traces { service = "gateway", name = route }
  for _, tr in ipairs(list) do
    local why, a = M.trace_problem(tr, callee, lost)
    attempts = attempts + a
    if why then bad[#bad + 1] = why end
  end
  if #list ~= n then
    table.insert(bad, 1, string.format("%d traces of %s, not %d", #list, route, n))
  end
  if #bad == 0 then return true, string.format("%d complete traces", n), attempts end
  return false, table.concat(bad, " | ", 1, math.min(#bad, 4)), attempts
end

-- The addresses of the links from `client` to `server` (what CLIENT spans name in
-- server.address), as a set.
function M.link_addrs(t, client, server)
  local set = {}
  for _, l in pairs(t:link(client, server):stats().links) do set[l.listen] = true end
  return set
end

-- ---- the databases ----

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Rows of a query on an SQLite file, through the sqlite3 command-line shell: a list of
-- lists of strings. A database that does not exist yet, or has no such table yet, has no
-- rows; any other failure is a Lua error naming the database and what sqlite3 said.
function M.query(db, sql)
  local p = assert(io.popen(string.format("sqlite3 -batch -noheader -separator '\t' -cmd '.timeout 2000' %s %s 2>&1",
    shell_quote(db), shell_quote(sql))))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then
    if out:find("no such table", 1, true) then return {} end
    error(string.format("sqlite3 %s: %s (exit %s)", db, out:gsub("%s+$", ""), tostring(code)), 2)
  end
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local row = {}
    for field in (line .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = field end
    rows[#rows + 1] = row
  end
  return rows
end

-- Orders in the orders database: { [id] = { status =, amount =, published = } }.
function M.orders(db)
  local out = {}
  for _, r in ipairs(M.query(db.orders, "SELECT id, status, amount, published FROM orders")) do
    out[r[1]] = { status = r[2], amount = tonumber(r[3]), published = r[4] == "1" }
  end
  return out
end

-- Charges in the payments database: { [order id] = { n = rows, amount = } }.
function M.charges(db)
  local out = {}
  for _, r in ipairs(M.query(db.payments, "SELECT order_id, amount FROM charges")) do
    local c = out[r[1]] or { n = 0 }
    c.n, c.amount = c.n + 1, tonumber(r[2])
    out[r[1]] = c
  end
  return out
end

-- ---- invariants ----

-- Waits until an invariant holds: t:eventually over inv(...), whose evidence, when it still
-- fails at the timeout, is in the failure message ("last error: ...").
function M.eventually(t, timeout, what, inv, ...)
  local args = table.pack(...)
  return t:eventually(function()
    local ok, ev = inv(table.unpack(args, 1, args.n))
    if not ok then error(ev, 0) end
    return ok
  end, timeout, what)
end

local function evidence(bad, total, what)
  if #bad == 0 then return true, string.format("all %d orders %s", total, what) end
  local shown = {}
  for i = 1, math.min(#bad, 5) do shown[i] = bad[i] end
  return false, string.format("%d of %d orders not %s: %s%s", #bad, total, what,
    table.concat(shown, "; "), #bad > 5 and string.format("; and %d more", #bad - 5) or "")
end

local function where(id, orders, charges)
  local o, c = orders[id], charges[id]
  return string.format("%s (orders db: %s, payments db: %s)", id,
    o and (o.status .. (o.published and ", announced" or ", not announced")) or "no row",
    c and string.format("%d charge%s of %d", c.n, c.n == 1 and "" or "s", c.amount) or "no charge")
end

-- No lost orders: every order the gateway accepted ends paid or failed in the orders
-- database. Meant inside t:eventually (orders are paid asynchronously) and then t:expect.
function M.no_lost_orders(ids, db)
  local orders, charges = M.orders(db), M.charges(db)
  local bad = {}
  for _, id in ipairs(ids) do
    local o = orders[id]
    if not (o and (o.status == "paid" or o.status == "failed")) then bad[#bad + 1] = where(id, orders, charges) end
  end
  return evidence(bad, #ids, "ended paid or failed")
end

-- Count of "charged order <id>" lines in the payments instances' logs.
function M.charge_lines(t)
  local n = {}
  for _, inst in ipairs(t:instances("payments")) do
    for id in t:log(inst):gmatch("charged order (%S+) %d+") do n[id] = (n[id] or 0) + 1 end
  end
  return n
end

-- Exactly one charge per paid order: one row in the payments database with the order's
-- amount, and one "charged order" line over every payments replica's log (a second would be
-- a second call to the payment provider); and no charge for an order that was not accepted.
function M.charged_once(t, ids, db)
  local orders, charges, lines = M.orders(db), M.charges(db), M.charge_lines(t)
  local bad, paid = {}, 0
  for _, id in ipairs(ids) do
    local o, c = orders[id], charges[id]
    if o and o.status == "paid" then
      paid = paid + 1
      if not c or c.n ~= 1 or c.amount ~= o.amount or (lines[id] or 0) ~= 1 then
        bad[#bad + 1] = where(id, orders, charges) .. string.format(", charged %d times in the payments logs", lines[id] or 0)
      end
    end
  end
  return evidence(bad, paid, "charged exactly once")
end

-- The gateway and the database agree: GET /orders/<id> through `gateway` (an instance)
-- answers 200 with the status the orders database holds. Needs t:http.
function M.consistent(t, ids, db, gateway)
  local orders, charges = M.orders(db), M.charges(db)
  local bad = {}
  for _, id in ipairs(ids) do
    local r = t:http { to = gateway, method = "GET", path = "/orders/" .. id }
    local got = r.status == 200 and r.body:match('"status":"(%w+)"')
    local o = orders[id]
    if not o or got ~= o.status then
      bad[#bad + 1] = string.format("%s: gateway says %s, %s", id,
        r.error and ("error " .. r.error) or (r.status .. " " .. tostring(got or r.body)), where(id, orders, charges))
    end
  end
  return evidence(bad, #ids, "the same at the gateway and in the database")
end

return M

-- Tracing: every service exports its spans to the scenario's collector (100 ms batches).
-- A request through the gateway must leave one connected trace: the gateway's SERVER span,
-- a CLIENT span per attempt under it (retries visible), and the callee's SERVER span under
-- the last attempt — also while connections fail and a replica crashes. An order's trace
-- must cross the broker: orders' order.created PRODUCER span, payments' CONSUMER span under
-- it, and on through payment.completed back to orders, all one trace.
local shop = require "shop"

local db = shop.dbs()

topology {
  grace = "2s",
  mutants = shop.mutants(true),
  services = shop.services {
    users = 2, orders = 1, payments = 1, db = db,
    payments_env = { PAYMENTS_CHARGE_MS = 20 },
    clients = {
      client = { kind = "users", n = 10, pause = 0.01 },
      many = { kind = "users", n = 40, pause = 0.01 },
      buyer = { kind = "orders", n = 5, pause = 0.01 },
    },
  },
}

-- Waits for n complete traces of `route`; returns the attempts over all of them.
local function all_complete(t, route, callee, n, lost)
  shop.eventually(t, "5s", n .. " complete traces of " .. route, shop.complete_traces, t, route, callee, n, lost)
  local ok, evidence, attempts = shop.complete_traces(t, route, callee, n, lost)
  t:expect(ok, evidence)
  return attempts
end

scenario("a request's trace is complete, with its retries as extra CLIENT spans", { catches = { "drop-traceparent" } }, function(t)
  -- catches drop-traceparent: users' spans start traces of their own
  t:link("gateway", "users"):drop()
  local f = t:link("gateway", "users"):reset_peer { first = 2 }
  shop.start(t, "client-1")
  local list = shop.wait_client(t, "client-1", "10s")
  local by, n, summary = shop.statuses(list)
  t:expect(by[201] == n, "every request answered: " .. summary)
  t:expect(f:stats().resets == 2, "two connections were reset: " .. f:stats().resets)
  local attempts = all_complete(t, "POST /users", "users", n)
  local logged = 0
  for a, k in pairs(shop.attempts(t)) do logged = logged + a * k end
  t:expect(attempts == logged and attempts > n, string.format(
    "one CLIENT span per attempt: %d spans for the gateway's %d attempts over %d requests", attempts, logged, n))
  -- the same, judged by the harness: connected, and the default policy's 3 attempts at most
  t:expect_traces { root = "gateway", complete = true, max_attempts = 3 }
end)

scenario("traces stay complete when a replica crashes mid-load", { catches = { "drop-traceparent" } }, function(t)
  shop.start(t, "many-1")
  t:eventually(function() return shop.answered(t, "many-1") >= 10 end, "5s", "the first answers")
  t:crash("users-1")
  local list = shop.wait_client(t, "many-1", "10s")
  local by, n, summary = shop.statuses(list)
  t:expect(by[201] == n, "every request answered: " .. summary)
  -- users-1's spans of its last 100 ms went down with it
  all_complete(t, "POST /users", "users", n, shop.link_addrs(t, "gateway", "users-1"))
end)

scenario("an order's trace crosses the broker to payments and back", { catches = { "drop-traceparent" } }, function(t)
  shop.start(t, "buyer-1")
  local ids = shop.accepted(shop.wait_client(t, "buyer-1", "10s"))
  t:expect(#ids == 5, "the gateway accepted 5 orders: " .. #ids)
  shop.eventually(t, "5s", "every order paid", shop.no_lost_orders, ids, db)
  all_complete(t, "POST /orders", "orders", #ids)
  -- and each of them reached payments and came back, in the same trace
  local problems = {}
  local function check(tr)
    local pub = shop.spans(tr, "producer", "orders")
    local got = shop.spans(tr, "consumer", "payments")
    local back = shop.spans(tr, "consumer", "orders")
    if #pub == 0 or #got == 0 or #back == 0 then
      return string.format("%d orders PRODUCER, %d payments CONSUMER, %d orders CONSUMER spans", #pub, #got, #back)
    end
    if got[1].parent_id ~= pub[1].span_id then return "payments' CONSUMER span is not under orders' PRODUCER span" end
    return nil
  end
  shop.eventually(t, "5s", "every order's trace reaches payments and comes back", function()
    problems = {}
    local traces = t:traces { service = "gateway", name = "POST /orders" }
    for _, tr in ipairs(traces) do
      local why = check(tr)
      if why then problems[#problems + 1] = "trace " .. tr.trace_id .. ": " .. why end
    end
    if #traces ~= #ids then problems[#problems + 1] = #traces .. " traces for " .. #ids .. " orders" end
    return #problems == 0, table.concat(problems, " | ", 1, math.min(#problems, 3))
  end)
end)

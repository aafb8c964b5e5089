-- Partitions: the whole shop (2 users, 2 orders, 1 payments replica, the gateway with a
-- 200 ms deadline) with links cut one way, both ways, or around one instance, then healed.
-- A partition holds bytes (as a real network leaves them in flight) and Consul, which checks
-- each instance directly, still calls a cut-off replica healthy — so requests routed to it
-- must fail at the deadline, not hang; the rest must succeed; and after the heal everything
-- must recover. Across the broker, a partition may delay orders but never lose one.
local shop = require "shop"

local db = shop.dbs()

topology {
  grace = "2s",
  mutants = shop.mutants(true),
  services = shop.services {
    users = 2, orders = 2, payments = 1, db = db,
    gateway_env = { GATEWAY_TIMEOUT_MS = 200 },
    payments_env = { PAYMENTS_CHARGE_MS = 50 },
    clients = {
      client = { kind = "users", n = 2000, pause = 0.02 },
      buyer = { kind = "orders", n = 15, pause = 0.02 },
    },
  },
}

local function load(t)
  shop.start(t, "client-1")
  t:eventually(function() return shop.answered(t, "client-1") >= 5 end, "5s", "the first answers")
end

-- The next n answers: no request may take much longer than the deadline; returns the
-- answers and their counts by status.
local function within_deadline(t, n, what)
  local list, _, summary = shop.next_answers(t, "client-1", shop.answered(t, "client-1"), n)
  local by = shop.statuses(list)
  local slowest = 0
  for _, r in ipairs(list) do slowest = math.max(slowest, r.secs) end
  t:expect(slowest < 0.5, string.format("%s: no request outlived the 200 ms deadline by much (slowest %.3f s)", what, slowest))
  return by, summary
end

local function recovers(t)
  t:heal()
  t:sleep("0.1s")
  local by, summary = within_deadline(t, 10, "after the heal")
  t:expect(by[201] == 10, "after the heal every request succeeds: " .. summary)
  local before = shop.served(t, "users-2")
  t:eventually(function() return shop.served(t, "users-2") > before end, "3s", "users-2 serves again")
end

scenario("one way from the gateway to a replica: its requests fail at the deadline, the rest pass", function(t)
  load(t)
  local before = shop.served(t, "users-2")
  local cut = t:partition("gateway", "users-2", { oneway = true })
  local by, summary = within_deadline(t, 12, "during the partition")
  t:expect((by[201] or 0) + (by[503] or 0) == 12 and (by[201] or 0) >= 4 and (by[503] or 0) >= 1,
    "requests to users-1 succeed, those to users-2 fail with 503: " .. summary)
  t:expect(shop.served(t, "users-2") == before, "nothing reached users-2 through the partition")
  t:expect(cut:stats().fired, "the partition held bytes")
  recovers(t)
end)

scenario("an isolated replica: requests to it fail at the deadline, and it serves again after the heal", function(t)
  load(t)
  t:isolate("users-2")
  local by, summary = within_deadline(t, 12, "during the isolation")
  t:expect((by[201] or 0) + (by[503] or 0) == 12 and (by[201] or 0) >= 4 and (by[503] or 0) >= 1,
    "users-1 answers, users-2 cannot: " .. summary)
  recovers(t)
end)

scenario("every replica cut off: every request fails at the deadline, and all recover", function(t)
  load(t)
  t:partition("gateway", "users")
  local by, summary = within_deadline(t, 6, "during the partition")
  t:expect(by[503] == 6, "every request fails with 503: " .. summary)
  recovers(t)
end)

scenario("orders cut off from the broker: orders wait in the outbox and are all paid after the heal", function(t)
  t:partition("orders", "broker")
  shop.start(t, "buyer-1")
  local ids = shop.accepted(shop.wait_client(t, "buyer-1", "10s"))
  t:expect(#ids == 15, "the gateway accepted all 15 orders while orders could not reach the broker: " .. #ids)
  t:sleep("0.3s")
  local orders, announced = shop.orders(db), 0
  for _, id in ipairs(ids) do
    if orders[id] and orders[id].published then announced = announced + 1 end
  end
  t:expect(announced == 0, announced .. " orders were announced through the partition")
  t:heal()
  shop.eventually(t, "8s", "every order paid after the heal", shop.no_lost_orders, ids, db)
  t:expect(shop.charged_once(t, ids, db))
end)

scenario("payments cut off from the broker mid-flow: every order is paid once after the heal", function(t)
  shop.start(t, "buyer-1")
  t:eventually(function() return t:log("payments-1"):find("charged order", 1, true) end, "10s",
    "payments charging")
  t:partition("payments", "broker")
  local ids = shop.accepted(shop.wait_client(t, "buyer-1", "10s"))
  t:expect(#ids == 15, "the gateway accepted all 15 orders: " .. #ids)
  t:sleep("0.3s")
  t:heal()
  shop.eventually(t, "8s", "every order paid after the heal", shop.no_lost_orders, ids, db)
  t:expect(shop.charged_once(t, ids, db))
end)

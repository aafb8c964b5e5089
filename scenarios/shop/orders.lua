-- The shop's order flow through the harness: the gateway takes orders over HTTP, orders
-- (2 replicas, one SQLite file) stores them and announces order.created through an outbox,
-- payments (2 replicas, one SQLite file) charges each order once and announces
-- payment.completed, and orders marks it paid — every service on the fake broker through its
-- own link. A curl loop posts 30 orders. Checked: every accepted order ends paid and is
-- charged exactly once — on a healthy broker, across a broker restart, with deliveries
-- duplicated, and with a payments replica crashing mid-flow.

local ORDERS_DB, PAYMENTS_DB = os.tmpname(), os.tmpname()

local function env(extra)
  local e = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms", OTEL_SDK_DISABLED = "true",
              FAULTLINE_BUG = os.getenv("SHOP_BUG") or "" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local N = 30
local CLIENT = [[
i=0
while [ $i -lt ]] .. N .. [[ ]; do
  i=$((i + 1))
  r=$(curl -s --max-time 5 -X POST -d "{\"user_id\":\"u$i\",\"item\":\"book\",\"amount\":$((100 + i))}" \
      "http://$GATEWAY_ADDR/orders")
  echo "posted $i $r"
  sleep 0.03
done
echo "posted all"
exec sleep 600]]

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, ready = "healthy", env = env() },
    orders = { cmd = { "orders" }, replicas = 2, ready = "healthy",
               env = env { ORDERS_DB = ORDERS_DB, ORDERS_OUTBOX_MS = 200 } },
    payments = { cmd = { "payments" }, replicas = 2, ready = "healthy",
                 env = env { PAYMENTS_DB = PAYMENTS_DB, PAYMENTS_CHARGE_MS = 400 } },
    gateway = { cmd = { "gateway" }, needs = { "users", "orders" }, ready = "healthy", env = env() },
    client = { cmd = { "sh", "-c", CLIENT }, needs = { "gateway" }, ready = "none", start = false,
               env = env() },
  },
}

-- The ids of the orders the gateway accepted (201 bodies carry "id").
local function accepted(t)
  local ids = {}
  for id in t:log("client-1"):gmatch('"id":"(o%-%x+)"') do ids[#ids + 1] = id end
  return ids
end

local function count_lines(t, insts, pattern)
  local n = {}
  for _, inst in ipairs(insts) do
    for id in t:log(inst):gmatch(pattern) do n[id] = (n[id] or 0) + 1 end
  end
  return n
end

-- Every accepted order paid (orders says so) and charged exactly once (payments says so).
local function all_paid_once(t)
  local ids = accepted(t)
  local paid = count_lines(t, { "orders-1", "orders-2" }, "order (o%-%x+) paid")
  local charged = count_lines(t, { "payments-1", "payments-2" }, "charged order (o%-%x+) ")
  local unpaid, twice = 0, 0
  for _, id in ipairs(ids) do
    if not paid[id] then unpaid = unpaid + 1 end
    if (charged[id] or 0) > 1 then twice = twice + 1 end
  end
  return #ids, unpaid, twice
end

local function flow(t, what, started)
  if not started then t:start("client-1") end
  t:eventually(function() return t:log("client-1"):find("posted all", 1, true) end, "20s",
    "the client posted its orders")
  t:eventually(function()
    local n, unpaid = all_paid_once(t)
    return n == N and unpaid == 0
  end, "20s", "every accepted order paid " .. what)
  local n, unpaid, twice = all_paid_once(t)
  t:expect(n == N, string.format("all %d orders accepted, got %d", N, n))
  t:expect(unpaid == 0 and twice == 0,
    string.format("%d orders: %d unpaid, %d charged twice", n, unpaid, twice))
end

scenario("every order ends paid, charged once", function(t)
  flow(t, "on a healthy broker")
end)

scenario("a broker restart loses no order and charges none twice", function(t)
  t:start("client-1")
  t:eventually(function() return #accepted(t) >= 10 end, "20s", "10 orders accepted")
  t.broker:restart()
  flow(t, "after the restart", true)
end)

scenario("duplicated deliveries are charged once", function(t)
  t.broker:duplicate { rate = 0.5 }
  flow(t, "with duplicates")
  local st = t.broker:stats("payments.order-created")
  t:expect(st.duplicated > 0, "deliveries were duplicated: " .. st.duplicated)
end)

scenario("a payments replica crashing mid-flow loses no payment", function(t)
  t:start("client-1")
  -- orders flow through payments-1 (each charge takes 400 ms): crash it with some in hand
  t:eventually(function() return t:log("payments-1"):find("charged order", 1, true) end, "20s",
    "payments-1 charging")
  t:crash("payments-1")
  t:sleep("0.3s")
  t:restart("payments-1")
  flow(t, "after the crash", true)
end)

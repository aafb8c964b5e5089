-- Soak: the whole shop (3 users, 2 orders, 2 payments, the gateway) under steady traffic —
-- a client creating users and one placing orders — while a seeded schedule throws a fault
-- every second or so: a users or payments replica crashed and restarted, a link resetting
-- or slow, broker connections dropped, the broker restarted, deliveries duplicated, orders
-- cut off from the broker, Consul down. Then everything is healed and the shop must be
-- whole: requests answered (retries hide the users faults), every accepted order paid,
-- each charged once, every instance up. 30 s by default; FAULTLINE_SOAK=nightly makes it
-- five minutes (docs/ci.md, "Nightly soaks"); FAULTLINE_SOAK=<duration> sets it.
local shop = require "shop"

local db = shop.dbs()
local mode = os.getenv("FAULTLINE_SOAK") or ""
local DURATION = mode == "nightly" and 300 or tonumber((mode:gsub("s$", ""))) or 30

topology {
  grace = "2s",
  mutants = shop.mutants(true),
  services = shop.services {
    users = 3, orders = 2, payments = 2, db = db,
    payments_env = { PAYMENTS_CHARGE_MS = 30 },
    clients = {
      client = { kind = "users", n = DURATION * 20, pause = 0.05 },
      buyer = { kind = "orders", n = DURATION * 20, pause = 0.05 },
    },
  },
}

local function pick(t, list) return list[t:random(#list)] end

-- Each fault: applied, then undone after `hold` seconds; a short name for the timeline.
local FAULTS = {
  { "crash a users replica", function(t)
      local v = pick(t, { "users-1", "users-2", "users-3" })
      t:crash(v)
      return function() t:restart(v) end
    end },
  { "crash a payments replica", function(t)
      local v = pick(t, { "payments-1", "payments-2" })
      t:crash(v)
      return function() t:restart(v) end
    end },
  { "reset connections to a users replica", function(t)
      local f = t:link("gateway", pick(t, { "users-1", "users-2", "users-3" })):reset_peer { ms = 0 }
      return function() f:remove() end
    end },
  { "slow link to an orders replica", function(t)
      local f = t:link("gateway", pick(t, { "orders-1", "orders-2" })):latency { ms = 100, jitter = 50 }
      return function() f:remove() end
    end },
  { "drop broker connections", function(t)
      t.broker:drop_connections()
      return function() end
    end },
  { "restart the broker", function(t)
      t.broker:restart()
      return function() end
    end },
  { "duplicate deliveries", function(t)
      t.broker:duplicate { rate = 0.3 }
      return function() t.broker:duplicate { rate = 0 } end
    end },
  { "cut an orders replica off the broker", function(t)
      local f = t:partition(pick(t, { "orders-1", "orders-2" }), "broker")
      return function() f:remove() end
    end },
  { "Consul down", function(t)
      t.consul:down()
      return function() t.consul:up() end
    end },
}

scenario("a mixed-fault soak leaves the shop whole", { timeout = DURATION + 90 }, function(t)
  shop.start(t, "client-1")
  shop.start(t, "buyer-1")
  local fired = {}
  while t:now() < DURATION do
    local f = pick(t, FAULTS)
    t:note("soak: " .. f[1])
    fired[f[1]] = (fired[f[1]] or 0) + 1
    local undo = f[2](t)
    t:sleep(0.3 + t:random() * 0.9)
    undo()
    t:sleep(0.2 + t:random() * 0.5)
  end
  t:heal()
  t.consul:heal()
  t.broker:heal()
  t:stop("client-1")
  t:stop("buyer-1")
  local kinds = 0
  for _ in pairs(fired) do kinds = kinds + 1 end
  t:note(string.format("soak: %d kinds of fault fired", kinds))

  local users = shop.responses(t, "client-1")
  local by, n, summary = shop.statuses(users)
  t:expect(n >= DURATION * 5, "the users client kept going: " .. summary)
  t:expect((by[201] or 0) >= n * 0.99, "users: at least 99% created through the faults: " .. summary)
  local orders = shop.responses(t, "buyer-1")
  local ids = shop.accepted(orders)
  local obv, on, osummary = shop.statuses(orders)
  t:expect(#ids >= on * 0.99, "orders: at least 99% accepted through the faults: " .. osummary)
  shop.eventually(t, "20s", "every accepted order paid after the soak", shop.no_lost_orders, ids, db)
  t:expect(shop.no_lost_orders(ids, db))
  t:expect(shop.charged_once(t, ids, db))
  for _, inst in ipairs(t:instances()) do
    if inst.service ~= "client" and inst.service ~= "buyer" then
      t:expect(inst.state == "up", inst.name .. " is up at the end: " .. inst.state)
    end
  end
end)

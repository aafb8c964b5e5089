-- Balancing: three users replicas behind two gateways, one balancing round robin (the
-- default) and one, "p2c", by power of two choices on calls in flight (LB_POLICY=p2c). Curl
-- clients create users through each. Checked, from what each replica says it served: round
-- robin spreads requests evenly, and still does when one replica's link is slow; P2C sends
-- the slow replica less, since its calls stay in flight longer.
local shop = require "shop"

topology {
  grace = "2s",
  mutants = shop.mutants(),
  services = shop.services {
    users = 3,
    extra = {
      p2c = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy",
              env = shop.env { LB_POLICY = "p2c" } },
    },
    clients = {
      client = { kind = "users", n = 60, pause = 0.005 },
      busy = { kind = "users", n = 20, parallel = 5, pause = 0, to = "p2c" },
    },
  },
}

local function served(t)
  return { shop.served(t, "users-1"), shop.served(t, "users-2"), shop.served(t, "users-3") }
end

-- What each replica served since `before`, as numbers and as "users-1 20, users-2 21, ...".
local function shares(t, before)
  local now, parts, total = served(t), {}, 0
  for i = 1, 3 do
    now[i] = now[i] - before[i]
    total = total + now[i]
    parts[i] = string.format("users-%d %d", i, now[i])
  end
  return now, total, table.concat(parts, ", ")
end

local function run(t, client)
  local before = served(t)
  shop.start(t, client)
  local list = shop.wait_client(t, client, "20s")
  local by, n, summary = shop.statuses(list)
  t:expect(by[201] == n, "every request answered: " .. summary)
  return shares(t, before)
end

scenario("round robin spreads requests evenly", { catches = { "sticky-lb" } }, function(t)
  -- catches sticky-lb: one replica takes everything
  local s, total, text = run(t, "client-1")
  for i = 1, 3 do
    t:expect(math.abs(s[i] - total / 3) <= 2, string.format("users-%d served its third of %d: %s", i, total, text))
  end
  -- the same, judged by the harness from users' SERVER spans
  t:expect_balanced("users", { tolerance = 0.25, within = "1s" })
end)

scenario("round robin gives a replica behind a slow link its third all the same", function(t)
  local slow = t:link("gateway", "users-1"):latency { ms = 20 }
  local s, total, text = run(t, "client-1")
  t:expect(slow:stats().fired, "the latency fault fired")
  t:expect(math.abs(s[1] - total / 3) <= 2, string.format("users-1 served its third of %d: %s", total, text))
end)

scenario("P2C least-request sends less to a replica behind a slow link", { catches = { "sticky-lb" } }, function(t)
  -- catches sticky-lb too: one replica takes everything
  local slow = t:link("p2c", "users-1"):latency { ms = 200 }
  local s, total, text = run(t, "busy-1")
  t:expect(slow:stats().fired, "the latency fault fired")
  t:expect(s[1] < total * 0.2, string.format("users-1 served less than a fifth of %d: %s", total, text))
  t:expect(s[2] > total * 0.3 and s[3] > total * 0.3,
    string.format("the fast replicas shared the rest: %s", text))
end)

-- The shop's first slice through the harness: three users replicas (gRPC, registered in the
-- fake Consul with gRPC health checks) behind the gateway (HTTP, discovering users through
-- Consul, balancing round robin, retrying UNAVAILABLE up to 3 attempts), and a curl loop
-- posting users through the gateway. Checked: requests spread over the replicas; a crashed
-- replica is hidden by retries (no request fails) and leaves the gateway's view; connections
-- reset on the way to one replica are hidden by retries; a replica cut off by a partition is
-- routed around.

-- SHOP_BUG (e.g. SHOP_BUG=no-retry faultline run scenarios/shop) puts a FAULTLINE_BUG into every service, to see a check
-- catch the defect it exists for.
local function env(extra)
  local e = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms", OTEL_SDK_DISABLED = "true",
              FAULTLINE_BUG = os.getenv("SHOP_BUG") or "" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local CLIENT = [[
i=0
while :; do
  i=$((i + 1))
  s=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -X POST \
      -d "{\"name\":\"u$i\",\"email\":\"u$i@shop\"}" "http://$GATEWAY_ADDR/users")
  echo "req $i status $s"
  sleep 0.02
done]]

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, replicas = 3, ready = "healthy", env = env() },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy", env = env() },
    client = { cmd = { "sh", "-c", CLIENT }, needs = { "gateway" }, ready = "none",
               start = false, env = env() },
  },
}

local function statuses(t)
  local ok, bad = 0, 0
  for s in t:log("client-1"):gmatch("req %d+ status (%d+)") do
    if s == "201" then ok = ok + 1 else bad = bad + 1 end
  end
  return ok, bad
end

local function served(t, i)
  local n = 0
  for _ in t:log("users-" .. i):gmatch("CreateUser users%-%d%.%d+ ok") do n = n + 1 end
  return n
end

scenario("requests spread over the replicas", function(t)
  t:start("client-1")
  t:eventually(function() return select(1, statuses(t)) >= 30 end, "15s", "30 users created")
  local ok, bad = statuses(t)
  t:expect(bad == 0, "no request failed (" .. bad .. " did)")
  for i = 1, 3 do
    local n = served(t, i)
    t:expect(n >= ok / 3 - 3, string.format("users-%d served its share: %d of %d", i, n, ok))
  end
end)

scenario("a crashed replica is hidden by retries", function(t)
  t:start("client-1")
  t:eventually(function() return select(1, statuses(t)) >= 10 end, "15s", "10 users created")
  t:crash("users-1")
  local before = served(t, 2) + served(t, 3)
  t:eventually(function() return served(t, 2) + served(t, 3) >= before + 40 end, "20s",
    "40 more users on the two replicas left")
  local ok, bad = statuses(t)
  t:expect(bad == 0, string.format("no request failed: %d ok, %d failed", ok, bad))
end)

scenario("connections reset on the way to one replica are hidden by retries", function(t)
  t:start("client-1")
  t:eventually(function() return select(1, statuses(t)) >= 10 end, "15s", "10 users created")
  local f = t:link("gateway", "users-1"):reset_peer { ms = 0 }
  local ok0 = statuses(t)
  t:eventually(function() return select(1, statuses(t)) >= ok0 + 40 end, "20s", "40 more users")
  local ok, bad = statuses(t)
  t:expect(f:stats().resets > 0, "the fault fired: " .. f:stats().resets .. " resets")
  t:expect(bad == 0, string.format("no request failed: %d ok, %d failed", ok, bad))
end)

scenario("a replica cut off by a partition is routed around", function(t)
  t:start("client-1")
  t:eventually(function() return select(1, statuses(t)) >= 10 end, "15s", "10 users created")
  t:partition("gateway", "users-2")
  local before = served(t, 2)
  t:sleep("1.5s")
  local ok, bad = statuses(t)
  t:expect(bad == 0, string.format("no request failed: %d ok, %d failed", ok, bad))
  t:expect(served(t, 2) <= before + 1, "users-2 got nothing through the partition")
end)

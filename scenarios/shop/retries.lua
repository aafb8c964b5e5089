-- Retries: the gateway's users client retries UNAVAILABLE (gRFC A6: up to 4 attempts, 20 ms
-- to 200 ms backoff with jitter) on another replica, with retry throttling (10 tokens, 1
-- back per success: retries stop while half or more are spent). A curl client creates users
-- through the gateway. Checked: connections failing a few times are retried into successes;
-- a replica resetting every connection, or crashing mid-load, costs no request; and when
-- every replica is unreachable, every request fails but retries stop multiplying the load.
local shop = require "shop"

local CONFIG = [[{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":4,
"initialBackoff":"0.02s","maxBackoff":"0.2s","backoffMultiplier":2,
"retryableStatusCodes":["UNAVAILABLE"]}}],"retryThrottling":{"maxTokens":10,"tokenRatio":1}}]]

topology {
  grace = "2s",
  mutants = shop.mutants(),
  services = shop.services {
    users = 3,
    gateway_env = { GRPC_SERVICE_CONFIG = CONFIG:gsub("\n", "") },
    client = { kind = "users", n = 2000, pause = 0.02 },
  },
}

local function load(t)
  shop.start(t, "client-1")
  t:eventually(function() return shop.answered(t, "client-1") >= 5 end, "5s",
    "the client's first answers")
end

scenario("connections failing twice are retried into successes", { catches = { "no-retry" } }, function(t)
  -- catches no-retry
  load(t)
  local from = shop.answered(t, "client-1")
  local _, lines = shop.attempts(t)
  -- the next two connections the gateway opens to users are reset as they open
  t:link("gateway", "users"):drop()
  local f = t:link("gateway", "users"):reset_peer { first = 2 }
  local _, ok, summary = shop.next_answers(t, "client-1", from, 20)
  t:expect(f:stats().resets == 2, "two connections were reset: " .. f:stats().resets)
  t:expect(ok == 20, "every request answered: " .. summary)
  local by = shop.attempts(t, nil, lines)
  t:expect((by[2] or 0) + (by[3] or 0) > 0, string.format(
    "the failures were retried: requests with 1 attempt: %d, 2: %d, 3: %d", by[1] or 0, by[2] or 0, by[3] or 0))
end)

scenario("a replica resetting every connection costs no request", { catches = { "no-retry" } }, function(t)
  -- catches no-retry
  load(t)
  local f = t:link("gateway", "users-1"):reset_peer { ms = 0 }
  local _, ok, summary = shop.next_answers(t, "client-1", shop.answered(t, "client-1"), 40)
  t:expect(f:stats().resets > 0, "the fault fired: " .. f:stats().resets .. " resets")
  t:expect(ok == 40, "every request answered: " .. summary)
end)

scenario("a replica crashing mid-load costs no request", function(t)
  -- catches no-retry
  load(t)
  local from = shop.answered(t, "client-1")
  t:crash("users-1")
  local before = shop.served(t, "users-2") + shop.served(t, "users-3")
  local _, ok, summary = shop.next_answers(t, "client-1", from, 40)
  t:expect(ok == 40, "every request answered: " .. summary)
  t:expect(shop.served(t, "users-2") + shop.served(t, "users-3") >= before + 30,
    "the two replicas left took the load")
end)

scenario("under a total outage retries are throttled: errors, but no retry storm", { catches = { "retry-past-max" } }, function(t)
  -- catches retry-past-max: the first failing request is tried more than maxAttempts times
  load(t)
  local _, lines = shop.attempts(t)
  local from = shop.answered(t, "client-1")
  local f = t:link("gateway", "users"):refuse() -- new connections: open ones are closed next
  t:link("gateway", "users"):drop()
  local list, ok, summary = shop.next_answers(t, "client-1", from + 1, 40)
  t:expect(ok == 0, "every request failed: " .. summary)
  local by, n = shop.attempts(t, nil, lines)
  local tries, most = 0, 0
  for a, k in pairs(by) do tries, most = tries + a * k, math.max(most, a) end
  t:expect(most <= 4, "no request tried more than maxAttempts (4) times: at most " .. most)
  local refused = f:stats().refused
  t:note(string.format("%d requests, %d attempts by the gateway, %d connections refused", n - lines, tries, refused))
  t:expect(tries <= (n - lines) + 10, string.format(
    "at most 10 retries (the tokens) over %d failing requests, not up to 3 more each: %d attempts", n - lines, tries))
  -- counted where the attempts arrive: each attempt needs a connection, refused on the
  -- replicas' links (a few more: the client also reconnects on its own)
  t:expect(refused >= 1 and refused <= (n - lines) + 15, string.format(
    "the replicas' links saw %d connection attempts for %d failing requests (the gateway counted %d attempts)",
    refused, n - lines, tries))
  f:remove()
  _, ok, summary = shop.next_answers(t, "client-1", shop.answered(t, "client-1"), 10)
  t:expect(ok >= 9, "requests succeed again once the replicas are reachable: " .. summary)
end)

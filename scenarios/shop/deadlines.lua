-- Deadlines: both users replicas answer 300 ms late (USERS_DELAY_MS). The gateway gives each
-- call 100 ms (GATEWAY_TIMEOUT_MS), sent along as grpc-timeout; a second gateway, "patient",
-- gives 2 s. Checked: the impatient gateway answers 503 at its deadline without retrying
-- (DEADLINE_EXCEEDED is not retryable and no time is left), and users abandons the call
-- when the deadline passes instead of finishing work nobody waits for; the patient gateway's
-- calls all succeed, late. (Its own file: USERS_DELAY_MS is set per service.)
local shop = require "shop"

local N = 12

topology {
  grace = "2s",
  mutants = shop.mutants(),
  services = shop.services {
    users = 2,
    users_env = { USERS_DELAY_MS = 300 },
    gateway_env = { GATEWAY_TIMEOUT_MS = 100 },
    extra = {
      patient = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy",
                  env = shop.env { GATEWAY_TIMEOUT_MS = 2000 } },
    },
    clients = {
      client = { kind = "users", n = 8, parallel = 4, pause = 0 },
      waiter = { kind = "users", n = N // 3, parallel = 3, pause = 0, to = "patient" },
    },
  },
}

local function created(t)
  return shop.served(t, "users-1") + shop.served(t, "users-2")
end

local function exceeded(t)
  local n = 0
  for _, u in ipairs { "users-1", "users-2" } do
    for _ in t:log(u):gmatch("deadline exceeded") do n = n + 1 end
  end
  return n
end

scenario("past its deadline a call fails fast, and the server drops it", { catches = { "ignore-deadline" } }, function(t)
  -- catches ignore-deadline: users finishes (and creates) users nobody waits for. The
  -- gateway cancels a call at its deadline, which stops it either way; to see the server
  -- keep its own deadline, the gateway is paused (a frozen client cancels nothing) while
  -- four calls at a time keep the replicas busy.
  shop.start(t, "client-1")
  t:eventually(function() return shop.answered(t, "client-1") >= 4 end, "5s", "the first answers")
  t:pause("gateway-1")
  t:sleep("0.5s")
  t:resume("gateway-1")
  local list = shop.wait_client(t, "client-1", "10s")
  local by, n, summary = shop.statuses(list)
  t:expect(by[503] == n, "every request failed at the deadline: " .. summary)
  local secs = {}
  for _, r in ipairs(list) do secs[#secs + 1] = r.secs end
  table.sort(secs)
  t:expect(secs[n // 2] < 0.25, string.format(
    "the gateway answered at its 100 ms deadline: median %.3f s", secs[n // 2]))
  local tries = shop.attempts(t, "gateway-1")
  t:expect(tries[1] == n, string.format("no retry past the deadline: %d of %d requests made one attempt", tries[1] or 0, n))
  -- a server that ignored its deadline would finish each call 300 ms after it came in
  t:always(function() return created(t) == 0 end, "400ms", "users created nobody for calls past their deadline")
  t:expect(exceeded(t) >= 1, string.format("users ended %d calls at their deadline", exceeded(t)))
end)

scenario("a deadline longer than the work lets every call through", function(t)
  shop.start(t, "waiter-1")
  local list = shop.wait_client(t, "waiter-1", "15s")
  local by, _, summary = shop.statuses(list)
  t:expect(by[201] == N, "every request succeeded: " .. summary)
  local fastest = math.huge
  for _, r in ipairs(list) do fastest = math.min(fastest, r.secs) end
  t:expect(fastest >= 0.29, string.format("each one waited for users' 300 ms: fastest %.3f s", fastest))
  t:expect(created(t) == N, "users created " .. created(t) .. " users")
  t:expect(exceeded(t) == 0, "and ended none at a deadline")
end)

-- The generic checks (harness/checks.c) on the real shop: three users replicas behind the
-- gateway, discovered through the fake Consul, every service exporting its spans to the
-- harness collector every 100 ms, and t:load posting users through the gateway. Every
-- scenario passes on the correct services; test_checks.sh runs them again with SHOP_BUG set
-- to the mutant each check exists for (sticky-lb, drop-traceparent, retry-past-max,
-- no-deregister) and with SHOP_RETRY (a retry policy of 5 attempts against max_attempts = 3),
-- and wants them to fail.

local function env(extra)
  local e = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms",
              OTEL_BSP_SCHEDULE_DELAY = "100", FAULTLINE_BUG = os.getenv("SHOP_BUG") or "" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, replicas = 3, ready = "healthy", env = env() },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy",
                env = env { GRPC_SERVICE_CONFIG = os.getenv("SHOP_RETRY") } },
  },
}

-- POST /users through the gateway, 50 a second, until the scenario ends.
local function drive(t)
  return t:load { to = "gateway", rate = 50, request = function(i)
    return { method = "POST", path = "/users", ok = { 201 },
             headers = { ["content-type"] = "application/json" },
             body = string.format('{"name":"u%d","email":"u%d@shop"}', i, i) }
  end }
end

local function served(t)
  local n = 0
  for _, c in pairs(t:distribution("users")) do n = n + c end
  return n
end

scenario("requests spread evenly over the users replicas", function(t)
  drive(t)
  t:eventually(function() return served(t) >= 60 end, "20s", "60 requests served by users")
  local d = t:distribution("users")
  local names = {}
  for name in pairs(d) do names[#names + 1] = name end
  table.sort(names)
  t:expect(table.concat(names, " ") == "users-1 users-2 users-3",
    "one count per instance: " .. table.concat(names, " "))
  t:expect_balanced("users", { tolerance = 0.2, within = "1s" }) -- late batches may still come
  local later = t:now()
  t:expect(served(t) >= 60, "distribution counts since the scenario began")
  local d2 = t:distribution("users", { since = later + 60 })
  t:expect(d2["users-1"] == 0 and d2["users-2"] == 0, "nothing since a time to come")
end)

scenario("every trace through the gateway is connected", function(t)
  drive(t)
  t:eventually(function() return served(t) >= 30 end, "20s", "30 requests served by users")
  t:expect_traces { root = "gateway", complete = true, max_attempts = 3, within = "2s" }
end)

scenario("retries are extra CLIENT spans, within max_attempts", function(t)
  drive(t)
  t:eventually(function() return served(t) >= 10 end, "20s", "10 requests served by users")
  local since = t:now()
  local f = t:link("gateway", "users"):reset_peer { ms = 0 }
  t:sleep("1s")
  f:remove()
  local before = served(t)
  t:eventually(function() return served(t) >= before + 10 end, "10s", "requests served again")
  t:expect(f:stats().resets > 0, "the fault fired: " .. f:stats().resets .. " resets")
  local retried = 0
  for _, tr in ipairs(t:traces { service = "gateway", since = since }) do
    for _, s in ipairs(tr.spans) do
      if s.kind == "client" and s.attributes["http.request.resend_count"] then retried = retried + 1 end
    end
  end
  t:expect(retried > 0, "retries are visible: " .. retried .. " resent CLIENT spans")
  t:expect_traces { root = "gateway", max_attempts = 3, since = since }
end)

scenario("a crashed replica leaves every view, and comes back restarted", function(t)
  t:expect_discovery("users")
  t:crash("users-1")
  t:expect_discovery("users", { within = "3s" })
  t:restart("users-1")
  t:expect_discovery("users", { within = "3s" })
end)

scenario("a stopped replica deregisters", function(t)
  t:stop("users-2")
  t:expect_discovery("users", { within = "3s" })
end)

-- With the fake Consul frozen, the gateway is never told that users-1 crashed: its view is
-- stale and expect_discovery must say so (test_checks.sh wants this scenario to fail).
scenario("a frozen Consul leaves a stale view (must fail)", function(t)
  t:expect_discovery("users")
  t.consul:freeze()
  t:crash("users-1")
  t:expect_discovery("users", { within = "1s" })
  t.consul:thaw()
end)

-- Usage errors of the checks, each at the user's line. users has tracing off; web needs users
-- but, being a plain process, never asks Consul about it (as a statically wired client).
local mark = os.getenv("IT_MARK")
topology {
  services = {
    users = { cmd = { "sleep", "30" }, ready = "none", start = false,
              env = { OTEL_SDK_DISABLED = "true", FL_IT_MARK = mark } },
    quiet = { cmd = { "sleep", "30" }, ready = "none", start = false,
              env = { OTEL_TRACES_SAMPLER = "always_off", FL_IT_MARK = mark } },
    web = { cmd = { "sleep", "30" }, ready = "none", start = false, needs = { "users" },
            env = { FL_IT_MARK = mark } },
  },
}

scenario("distribution with tracing off", function(t)
  t:distribution("users") -- @usage t:distribution: tracing is off for users (OTEL_SDK_DISABLED=true
end)
scenario("balance with the always_off sampler", function(t)
  t:expect_balanced("quiet") -- @usage t:expect_balanced: tracing is off for quiet (OTEL_TRACES_SAMPLER=always_off
end)
scenario("traces with tracing off", function(t)
  t:expect_traces { root = "users" } -- @usage t:expect_traces: tracing is off for users
end)
scenario("distribution options", function(t)
  t:distribution("web", 3) -- @usage bad t:distribution options: expected a table like { since = 2 }, got a number
end)
scenario("distribution unknown option", function(t)
  t:distribution("web", { sinse = 1 }) -- @usage t:distribution option
end)
scenario("distribution unknown service", function(t)
  t:distribution("wep") -- @usage t:distribution: no service named 'wep' (did you mean 'web'?)
end)
scenario("distribution service type", function(t)
  t:distribution(42) -- @usage t:distribution
end)
scenario("balance tolerance", function(t)
  t:expect_balanced("web", { tolerance = -1 }) -- @usage bad t:expect_balanced tolerance: expected a number >= 0
end)
scenario("balance tolerance type", function(t)
  t:expect_balanced("web", { tolerance = "20%" }) -- @usage bad t:expect_balanced tolerance: expected a number >= 0 (0.2 = within 20% of the even share), got a string
end)
scenario("balance option", function(t)
  t:expect_balanced("web", { tolerence = 0.1 }) -- @usage t:expect_balanced option
end)
scenario("balance since", function(t)
  t:expect_balanced("web", { since = "later" }) -- @usage t:expect_balanced since
end)
scenario("traces argument", function(t)
  t:expect_traces("web") -- @usage bad t:expect_traces argument: expected a table like { root = "gateway" }, got a string
end)
scenario("traces root", function(t)
  t:expect_traces { complete = true } -- @usage bad t:expect_traces root: expected the name of the service requests enter by, got nil
end)
scenario("traces unknown root", function(t)
  t:expect_traces { root = "gateway" } -- @usage t:expect_traces root: no service named 'gateway'
end)
scenario("traces max_attempts", function(t)
  t:expect_traces { root = "web", max_attempts = 0 } -- @usage bad t:expect_traces max_attempts: expected a whole number >= 1, got 0
end)
scenario("traces complete", function(t)
  t:expect_traces { root = "web", complete = "yes" } -- @usage bad t:expect_traces complete: expected a boolean, got a string
end)
scenario("traces option", function(t)
  t:expect_traces { root = "web", max_attempt = 3 } -- @usage t:expect_traces option
end)
scenario("traces within", function(t)
  t:expect_traces { root = "web", within = -1 } -- @usage t:expect_traces within
end)
scenario("discovery with nobody needing it", function(t)
  t:expect_discovery("web") -- @usage t:expect_discovery: no service needs 'web', so nobody discovers it
end)
scenario("discovery options", function(t)
  t:expect_discovery("users", { within = "soon" }) -- @usage t:expect_discovery within
end)
scenario("discovery by a statically wired client", function(t)
  t:start("web-1")
  t:expect_discovery("users", { within = "300ms" }) -- @usage t:expect_discovery: web-1 needs users but never asked its Consul agent about it: it is wired statically (USERS_ADDR)
end)

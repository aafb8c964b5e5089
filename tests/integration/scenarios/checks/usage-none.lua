-- t:expect_discovery without Consul: every client is wired statically.
topology {
  consul = "none",
  services = {
    users = { cmd = { "sleep", "30" }, ready = "none", start = false },
    web = { cmd = { "sleep", "30" }, ready = "none", start = false, needs = { "users" } },
  },
}

scenario("discovery without Consul", function(t)
  t:expect_discovery("users") -- @usage t:expect_discovery needs the fake Consul (topology consul = "fake", the default): this topology has none, so clients are wired statically (<NEED>_ADDR)
end)

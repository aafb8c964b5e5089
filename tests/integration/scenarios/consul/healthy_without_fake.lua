-- ready = "healthy" asks the fake Consul whether the instance passes its checks: with
-- consul = "none" that cannot work, and the file does not load (exit 2, at the topology).
topology {
  consul = "none",
  services = {
    echo = { cmd = { "echo-svc" }, ready = "healthy" },
  },
}

scenario("never runs", function(t) end)

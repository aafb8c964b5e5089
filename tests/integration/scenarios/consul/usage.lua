-- Mistakes in using t.consul, t:healthy and t:consul_view, one per scenario: each is a usage
-- error that ends its scenario (the run goes on, and exits 2). test_consul.sh checks that
-- stderr has, for every line tagged @usage, a "faultline: consul/usage.lua:LINE: ..." line
-- with the text after the tag.
local disco = require "disco"

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, env = disco.env { ECHO_CHECK_INTERVAL = "100ms" } },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = disco.env { PINGER_CONSUL_SERVICE = "echo" } },
  },
}

scenario("misspelt fault", function(t)
  t.consul:latncy("1s") -- @usage t.consul has no method or field 'latncy' (did you mean 'latency'?)
end)

scenario("a number for a service", function(t)
  t:healthy(42) -- @usage bad t:healthy service: expected a string, got a number
end)

scenario("flapping an unknown service", function(t)
  t.consul:flap("nosuch", 1) -- @usage t.consul:flap: no service named 'nosuch' in this topology
end)

scenario("a bad latency", function(t)
  t.consul:latency("soon") -- @usage bad t.consul:latency duration: "soon" is not a duration
end)

scenario("a negative staleness", function(t)
  t.consul:stale(-1) -- @usage bad t.consul:stale duration: -1 is not a duration
end)

scenario("flap without a period", function(t)
  t.consul:flap("echo") -- @usage bad t.consul:flap period: expected a duration
end)

scenario("view of an unknown instance", function(t)
  t:consul_view("nosuch-1", "echo") -- @usage bad t:consul_view argument: no instance named 'nosuch-1'
end)

scenario("view without a service", function(t)
  t:consul_view(t:instance("client")) -- @usage bad t:consul_view service: expected a string, got nil
end)

scenario("a good scenario after them still runs", function(t)
  t:eventually(function() return #t:healthy("echo") == 1 end, "5s", "echo is healthy")
end)

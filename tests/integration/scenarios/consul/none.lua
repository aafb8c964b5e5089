-- consul = "none": no Consul at all. Instances get no CONSUL_HTTP_ADDR (echo-svc then
-- stays out of Consul), and what needs the fake is a usage error (tagged @usage, checked
-- by test_consul.sh); the scenario that only looks at the environment passes.
local disco = require "disco"

topology {
  consul = "none",
  grace = "2s",
  services = {
    show = { cmd = { "sh", "-c", 'echo "consul=[${CONSUL_HTTP_ADDR-unset}]"; exec sleep 60' },
             ready = "none", env = disco.env() },
    echo = { cmd = { "echo-svc" }, env = disco.env() },
  },
}

scenario("no CONSUL_HTTP_ADDR, and echo-svc stays out of Consul", function(t)
  t:eventually(function() return t:log("show-1"):find("consul=[unset]", 1, true) end, "3s",
    "the instance has no CONSUL_HTTP_ADDR")
  t:sleep("200ms")
  t:expect(not t:log("echo-1"):find("consul", 1, true), "echo-svc says nothing about Consul")
end)

scenario("t:healthy needs the fake", function(t)
  t:healthy("echo") -- @usage t:healthy needs the fake Consul (topology consul = "fake", the default)
end)

scenario("t:consul_view needs the fake", function(t)
  t:consul_view(t:instance("echo"), "echo") -- @usage t:consul_view needs the fake Consul
end)

scenario("t.consul faults need the fake", function(t)
  t.consul:down() -- @usage t.consul:down needs the fake Consul
end)

-- consul = "host:port": a real agent. Every instance is handed that address as it is (here
-- 127.0.0.1:1, where nothing listens, so echo-svc's registration is refused and retried),
-- and what needs the fake is a usage error (tagged @usage, checked by test_consul.sh).
local disco = require "disco"

topology {
  consul = "127.0.0.1:1",
  grace = "2s",
  services = {
    show = { cmd = { "sh", "-c", 'echo "consul=[${CONSUL_HTTP_ADDR-unset}]"; exec sleep 60' },
             ready = "none", replicas = 2, env = disco.env() },
    echo = { cmd = { "echo-svc" }, env = disco.env() },
  },
}

scenario("every instance gets the real agent's address as it is", function(t)
  for _, i in ipairs(t:instances("show")) do
    t:eventually(function() return t:log(i):find("consul=[127.0.0.1:1]", 1, true) end, "3s",
      i.name .. " has CONSUL_HTTP_ADDR=127.0.0.1:1")
  end
  t:eventually(function()
    return t:log("echo-1"):find("registration failed: connection refused (retrying in 200ms)", 1, true)
  end, "3s", "echo-svc tries to register there, and retries")
end)

scenario("t:healthy needs the fake", function(t)
  t:healthy("echo") -- @usage t:healthy needs the fake Consul (topology consul = "fake", the default): this topology uses a real one
end)

scenario("t.consul faults need the fake", function(t)
  t.consul:flap("echo", 1) -- @usage t.consul:flap needs the fake Consul (topology consul = "fake", the default): this topology uses a real one
end)

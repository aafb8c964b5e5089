-- amqp = "none": no broker at all. Instances get no AMQP_URL, and what needs the fake is a
-- usage error (tagged @usage, checked by test_broker.sh).
local procs = require "procs"

topology {
  amqp = "none",
  consul = "none",
  grace = "2s",
  services = {
    show = { cmd = { "sh", "-c", 'echo "amqp=[${AMQP_URL-unset}]"; exec sleep 60' },
             ready = "none", env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("no AMQP_URL without a broker", function(t)
  t:eventually(function() return t:log("show-1"):find("amqp=[unset]", 1, true) end, "3s",
    "the instance has no AMQP_URL")
end)

scenario("t.broker faults need the fake", function(t)
  t.broker:down() -- @usage t.broker:down needs the fake broker (topology amqp = "fake", the default): this topology has amqp = "none"
end)

scenario("t.broker:stats needs the fake", function(t)
  t.broker:stats("q") -- @usage t.broker:stats needs the fake broker
end)

scenario("'broker' names nothing without one", function(t)
  t:partition("show", "broker") -- @usage t:partition: no service or instance named 'broker'
end)

-- Mistakes in using t:nemesis, one per scenario: each is a usage error at the user's line
-- (test_nemesis.sh checks every line tagged @usage).
local procs = require "procs"

topology {
  grace = "2s",
  consul = "none",
  amqp = "none",
  services = {
    echo = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    lonely = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    pinger = { cmd = { "pinger" }, needs = { "echo" }, env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("not a table", function(t)
  t:nemesis("crash") -- @usage bad t:nemesis argument: expected a table like { faults = { "crash" }, duration = "10s" }, got a string
end)

scenario("no faults", function(t)
  t:nemesis { duration = "5s" } -- @usage bad t:nemesis faults: expected a list of fault names
end)

scenario("an empty list of faults", function(t)
  t:nemesis { faults = {} } -- @usage bad t:nemesis faults: expected a list of fault names like { "crash", "partition" }, got an empty table
end)

scenario("a fault that is not a name", function(t)
  t:nemesis { faults = { "crash", 3 } } -- @usage bad t:nemesis faults[2]: expected a fault name, got a number
end)

scenario("a misspelt fault", function(t)
  t:nemesis { faults = { "crsh" } } -- @usage t:nemesis: unknown fault 'crsh' (did you mean 'crash'?)
end)

scenario("a misspelt option", function(t)
  t:nemesis { faults = { "crash" }, intervall = "1s" } -- @usage unknown t:nemesis option key 'intervall' (did you mean 'interval'?)
end)

scenario("a bad duration", function(t)
  t:nemesis { faults = { "crash" }, duration = "forever" } -- @usage t:nemesis duration
end)

scenario("a zero interval", function(t)
  t:nemesis { faults = { "crash" }, interval = 0 } -- @usage bad t:nemesis interval: must be more than 0
end)

scenario("no room for a fault", function(t)
  t:nemesis { faults = { "crash" }, interval = "2s", duration = "3s" } -- @usage t:nemesis: duration 3s is shorter than interval + hold (2s + 2s): no room for a fault
end)

scenario("a seed that is not a whole number", function(t)
  t:nemesis { faults = { "crash" }, seed = 1.5 } -- @usage bad t:nemesis seed: expected a whole number, got 1.5
end)

scenario("an unknown target", function(t)
  t:nemesis { faults = { "crash" }, targets = "ecko" } -- @usage t:nemesis targets: no service or instance named 'ecko' (did you mean 'echo'?)
end)

scenario("a link fault on an instance without links", function(t)
  t:nemesis { faults = { "partition" }, targets = "lonely" } -- @usage t:nemesis: fault 'partition' has nothing to act on
end)

scenario("consul_down without the fake Consul", function(t)
  t:nemesis { faults = { "consul_down" } } -- @usage t:nemesis: fault 'consul_down' needs the fake Consul
end)

scenario("broker_restart without the fake broker", function(t)
  t:nemesis { faults = { "broker_restart" } } -- @usage t:nemesis: fault 'broker_restart' needs the fake broker
end)

scenario("an unknown method of the handle", function(t)
  local n = t:nemesis { faults = { "crash" }, targets = "lonely" }
  n:wiat() -- @usage a nemesis has no method or field 'wiat' (did you mean 'wait'?)
end)

scenario("a good scenario after them still runs", function(t)
  t:expect(true, "fine")
end)

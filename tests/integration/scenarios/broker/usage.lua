-- Mistakes in using t.broker, one per scenario: each is a usage error that ends its scenario
-- (the run goes on, and exits 2). test_broker.sh checks that stderr has, for every line
-- tagged @usage, a "faultline: broker/usage.lua:LINE: ..." line with the text after the tag.
local procs = require "procs"

topology {
  grace = "2s",
  services = {
    show = { cmd = { "sh", "-c", 'echo "amqp=[$AMQP_URL]"; exec sleep 60' }, ready = "none",
             env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("misspelt fault", function(t)
  t.broker:restrat() -- @usage t.broker has no method or field 'restrat' (did you mean 'restart'?)
end)

scenario("a rate out of range", function(t)
  t.broker:duplicate { rate = 1.5 } -- @usage t.broker:duplicate: rate must be between 0 and 1, got 1.5
end)

scenario("an unknown option", function(t)
  t.broker:drop { rat = 0.1 } -- @usage t.broker:drop: unknown option 'rat' (there is: rate)
end)

scenario("a bad delay", function(t)
  t.broker:delay("soon") -- @usage t.broker:delay duration
end)

scenario("a link to the broker that nobody has", function(t)
  t:link("broker", "show") -- @usage t:link: no link from broker to show
end)

scenario("every instance reaches the broker through its own link", function(t)
  t:eventually(function() return t:log("show-1"):find("amqp=[amqp://guest:guest@127.", 1, true) end,
    "3s", "AMQP_URL is a link address")
  local url = t:log("show-1"):match("amqp=%[amqp://guest:guest@([%d.:]+)%]")
  local links = t:link("show-1", "broker"):stats().links
  local name, st = next(links)
  t:expect(name == "show-1->broker", "the link is named show-1->broker, got " .. tostring(name))
  t:expect(url ~= t.broker:address(), "the instance is given its link, not the broker")
end)

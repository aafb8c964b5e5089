-- Mistakes in using links, one per scenario: each is a usage error that ends its scenario
-- (the run goes on, and exits 2). test_links.sh checks that stderr has, for every line
-- tagged @usage, a "faultline: links-bad/usage.lua:LINE: ..." line with the text after it.
local procs = require "procs"

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, env = { FL_IT_MARK = procs.mark } },
    pinger = { cmd = { "pinger" }, needs = { "echo" }, env = { FL_IT_MARK = procs.mark } },
  },
}

scenario("unknown service", function(t)
  t:link("pinger", "ecko"):latency { ms = 10 } -- @usage t:link: no service or instance named 'ecko' (did you mean 'echo'?)
end)

scenario("no link between them", function(t)
  t:link("echo", "pinger") -- @usage t:link: no link from echo to pinger (links exist only where a service `needs` the other)
end)

scenario("misspelt toxic option", function(t)
  t:link("pinger", "echo"):latency { msec = 3 } -- @usage unknown latency option key 'msec' (did you mean 'ms'?)
end)

scenario("toxic option out of range", function(t)
  t:link("pinger", "echo"):latency { ms = -5 } -- @usage latency: ms must be from 0 to
end)

scenario("toxic option of the wrong type", function(t)
  t:link("pinger", "echo"):bandwidth { kbps = "fast" } -- @usage bandwidth: kbps must be a number, got a string
end)

scenario("missing required option", function(t)
  t:link("pinger", "echo"):slow_close {} -- @usage slow_close needs ms
end)

scenario("bad direction", function(t)
  t:link("pinger", "echo"):latency { ms = 1, direction = "sideways" } -- @usage latency: direction must be "upstream", "downstream" or "both"
end)

scenario("misspelt link method", function(t)
  t:link("pinger", "echo"):latncy { ms = 1 } -- @usage a link has no method or field 'latncy' (did you mean 'latency'?)
end)

scenario("misspelt partition option", function(t)
  t:partition("echo-1", "pinger-1", { one_way = true }) -- @usage unknown t:partition option key 'one_way' (did you mean 'oneway'?)
end)

scenario("partition with no link", function(t)
  t:partition("echo", "echo") -- @usage t:partition: no link between echo and echo (links exist only where a service `needs` the other)
end)

scenario("isolate an unknown instance", function(t)
  t:isolate("echo-3") -- @usage t:isolate: no service or instance named 'echo-3'
end)

scenario("a good scenario after them still runs", function(t)
  local f = t:link("pinger", "echo"):latency { ms = 1 }
  t:expect(f:stats().active, "a fault can still be added")
end)

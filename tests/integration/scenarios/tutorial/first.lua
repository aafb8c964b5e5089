-- docs/writing-scenarios.md, "A first scenario": users created through the gateway.
local requests = require("shop").requests

scenario("the gateway creates users", function(t)
  t:eventually(function() return requests(t) >= 20 end, "10s", "20 users created")
  local ok, failed = requests(t)
  t:expect(failed == 0, string.format("no request failed (%d ok, %d failed)", ok, failed))
end)

-- docs/writing-scenarios.md, "Random faults": the shop of lib/shop.lua under a nemesis.
local requests = require("shop").requests

scenario("the shop recovers from random faults", function(t)
  t:eventually(function() return requests(t) >= 10 end, "10s", "the shop is serving")
  local ok0, failed0 = requests(t)
  local nemesis = t:nemesis {
    faults = { "crash", "pause", "partition", "latency", "reset_peer", "consul_down" },
    targets = "users",
    interval = "500ms", hold = "1s", duration = "10s",
  }
  for _, step in ipairs(nemesis:wait()) do
    t:note(string.format("step %d: %s of %s, %s", step.n, step.fault, step.target, step.status))
  end
  local ok1, failed1 = requests(t)
  t:note(string.format("during the nemesis: %d ok, %d failed", ok1 - ok0, failed1 - failed0))
  t:expect(ok1 > ok0, "users were created during the nemesis")

  t:eventually(function() return #t:healthy("users") == 3 end, "10s", "every replica healthy again")
  local ok2, failed2 = requests(t)
  t:eventually(function() return requests(t) >= ok2 + 20 end, "10s", "20 more users created")
  local _, failed3 = requests(t)
  t:expect(failed3 == failed2, "and none failed once the faults were healed")
end)

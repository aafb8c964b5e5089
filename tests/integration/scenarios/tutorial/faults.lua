-- docs/writing-scenarios.md, "Inject faults": the shop of lib/shop.lua, one fault at a time.
local requests = require("shop").requests

-- Waits until the client has n more successful requests than now.
local function more(t, n, what)
  local ok0 = requests(t)
  t:eventually(function() return requests(t) >= ok0 + n end, "15s", what)
end

scenario("a crashed replica is hidden by retries", function(t)
  more(t, 10, "the shop is serving")
  local _, failed0 = requests(t)
  t:crash("users-1")
  more(t, 30, "30 more users created without users-1")
  local ok, failed = requests(t)
  t:expect(failed == failed0, string.format("no request failed (%d ok, %d failed)", ok, failed))
end)

scenario("slow, reset, cut off and paused replicas", function(t)
  more(t, 10, "the shop is serving")
  local slow = t:link("gateway", "users-1"):latency { ms = 300 }
  more(t, 10, "users created through a slow users-1")
  t:expect(slow:stats().fired, "the latency fault fired")
  slow:remove()

  local resets = t:link("gateway", "users-2"):reset_peer { ms = 0 }
  more(t, 10, "users created while users-2 resets every connection")
  t:expect(resets:stats().resets > 0, "connections to users-2 were reset")
  resets:remove()

  local cut = t:partition("gateway", "users-3")  -- nothing passes either way
  t:sleep("1s")
  cut:remove()                                    -- held bytes flow on, in order

  t:pause("users-1"); t:sleep("500ms"); t:resume("users-1")
  t.consul:down(); t:sleep("1s"); t.consul:up()

  t:eventually(function() return #t:healthy("users") == 3 end, "10s", "every replica healthy again")
  more(t, 20, "the shop serves again")
end)

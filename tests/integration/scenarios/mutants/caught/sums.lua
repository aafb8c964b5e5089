-- Mutant mode, all caught: off-by-one by a failed check, garbage by a Lua error (the
-- scenario does arithmetic on what /count answers). The topology's own FAULTLINE_BUG is
-- overridden by the harness's.
local toy = require "toy"

toy.topology({ "off-by-one", "garbage" }, "1 2 3", true, { FAULTLINE_BUG = "none" })

scenario("the sums are right", { catches = { "off-by-one" } }, function(t)
  toy.expect_sums(t)
end)

scenario("the count adds up", { catches = { "garbage" } }, function(t)
  local count = toy.output(t):match("count (%S*)")
  t:expect(count + 0 >= 3, "counted the sums") -- a Lua error when count is not a number
end)

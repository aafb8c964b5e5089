-- Mutant mode, a weak suite: "unchecked" survives (no scenario looks at the X-Toy header),
-- and "only says hello" claims to catch off-by-one but does not (the sums scenario does).
local toy = require "toy"

toy.topology({ "off-by-one", "unchecked" }, "1 2")

scenario("only says hello", { catches = { "off-by-one" } }, function(t)
  t:expect(toy.output(t):find("sum 1 ", 1, true), "the client asked")
end)

scenario("the sums are right", function(t)
  toy.expect_sums(t)
end)

-- Prints random sequences (with --verbose) so that runs with the same --seed can be compared.
local at_load = math.random(1, 1000000000)

scenario("random sequences", function(t)
  local a, b = {}, {}
  for _ = 1, 6 do a[#a + 1] = t:random(1, 1000000000) end
  for _ = 1, 6 do b[#b + 1] = math.random(1, 1000000000) end
  t:note("rnd load " .. at_load)
  t:note("rnd t:random " .. table.concat(a, " "))
  t:note("rnd math.random " .. table.concat(b, " "))
  t:note(string.format("rnd t:random() %.12f %d", t:random(), t:random(7)))
  t:note("seed " .. t.seed)
end)

scenario("another scenario gets its own sequence", function(t)
  t:note("rnd other " .. t:random(1, 1000000000) .. " " .. math.random(1, 1000000000))
end)

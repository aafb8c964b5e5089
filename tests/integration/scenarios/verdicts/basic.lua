-- One scenario per verdict path. Lines tagged "-- @name" are located by test_verdicts.sh.
scenario("passes", function(t)
  t:expect(true, "true is true")
  t:assert(1 + 1 == 2, "arithmetic works")
  t:expect(t.name == "passes", "t.name")
  t:expect(t.file == "verdicts/basic.lua", "t.file is the file as given: " .. t.file)
  t:expect(math.type(t.seed) == "integer", "t.seed")
  t:note("passes: reached the end")
end)

scenario("expect fails and continues", function(t)
  t:expect(1 == 2, "one equals two") -- @expect
  t:note("expect: still running after the failed expectation")
  t:expect(false, "a second failed expectation")
end)

scenario("assert stops the scenario", function(t)
  t:assert(false, "this assertion stops it") -- @assert
  t:note("assert: MUST NOT APPEAR")
end)

scenario("lua error", function(t)
  local function inner()
    local cfg = nil
    return cfg.port -- @error
  end
  inner() -- @caller
end)

scenario("eventually succeeds", function(t)
  local n = 0
  local got = t:eventually(function()
    n = n + 1
    return n >= 3 and n
  end, "2s", "n reaches 3")
  t:expect(got == 3, "eventually returns the value")
end)

scenario("eventually times out", function(t)
  t:eventually(function() return false end, "300ms", "the sky is green") -- @eventually
end)

scenario("eventually quotes the last error", function(t)
  t:eventually(function() error("not yet, sorry") end, "100ms", "no error") -- @eventually_error
end)

scenario("always holds", function(t)
  local checks = 0
  t:always(function()
    checks = checks + 1
    return true
  end, "200ms", "the sky is blue")
  t:expect(checks >= 5, "always checked repeatedly")
end)

scenario("always breaks", function(t)
  local start = t:now()
  t:always(function() return t:now() - start < 0.1 end, "2s", "the clock stands still") -- @always
  t:note("always: MUST NOT APPEAR")
end)

scenario("skipped", { skip = "not today" }, function(t)
  error("a skipped scenario must not run")
end)

scenario("runs after the failures", function(t)
  t:note("after: the run went on")
end)

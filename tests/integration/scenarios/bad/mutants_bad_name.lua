-- expect: topology mutants[2]: bad mutant name 'no retry' (a FAULTLINE_BUG value
topology { mutants = { "no-retry", "no retry" }, services = {} } -- @error
scenario("never runs", function(t) end)

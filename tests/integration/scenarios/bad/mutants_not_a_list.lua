-- expect: topology mutants must be a list of mutant names like { "no-retry" }, got a string
topology { mutants = "no-retry", services = {} } -- @error
scenario("never runs", function(t) end)

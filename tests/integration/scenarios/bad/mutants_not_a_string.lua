-- expect: topology mutants[1] must be a mutant name (a string), got a number
topology { mutants = { 42 }, services = {} } -- @error
scenario("never runs", function(t) end)

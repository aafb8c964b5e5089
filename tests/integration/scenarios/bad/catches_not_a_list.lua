-- expect: scenario "one": catches must be a list of mutant names like { "no-retry" }, got a string
topology { mutants = { "no-retry" }, services = {} }
scenario("one", { catches = "no-retry" }, function(t) end) -- @error

-- expect: scenario "twice": catches names 'no-retry' twice (items 1 and 2)
topology { mutants = { "no-retry" }, services = {} }
scenario("twice", { catches = { "no-retry", "no-retry" } }, function(t) end) -- @error

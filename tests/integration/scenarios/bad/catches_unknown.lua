-- expect: scenario "claims too much": catches 'sticky-lb', which is not one of the topology's mutants (mutants: no-retry)
topology { mutants = { "no-retry" }, services = {} }
scenario("fine", { catches = { "no-retry" } }, function(t) end)
scenario("claims too much", { catches = { "no-retry", "sticky-lb" } }, function(t) end) -- @error

-- expect: scenario "claims": catches 'no-retry', which is not one of the topology's mutants (it declares none: topology { mutants = {...} })
scenario("claims", { catches = { "no-retry" } }, function(t) end) -- @error
topology { services = {} }

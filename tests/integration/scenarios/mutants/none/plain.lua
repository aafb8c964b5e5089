-- Mutant mode on a file whose topology declares no mutants.
topology { services = {} }
scenario("passes", function(t) end)

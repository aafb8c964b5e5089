-- Mutant mode with a baseline that fails: no mutant may run.
topology {
  mutants = { "off-by-one" },
  services = { toy = { cmd = { "mutants/toy.py" }, env = { FL_IT_MARK = os.getenv("IT_MARK") } } },
}

scenario("passes", function(t) end)
scenario("fails on the correct service", { catches = { "off-by-one" } }, function(t)
  t:expect(false, "broken on purpose")
end)

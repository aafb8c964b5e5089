-- expect: topology mutants names 'no-retry' twice (items 1 and 3)
topology { -- @error
  mutants = { "no-retry", "sticky-lb", "no-retry" },
  services = {},
}
scenario("never runs", function(t) end)

-- expect: services' needs form a cycle
topology { -- @error
  services = {
    a = { cmd = { "sleep", "100" }, needs = { "b" } },
    b = { cmd = { "sleep", "100" }, needs = { "a" } },
  },
}

scenario("never runs", function(t) end)

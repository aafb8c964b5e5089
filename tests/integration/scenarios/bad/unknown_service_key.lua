-- expect: unknown service 'users' key 'replcas' (did you mean 'replicas'?)
topology { -- @error
  services = {
    users = { cmd = { "sleep", "100" }, replcas = 3, ready = "none" },
  },
}

scenario("never runs", function(t) end)

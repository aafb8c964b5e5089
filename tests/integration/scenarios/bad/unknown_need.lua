-- expect: service 'orders' needs 'user', which is not a service of this topology (did you mean 'users'?)
topology { -- @error
  services = {
    users = { cmd = { "sleep", "100" }, ready = "none" },
    orders = { cmd = { "sleep", "100" }, ready = "none", needs = { "user" } },
  },
}

scenario("never runs", function(t) end)

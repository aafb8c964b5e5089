-- expect: service 'users': replicas must be a whole number from 0 to 254, got 2.5
topology { -- @error
  services = { users = { cmd = { "sleep", "100" }, replicas = 2.5 } },
}
scenario("never runs", function(t) end)

-- expect: service 'users': cannot find executable 'no-such-faultline-service'
topology { -- @error
  grace = "1s",
  services = { users = { cmd = { "no-such-faultline-service", "--port", "1" } } },
}

scenario("never runs", function(t) end)

-- expect: bad ready_timeout of service 'users': "abc" is not a duration
topology { -- @error
  services = {
    users = { cmd = { "sleep", "100" }, ready_timeout = "abc" },
  },
}

scenario("never runs", function(t) end)

-- expect: unknown topology key 'servces' (did you mean 'services'?)
topology { -- @error
  servces = {
    users = { cmd = { "sleep", "100" }, ready = "none" },
  },
}

scenario("never runs", function(t) end)

-- expect: service 'users': ready must be "port", "healthy" or "none"
topology { -- @error
  services = {
    users = { cmd = { "sleep", "100" }, ready = "tcp" },
  },
}
scenario("never runs", function(t) end)

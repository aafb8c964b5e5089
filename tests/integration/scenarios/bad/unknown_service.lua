-- expect: no service named 'usres' (did you mean 'users'?)
topology {
  services = {
    users = { cmd = { "sleep", "100" }, ready = "none" },
    orders = { cmd = { "sleep", "100" }, ready = "none" },
  },
}

scenario("asks for a misspelt service", function(t)
  local u = t:instance("usres", 1) -- @error
end)

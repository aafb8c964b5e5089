-- expect: t has no method or field 'crsh' (did you mean 'crash'?)
topology { services = { users = { cmd = { "sleep", "100" }, ready = "none" } } }

scenario("crashes a replica", function(t)
  local u = t:instance("users")
  t:crsh(u) -- @error
end)

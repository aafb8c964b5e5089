-- expect: t:instance: service 'users' has replicas 1 to 3, not 4
topology { services = { users = { cmd = { "sleep", "100" }, replicas = 3, ready = "none" } } }

scenario("asks for a fourth replica", function(t)
  t:instance("users", 3)
  t:instance("users", 4) -- @error
end)

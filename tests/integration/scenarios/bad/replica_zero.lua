-- expect: t:instance: service 'users' has replicas 1 to 3, not 0
topology { services = { users = { cmd = { "sleep", "100" }, replicas = 3, ready = "none" } } }

scenario("counts from zero", function(t)
  for i = 0, 2 do
    t:instance("users", i) -- @error
  end
end)

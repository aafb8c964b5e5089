-- expect: service 'users' has no cmd
local replicas = 2

topology { services = { users = { replicas = replicas } } } -- @error

scenario("never runs", function(t) end)

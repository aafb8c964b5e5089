-- expect: bad t:crash argument: expected an instance (from t:instance(service, n)), got a number
topology { services = { users = { cmd = { "sleep", "100" }, ready = "none" } } }

scenario("crashes a number", function(t)
  t:crash(42) -- @error
end)

-- A request function that raises, one that returns a non-table after the first request, and
-- one that calls a waiting function: each stops its load and ends the scenario, naming the
-- user's lines. (Run by test_load.sh, which checks the messages.)
topology { services = { echo = { cmd = { "echo-svc" }, env = { FL_IT_MARK = os.getenv("IT_MARK") } } } }

scenario("raises", function(t)
  local load = t:load { to = "echo", rate = 100, duration = "5s", request = function(i)
    if i == 20 then error("boom at " .. i) end
    return { path = "/" }
  end }
  load:wait()
  t:note("never reached")
end)

scenario("returns a number", function(t)
  local load = t:load { to = "echo", rate = 100, duration = "5s", request = function(i)
    if i == 5 then return 42 end
    return { path = "/" }
  end }
  t:sleep("3s")
  t:note("never reached")
  load:wait()
end)

scenario("waits inside", function(t)
  local load = t:load { to = "echo", rate = 100, duration = "5s", request = function(i)
    if i == 3 then t:sleep(1) end
    return { path = "/" }
  end }
  load:wait()
end)

scenario("times out while waiting for a load", { timeout = "1s" }, function(t)
  t:load { to = "echo", rate = 100, duration = "5s", request = { path = "/" } }:wait()
end)

scenario("still fine afterwards", function(t)
  local s = t:load { to = "echo", rate = 100, duration = "0.5s", request = { path = "/" } }:wait()
  t:expect(s.ok == 50, "a load after broken ones works: " .. s.ok)
end)

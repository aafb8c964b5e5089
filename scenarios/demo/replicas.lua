-- The demo suite, until the shop exists: three replicas of a tiny HTTP echo service
-- (services/echo), crashed, stopped, paused and restarted. `make demo` runs this folder.

topology {
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 3 },
  },
}

scenario("every replica starts, listens on its own address and logs it", function(t)
  local seen = {}
  for _, inst in ipairs(t:instances("echo")) do
    t:expect(inst.state == "up", inst.name .. " is up")
    t:expect(not seen[inst.addr], inst.name .. " has an address of its own")
    seen[inst.addr] = true
    t:eventually(function() return t:log(inst):find("listening on " .. inst.addr, 1, true) end,
      "2s", inst.name .. " logs where it listens")
  end
end)

scenario("a crashed replica stays down until restarted", function(t)
  local victim = t:instance("echo", 2)
  t:crash(victim)
  t:expect(victim.state == "down", "the crashed replica is down")
  t:expect(victim.signal == 9, "it was killed by SIGKILL")
  t:expect(t:instance("echo", 1).state == "up", "the other replicas are untouched")
  t:sleep("200ms")
  t:expect(victim.state == "down", "nothing restarts it behind our back")
  t:restart(victim)
  t:expect(victim.state == "up" and victim.starts == 2, "restarted once, and up again")
end)

scenario("a stopped replica shuts down cleanly", function(t)
  local inst = t:instance("echo", 3)
  t:stop(inst)
  t:expect(inst.exit_code == 0, "exit code 0 after SIGTERM")
  t:expect(t:log(inst):find("stopping", 1, true), "it said it was stopping")
end)

scenario("a paused replica is frozen, then resumes", function(t)
  local inst = t:instance("echo", 1)
  t:pause(inst)
  t:expect(inst.state == "paused", "paused")
  t:sleep("100ms")
  t:resume(inst)
  t:expect(inst.state == "up", "running again")
  t:always(function() return inst.state == "up" end, "300ms", "it stays up")
end)

scenario("replicas restart one by one", function(t)
  for _, inst in ipairs(t:instances("echo")) do
    t:restart(inst)
  end
  for _, inst in ipairs(t:instances("echo")) do
    t:expect(inst.starts == 2, inst.name .. " restarted once")
  end
end)

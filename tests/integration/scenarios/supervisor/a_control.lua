-- Process control on real services: echo-svc replicas crashed, stopped, paused, resumed and
-- restarted, with their states, exit codes, signals, logs and addresses checked. Every
-- scenario must pass.
local procs = require "procs"
local MARK = { FL_IT_MARK = procs.mark }

topology {
  grace = "2s",
  services = {
    api = { cmd = { "echo-svc" }, env = MARK },
    users = { cmd = { "echo-svc" }, replicas = 3, env = MARK },
    -- exits with code 7 a moment after it starts
    quitter = { cmd = { "sh", "-c", "echo quitting soon; sleep 0.2; exit 7" }, ready = "none",
                env = MARK, start = false },
    -- ignores SIGTERM: only the SIGKILL after the grace period stops it
    stubborn = { cmd = { "sh", "-c", "trap '' TERM; echo ignoring TERM; while :; do sleep 0.05; done" },
                 ready = "none", env = MARK, start = false },
    -- says what it finds on stdin
    reader = { cmd = { "sh", "-c", "if read line; then echo \"stdin: $line\"; else echo 'stdin: eof'; fi; exec sleep 100" },
               ready = "none", env = MARK, start = false },
    -- leaves a child behind when it exits
    leaver = { cmd = { "sh", "-c", "sleep 1000 & echo \"child $!\"; sleep 0.1; exit 0" },
               ready = "none", env = MARK, start = false },
  },
}

scenario("instances have their own address and port", function(t)
  local all = t:instances()
  t:expect(#all == 8, "eight instances, got " .. #all)
  t:expect(#t:instances("users") == 3, "three users")
  local x, ports = nil, {}
  -- services are numbered in name order
  local index = { api = 1, leaver = 2, quitter = 3, reader = 4, stubborn = 5, users = 6 }
  for _, i in ipairs(all) do
    local a, s, n = i.host:match("^127%.(%d+)%.(%d+)%.(%d+)$")
    t:expect(a ~= nil, i.name .. " host " .. i.host .. " is 127.X.S.I")
    x = x or a
    t:expect(a == x, i.name .. " shares the run's 127." .. tostring(x) .. " range")
    t:expect(tonumber(s) == index[i.service], i.name .. " S = service index, got " .. tostring(s))
    t:expect(tonumber(n) == i.index, i.name .. " I = replica, got " .. tostring(n))
    t:expect(i.name == i.service .. "-" .. i.index, "name " .. i.name)
    t:expect(i.addr == i.host .. ":" .. i.port, "addr " .. i.addr)
    t:expect(not ports[i.port], i.name .. " port " .. i.port .. " is unique")
    t:expect(i.port >= 10000 and i.port <= 32767, i.name .. " port " .. i.port .. " in 10000-32767")
    ports[i.port] = true
  end
  t:note("range X=" .. tostring(x))
  local u2 = t:instance("users", 2)
  t:expect(t:log("users-2") == t:log(u2), "instances can be named by their name")
  t:expect(tostring(u2) == "users-2", "tostring(instance)")
  t:expect(u2.state == "up" and u2.starts == 1 and type(u2.pid) == "number", "users-2 is up")
  t:expect(u2.exit_code == nil and u2.signal == nil, "no exit yet")
  t:expect(t:log(u2):find("listening on " .. u2.addr, 1, true), "users-2 listens on its addr")
  local q = t:instance("quitter")
  t:expect(q.state == "down" and q.pid == nil and q.starts == 0, "start = false: not started")
end)

scenario("crash kills with SIGKILL", function(t)
  local u = t:instance("users", 1)
  local pid = u.pid
  t:crash(u)
  t:expect(u.state == "down", "state down, got " .. u.state)
  t:expect(u.signal == 9, "signal 9, got " .. tostring(u.signal))
  t:expect(u.exit_code == nil, "no exit code after a crash")
  t:expect(u.pid == nil, "no pid when down")
  t:expect(procs.state(pid) == nil, "the process is gone")
  local log = t:log(u)
  t:expect(log:find("listening on " .. u.addr, 1, true), "log has the listening line")
  t:expect(not log:find("stopping", 1, true), "a crash gives no chance to say goodbye")
  for n = 2, 3 do
    t:expect(t:instance("users", n).state == "up", "the other replicas stay up")
  end
  local ok, err = pcall(t.crash, t, u)
  t:expect(not ok and tostring(err):find("cannot crash users%-1: it is down"), "crash when down: " .. tostring(err))
end)

scenario("stop sends SIGTERM and the service exits 0", function(t)
  local u = t:instance("users", 2)
  local before = t:now()
  t:stop(u)
  t:expect(t:now() - before < 1, "a clean stop is quick")
  t:expect(u.state == "down", "state down")
  t:expect(u.exit_code == 0, "exit code 0, got " .. tostring(u.exit_code))
  t:expect(u.signal == nil, "no signal, got " .. tostring(u.signal))
  local log = t:log(u)
  t:expect(log:find("echo[users-2]: listening on " .. u.addr, 1, true), "log has the listening line")
  t:expect(log:find("echo[users-2]: stopping on SIGTERM", 1, true), "log has the stopping line")
  t:expect(log:find("echo[users-2]: stopped", 1, true), "log has the stopped line")
  local ok, err = pcall(t.stop, t, u)
  t:expect(not ok and tostring(err):find("cannot stop users%-2: it is down"), "stop when down: " .. tostring(err))
end)

scenario("stop escalates to SIGKILL after the grace period", function(t)
  local s = t:start(t:instance("stubborn"))
  t:eventually(function() return t:log(s):find("ignoring TERM", 1, true) end, "2s", "the trap is set")
  local before = t:now()
  t:stop(s, "300ms")
  local took = t:now() - before
  t:expect(took >= 0.3 and took < 2, string.format("SIGKILL after the 300ms grace, took %.3fs", took))
  t:expect(s.signal == 9, "killed by SIGKILL, got " .. tostring(s.signal))
end)

scenario("a service's own exit code is reported", function(t)
  local q = t:start(t:instance("quitter"))
  t:eventually(function() return q.state == "down" end, "3s", "quitter exits")
  t:expect(q.exit_code == 7, "exit code 7, got " .. tostring(q.exit_code))
  t:expect(q.signal == nil, "no signal")
  t:expect(t:log(q):find("quitting soon", 1, true), "its output is in its log")
end)

scenario("pause stops every process of the instance, resume continues them", function(t)
  local u = t:instance("users", 3)
  t:expect(procs.running(u), "running before the pause")
  t:pause(u)
  t:expect(u.state == "paused", "state paused, got " .. u.state)
  t:expect(procs.all_in_state(u, "T"), "the service is stopped (T)")
  t:expect(procs.state(u.pid) ~= "T", "the shim stays awake to guard the group")
  t:sleep("100ms")
  t:expect(u.state == "paused", "still paused")
  local ok, err = pcall(t.pause, t, u)
  t:expect(not ok and tostring(err):find("cannot pause users%-3: it is paused"), "pause twice: " .. tostring(err))
  t:resume(u)
  t:expect(u.state == "up", "state up again, got " .. u.state)
  t:eventually(function() return procs.running(u) end,
    "1s", "the service runs again")
  ok, err = pcall(t.resume, t, u)
  t:expect(not ok and tostring(err):find("cannot resume users%-3: it is up, not paused"), "resume when up: " .. tostring(err))
  t:expect(u.starts == 1, "pause and resume do not restart")
end)

scenario("a paused instance can be stopped and crashed", function(t)
  local a, b = t:instance("users", 1), t:instance("users", 2)
  t:pause(a)
  t:pause(b)
  t:stop(a)
  t:expect(a.exit_code == 0, "stopped while paused: exits 0, got " .. tostring(a.exit_code))
  t:expect(t:log(a):find("stopping on SIGTERM", 1, true), "it got the SIGTERM once continued")
  t:crash(b)
  t:expect(b.signal == 9, "crashed while paused: SIGKILL, got " .. tostring(b.signal))
end)

scenario("restart stops and starts again on the same address", function(t)
  local u = t:instance("users", 1)
  local pid, addr = u.pid, u.addr
  t:restart(u)
  t:expect(u.state == "up", "up after restart")
  t:expect(u.starts == 2, "starts 2, got " .. u.starts)
  t:expect(u.pid ~= pid, "a new process")
  t:expect(u.addr == addr, "same address")
  local log = t:log(u)
  t:expect(procs.count(log, "listening on " .. addr) == 2, "two listening lines:\n" .. log)
  t:expect(procs.count(log, "stopping on SIGTERM") == 1, "one stopping line")
  t:restart(u, { crash = true })
  t:expect(u.starts == 3 and u.state == "up", "restart{crash=true}: starts 3")
  t:expect(procs.count(t:log(u), "stopping on SIGTERM") == 1, "a crash restart sends no SIGTERM")
  t:expect(procs.count(t:log(u), "listening on " .. addr) == 3, "three listening lines")
end)

scenario("a crashed instance can be started again", function(t)
  local u = t:instance("users", 2)
  t:crash(u)
  t:start(u)
  t:expect(u.state == "up" and u.starts == 2, "up again, starts 2")
  t:expect(u.signal == nil and u.exit_code == nil, "the old exit is forgotten once running")
  local ok, err = pcall(t.start, t, u)
  t:expect(not ok and tostring(err):find("cannot start users%-2: it is already up"), "start when up: " .. tostring(err))
end)

scenario("stdin is /dev/null", function(t)
  local r = t:start(t:instance("reader"))
  t:eventually(function() return t:log(r):find("stdin: ", 1, true) end, "2s", "reader read stdin")
  t:expect(t:log(r):find("stdin: eof\n", 1, true), "stdin is empty: " .. t:log(r))
end)

scenario("what a service leaves behind in its group is killed when it exits", function(t)
  local l = t:start(t:instance("leaver"))
  local child = tonumber(t:eventually(function() return t:log(l):match("child (%d+)") end,
    "2s", "leaver started its child"))
  t:expect(procs.state(child) ~= nil, "the child runs while its parent does")
  t:eventually(function() return l.state == "down" end, "3s", "leaver exits")
  t:expect(l.exit_code == 0, "leaver exited 0, got " .. tostring(l.exit_code))
  t:eventually(function() return procs.state(child) == nil or procs.state(child) == "Z" end,
    "2s", "its child " .. child .. " is gone")
end)

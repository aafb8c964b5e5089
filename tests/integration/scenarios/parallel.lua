-- For test_parallel.sh: two runs of this file at once must not collide (each claims its own
-- 127.X.0.0/16 range and ports). Each scenario notes its instances' addresses.
local procs = require "procs"
local MARK = { FL_IT_MARK = procs.mark }

topology {
  services = {
    api = { cmd = { "echo-svc" }, replicas = 2, env = MARK },
    users = { cmd = { "echo-svc" }, replicas = 3, env = MARK },
  },
}

local function note_addrs(t)
  for _, i in ipairs(t:instances()) do
    t:note("addr " .. i.addr)
    t:expect(t:log(i):find("listening on " .. i.addr, 1, true), i.name .. " listens on " .. i.addr)
  end
end

scenario("crash and restart while another run does the same", function(t)
  note_addrs(t)
  t:sleep("500ms")
  t:crash(t:instance("users", 2))
  t:restart(t:instance("users", 2))
  t:sleep("500ms")
  for _, i in ipairs(t:instances()) do t:expect(i.state == "up", i.name .. " is up") end
end)

scenario("stop and start while another run does the same", function(t)
  note_addrs(t)
  t:stop(t:instance("api", 1))
  t:sleep("500ms")
  t:start(t:instance("api", 1))
  t:restart(t:instance("users", 1))
  t:sleep("300ms")
  note_addrs(t)
end)

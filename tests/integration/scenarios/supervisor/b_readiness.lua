-- Readiness and wiring: a slow service is up only once it listens; `needs` hands a client
-- the addresses of its own links to every replica, in <NEED>_ADDR, in replica order.
local procs = require "procs"
local MARK = { FL_IT_MARK = procs.mark }

-- Prints the wiring it got, then asks every USERS_ADDR entry who answers (echo-svc says
-- its instance name), then stays up.
local CLIENT = [[
import json, os, socket
print("USERS_ADDR=" + os.environ.get("USERS_ADDR", "(unset)"))
print("USER_DB_ADDR=" + os.environ.get("USER_DB_ADDR", "(unset)"))
print("ME=%s %s %s:%s" % tuple(os.environ.get(k, "?") for k in ("SERVICE_NAME", "INSTANCE_ID", "BIND", "PORT")))

def who(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=3)
    s.sendall(b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    s.close()
    return json.loads(body)["instance"]

for addr in os.environ.get("USERS_ADDR", "").split(","):
    try:
        print("via %s: %s" % (addr, who(addr)))
    except Exception as e:
        print("via %s: error %r" % (addr, e))
print("asked everyone", flush=True)
os.execvp("sleep", ["sleep", "100"])
]]

topology {
  services = {
    slow = { cmd = { "echo-svc" }, env = { ECHO_STARTUP_DELAY_MS = 300, FL_IT_MARK = procs.mark } },
    users = { cmd = { "echo-svc" }, replicas = 3, env = MARK },
    ["user-db"] = { cmd = { "sleep", "100" }, replicas = 2, ready = "none", env = MARK },
    client = { cmd = { "/usr/bin/python3", "-u", "-c", CLIENT }, ready = "none",
               needs = { "users", "user-db" }, env = MARK },
  },
}

scenario("a slow service is up only once it listens", function(t)
  local s = t:instance("slow")
  t:expect(t:now() >= 0.3, string.format("setup waited for the listener: %.3fs", t:now()))
  t:expect(s.state == "up", "slow is up")
  t:expect(t:log(s):find("listening on " .. s.addr, 1, true), "and has said it listens")
  local before = t:now()
  t:restart(s)
  t:expect(t:now() - before >= 0.3, "a restart waits for the listener too")
end)

-- "a:1,b:2" → { "a:1", "b:2" }
local function split(list)
  local out = {}
  for item in list:gmatch("[^,]+") do out[#out + 1] = item end
  return out
end

scenario("needs gives the client one link per replica, in replica order", function(t)
  local c = t:instance("client")
  local log = t:eventually(function()
    local l = t:log(c)
    return l:find("asked everyone", 1, true) and l
  end, "5s", "the client asked every users replica")
  local users = split(log:match("USERS_ADDR=([^\n]*)") or "")
  local dbs = split(log:match("USER_DB_ADDR=([^\n]*)") or "")
  t:assert(#users == 3, "USERS_ADDR has 3 entries: " .. log)
  t:expect(#dbs == 2, "USER_DB_ADDR has 2 entries: " .. log)
  local x = c.host:match("^127%.(%d+)%.")
  local seen = {}
  for _, a in ipairs(users) do
    t:expect(a:match("^127%.(%d+)%.0%.2:%d+$") == x, a .. " is a link on 127." .. x .. ".0.2")
    t:expect(not seen[a], a .. " appears once")
    seen[a] = true
  end
  for n, a in ipairs(users) do
    t:expect(log:find("via " .. a .. ": users-" .. n .. "\n", 1, true),
      "entry " .. n .. " (" .. a .. ") reaches users-" .. n .. ":\n" .. log)
  end
  t:expect(log:find("ME=client client-1 " .. c.addr .. "\n", 1, true), "wiring of client-1: " .. log)
  local names = t:link("client", "users"):names()
  table.sort(names)
  t:expect(table.concat(names, " ") == "client-1->users-1 client-1->users-2 client-1->users-3",
    "the links: " .. table.concat(names, " "))
  t:expect(t:link("client", "users"):stats().accepted == 3, "each link carried one connection")
end)

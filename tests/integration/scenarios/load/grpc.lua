-- gRPC against our shop: t:grpc and gRPC loads on users directly (messages built with t.pb
-- from shop.proto's field numbers), a delay in users seen in the latency percentiles, errors
-- by kind (refused, grpc_5 NOT_FOUND) when an instance is crashed, and HTTP loads through
-- the gateway, with a latency toxic on the gateway -> users link seen in the latency.

local function env(extra)
  local e = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, replicas = 2, ready = "healthy", env = env() },
    slow = { cmd = { "users" }, ready = "healthy", env = env { USERS_DELAY_MS = "60" } },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy", env = env() },
  },
}

local CREATE = "/shop.Users/CreateUser"
local GET = "/shop.Users/GetUser"

scenario("t:grpc: create a user, read it back, and a NOT_FOUND", function(t)
  local r = t:grpc { to = "users-1", method = CREATE,
                     message = t.pb.encode { [1] = "alice", [2] = "alice@shop" } }
  t:assert(r.code == 0 and r.error == nil, "created: code " .. r.code .. " " .. r.message)
  local u = t.pb.decode(r.body)
  t:expect(u[2] == "alice" and u[3] == "alice@shop" and #u[1] > 0, "the User has id, name, email")
  local g = t:grpc { to = "users-1", method = GET, message = t.pb.encode { [1] = u[1] } }
  t:expect(g.code == 0 and t.pb.decode(g.body)[1] == u[1], "read back by id")
  local nf = t:grpc { to = "users-1", method = GET, message = t.pb.encode { [1] = "nobody" },
                      metadata = { ["x-test"] = "1" } }
  t:expect(nf.code == 5 and nf.error == "grpc_5", "NOT_FOUND: " .. nf.code .. " " .. tostring(nf.error))
  local um = t:grpc { to = "users-1", method = "/shop.Users/Nope" }
  t:expect(um.code == 12, "an unknown method is UNIMPLEMENTED: " .. um.code)
  t:crash("users-2")
  local d = t:grpc { to = "users-2", method = GET, message = t.pb.encode { [1] = u[1] } }
  t:expect(d.code == 14 and d.error == "refused", "a crashed instance: UNAVAILABLE, refused: " ..
    d.code .. " " .. tostring(d.error) .. " " .. d.message)
end)

scenario("a gRPC load: rate, delay in the percentiles, errors by kind", function(t)
  local fast = t:load { to = "users", rate = 200, duration = "2s",
    request = function(i)
      return { grpc = CREATE, message = t.pb.encode { [1] = "u" .. i, [2] = "u" .. i .. "@shop" } }
    end }
  local slow = t:load { to = "slow", rate = 50, duration = "2s",
                        request = { grpc = GET, message = t.pb.encode { [1] = "x" }, ok = { 5 } } }
  local f, s = fast:wait(), slow:wait()
  t:expect(f.sent == 400 and f.ok == 400, "400 users created: " .. f.ok)
  t:expect(math.abs(f.rate - 200) < 10, "at 200/s: " .. f.rate)
  t:expect(f.p50 < 0.03, "p50 without delay under 30 ms: " .. f.p50)
  t:expect(s.ok == 100, "NOT_FOUND counted ok with ok = { 5 }: " .. s.ok)
  t:expect(s.p50 >= 0.058 and s.p50 < 0.1, "USERS_DELAY_MS=60 in p50: " .. s.p50)
  -- one replica crashed mid-load: requests to it are refused, the other one keeps answering
  local l = t:load { to = { "users-1", "users-2" }, rate = 100, duration = "2s", keep = true,
                     request = { grpc = GET, message = t.pb.encode { [1] = "nobody" } } }
  t:sleep("0.5s")
  t:crash("users-2")
  local c = l:wait()
  t:expect(c.errors.grpc_5 and c.errors.grpc_5 >= 150, "NOT_FOUND answers by kind: " .. tostring(c.errors.grpc_5))
  t:expect(c.ok == 0 and c.sent == 200 and c.failed == 200, "every request failed one way or another")
  local rs = l:results()
  t:expect(#rs == 200 and rs[1].code == 5 and rs[1].error == "grpc_5", "results carry the code")
end)

scenario("HTTP through the gateway: a latency toxic on gateway -> users shows in p50", function(t)
  local body = function(i) return { method = "POST", path = "/users", ok = { 201 },
    headers = { ["content-type"] = "application/json" },
    body = string.format('{"name":"g%d","email":"g%d@shop"}', i, i) } end
  local a = t:load { to = "gateway", rate = 100, duration = "1s", request = body }:wait()
  local fault = t:link("gateway", "users"):latency { ms = 50 }
  local b = t:load { to = "gateway", rate = 100, duration = "2s", request = body }:wait()
  fault:remove()
  t:expect(a.ok == 100 and b.ok == 200, "201 for every POST /users: " .. a.ok .. ", " .. b.ok)
  t:expect(a.p50 < 0.03, "p50 before the toxic: " .. a.p50)
  t:expect(b.p50 >= 0.05 and b.p50 < 0.09,
    "50 ms on the answers (the toxic's default direction): p50 in [50, 90) ms: " .. b.p50)
  local h = t:http { to = "gateway", path = "/healthz" }
  t:expect(h.status == 200, "healthz")
end)

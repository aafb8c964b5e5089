-- t:http and t:load over HTTP/1.1 against the real echo service (services/echo): single
-- calls, the achieved rate, latency that reflects a delay on the server, errors by kind when
-- an instance is crashed, :results() with keep, and the open-loop property (a paused server
-- makes latency grow from the intended send times instead of slowing the schedule down).
-- Each figure is checked against what the scenario itself arranged.

local function env() return { FL_IT_MARK = os.getenv("IT_MARK") } end

topology {
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 2, env = env() },
  },
}

scenario("t:http: an answer, its headers, and errors instead of raising", function(t)
  local r = t:http { to = "echo-1", method = "POST", path = "/hello?x=1", body = "hi",
                     headers = { ["X-Test"] = "yes" } }
  t:expect(r.status == 200, "status 200, got " .. tostring(r.status) .. " " .. tostring(r.error))
  t:expect(r.body:find('"path":"/hello"', 1, true) and r.body:find('"body":"hi"', 1, true),
    "the echo names the path and body: " .. tostring(r.body))
  t:expect(r.headers["content-type"] == "application/json", "lower-case header names")
  t:expect(r.latency > 0 and r.latency < 1, "a latency in seconds: " .. r.latency)
  local s = t:http { to = "echo", path = "/status?code=503" }
  t:expect(s.status == 503 and s.error == nil, "a 503 is an answer, not an error")
  -- calls to a service rotate over its instances
  local seen = {}
  for _ = 1, 4 do seen[t:http { to = "echo", path = "/" }.body:match('"instance":"([^"]+)"')] = true end
  t:expect(seen["echo-1"] and seen["echo-2"], "both instances answered")
  t:crash("echo-2")
  local d = t:http { to = "echo-2", path = "/" }
  t:expect(d.error == "refused" and d.status == nil, "a crashed instance: refused, got " ..
    tostring(d.error))
  local slow = t:http { to = "echo-1", path = "/delay?ms=2000", timeout = "200ms" }
  t:expect(slow.error == "timeout" and slow.latency >= 0.2 and slow.latency < 1,
    "timeout after 200ms: " .. tostring(slow.error) .. " " .. tostring(slow.latency))
  -- the service with one instance down: calls go to the one that is up
  local up = t:http { to = "echo", path = "/" }
  t:expect(up.status == 200, "echo-1 still answers for the service")
end)

scenario("the achieved rate is the requested one", function(t)
  local t0 = t:now()
  local load = t:load { to = "echo", rate = 400, duration = "3s", request = { path = "/r" } }
  t:sleep("1s")
  local mid, at = load:stats(), t:now() - t0
  t:expect(mid.running and math.abs(mid.sent - 400 * at) <= 10,
    string.format("400/s so far: %d sent after %.3f s", mid.sent, at))
  local s = load:wait()
  local took = t:now() - t0
  t:expect(took >= 2.99 and took < 3.3, "the schedule took 3 s: " .. took)
  t:expect(s.sent == 1200, "1200 requests sent in 3 s at 400/s: " .. s.sent)
  t:expect(s.ok == 1200 and s.failed == 0, "all ok: " .. s.ok)
  t:expect(math.abs(s.rate - 400) < 20, "achieved rate ~400/s: " .. s.rate)
  t:expect(not s.running and s.inflight == 0 and s.queued == 0, "over")
  t:expect(s.p50 > 0 and s.p50 <= s.p90 and s.p90 <= s.p99 and s.p99 <= s.p999 and s.p999 <= s.max,
    "ordered percentiles")
end)

scenario("latency reflects a delay on the server", function(t)
  local fast = t:load { to = "echo", rate = 100, duration = "1s", request = { path = "/" } }
  local f = fast:wait()
  local slow = t:load { to = "echo", rate = 100, duration = "2s",
                        request = { path = "/delay?ms=80" } }
  local s = slow:wait()
  t:expect(f.p50 < 0.02, "without delay p50 under 20 ms: " .. f.p50)
  t:expect(s.p50 >= 0.08 and s.p50 < 0.12, "with an 80 ms delay p50 in [80, 120) ms: " .. s.p50)
  t:expect(s.min >= 0.078, "nothing faster than the delay (the server's timer may fire up to 1 ms early): " .. s.min)
  t:expect(s.ok == 200, "all ok: " .. s.ok)
end)

scenario("errors are counted by kind when an instance crashes", function(t)
  local load = t:load { to = "echo-1", rate = 200, duration = "3s", request = { path = "/" } }
  local bad = t:load { to = "echo-2", rate = 50, duration = "1s", name = "statuses",
                       request = function(i) return { path = "/status?code=" .. (i % 2 == 0 and 503 or 200) } end }
  t:sleep("1s")
  t:crash("echo-1")
  local s = load:wait()
  t:expect(s.ok >= 150 and s.ok <= 260, "about a second of ok answers before the crash: " .. s.ok)
  t:expect((s.errors.refused or 0) >= 300, "refused after the crash: " .. tostring(s.errors.refused))
  t:expect(s.sent == 600 and s.ok + s.failed == 600, "every request ended: " .. s.ok .. "+" .. s.failed)
  t:expect(math.abs(s.error_rate - s.failed / 600) < 1e-9, "error_rate = failed / ended")
  local b = bad:wait()
  t:expect(b.errors.http_503 == 25 and b.ok == 25, "25 http_503 and 25 ok: " ..
    tostring(b.errors.http_503) .. " " .. b.ok)
end)

scenario(":results() keeps every answer, in schedule order", function(t)
  local load = t:load { to = "echo", rate = 100, duration = "1s", keep = true,
                        request = function(i) return { method = "PUT", path = "/n" .. i, body = "b" .. i } end }
  local s = load:wait()
  local rs = load:results()
  t:expect(#rs == 100 and s.sent == 100, "100 results: " .. #rs)
  local good = 0
  for k, r in ipairs(rs) do
    if r.i == k and r.status == 200 and r.error == nil and r.latency > 0 and
       r.body:find('"path":"/n' .. k .. '"', 1, true) and r.body:find('"body":"b' .. k .. '"', 1, true) then
      good = good + 1
    end
  end
  t:expect(good == 100, "each result is its own request's answer: " .. good)
end)

scenario("open loop: a paused server makes latency grow from the intended times", function(t)
  local load = t:load { to = "echo-1", rate = 100, duration = "3s", concurrency = 16,
                        request = { path = "/" } }
  t:sleep("1s")
  t:pause("echo-1")
  t:sleep("1s")
  t:resume("echo-1")
  local s = load:wait()
  t:expect(s.sent == 300 and s.ok == 300, "the schedule did not slow down: " .. s.sent .. " sent, " .. s.ok .. " ok")
  t:expect(s.max >= 0.9, "the first request held by the pause waited ~1 s: max " .. s.max)
  -- ~100 requests fell due during the pause, each waiting until the resume: with latency
  -- from the intended time, p90 is well into the pause; a closed loop would have sent only
  -- 16 of them (and measured ~0 for the rest)
  t:expect(s.p90 >= 0.25, "p90 shows the stall: " .. s.p90)
  t:expect(s.p50 < 0.05, "p50 is a normal answer: " .. s.p50)
end)

scenario("a load still running at the end is stopped and cleaned up", function(t)
  t:load { to = "echo", rate = 200, request = { path = "/" } }
  local l2 = t:load { to = "echo", rate = 50, duration = "10s", request = { path = "/delay?ms=300" } }
  t:sleep("0.5s")
  local s = l2:stop()
  t:expect(not s.running and s.cancelled > 0 and s.unsent > 0 and s.inflight == 0,
    "stop: in-flight cancelled, the rest unsent: " .. s.cancelled .. ", " .. s.unsent)
  t:expect(l2:wait().sent == s.sent, "wait after stop returns at once")
end)

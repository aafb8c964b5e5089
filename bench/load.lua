-- bench/load.sh's scenario: faultline's load generator and wrk against the same server (one
-- echo-svc instance, GET /healthz over HTTP/1.1 keep-alive), alternately, in the same run.
-- wrk runs through os.execute, which blocks faultline's loop for its duration (faultline
-- sends nothing then; the server is a separate process and serves wrk alone). Our load runs
-- open-loop at a rate far above what the server can take, with wrk's connection count as its
-- concurrency, so it sends as fast as answers free a slot (the queue absorbs the rest), and
-- is stopped after the same duration. Prints one line per measurement:
--   wrk REQ_PER_S CPU_US_PER_REQ          (wrk's user+system CPU per request)
--   faultline REQ_PER_S CPU_US_PER_REQ USER_US SYS_US   (this whole process, during the load)
-- (latency percentiles mean nothing here: at a rate the server cannot take, the queue grows
-- and so does every latency measured from the intended send time.)

local REPS = tonumber(os.getenv("REPS") or "5")
local DURATION = tonumber(os.getenv("DURATION") or "3")
local CONNS = tonumber(os.getenv("CONNS") or "32")
local TMP = assert(os.getenv("BENCH_TMP"), "BENCH_TMP must be set")
local TICK = 100 -- clock ticks per second (getconf CLK_TCK on Linux)

topology {
  services = { echo = { cmd = { "echo-svc" }, env = { ECHO_REGISTER = "0" } } },
}

-- utime and stime of this process, in seconds (/proc/self/stat fields 14 and 15)
local function cpu()
  local f = assert(io.open("/proc/self/stat"))
  local stat = f:read("a")
  f:close()
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
  -- fields[1] is the state (field 3 of the file): utime is field 14, i.e. fields[12]
  return tonumber(fields[12]) / TICK, tonumber(fields[13]) / TICK
end

local function wrk(t, addr)
  local out = TMP .. "/wrk.out"
  local cmd = string.format(
    "/usr/bin/time -f 'cpu %%U %%S' wrk -t1 -c%d -d%ds http://%s/healthz > %s 2>&1",
    CONNS, DURATION, addr, out)
  t:assert(os.execute(cmd), "wrk ran: " .. cmd)
  local f = assert(io.open(out))
  local text = f:read("a")
  f:close()
  t:assert(not text:find("Non%-2xx") and not text:find("Socket errors"), "wrk saw no errors: " .. text)
  local n = tonumber(text:match("(%d+) requests in"))
  local rps = tonumber(text:match("Requests/sec:%s*([%d.]+)"))
  local u, s = text:match("cpu ([%d.]+) ([%d.]+)")
  print(string.format("wrk %.0f %.3f", rps, (tonumber(u) + tonumber(s)) / n * 1e6))
end

local function ours(t)
  -- after os.execute the loop's clock is stale: a first short sleep brings it up to date,
  -- or the next sleep would be measured from before wrk ran
  t:sleep(0.01)
  local u0, s0 = cpu()
  local load = t:load { to = "echo", rate = 1e6, concurrency = CONNS, timeout = "10s",
                        request = { path = "/healthz" }, name = "bench" }
  t:sleep(DURATION)
  local st = load:stop()
  local u1, s1 = cpu()
  t:assert(st.failed == 0, "no failed request")
  local done = st.ok
  print(string.format("faultline %.0f %.3f %.3f %.3f", done / st.elapsed,
    ((u1 - u0) + (s1 - s0)) / done * 1e6, (u1 - u0) / done * 1e6, (s1 - s0) / done * 1e6))
end

scenario("faultline's load generator vs wrk on echo GET /healthz", { timeout = 600 }, function(t)
  local addr = t:instance("echo", 1).addr
  local h = t:http { to = "echo", path = "/healthz" }
  t:assert(h.status == 200, "echo answers /healthz")
  for rep = 1, REPS do
    if rep % 2 == 1 then wrk(t, addr); ours(t) else ours(t); wrk(t, addr) end
  end
end)

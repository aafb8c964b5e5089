-- For test_browser.sh: the HTML report with real data. A t:load through the gateway (every
-- tenth request to a path that does not exist, so the error chart has points), tracing on,
-- and the first connections to users-1 reset, so the gateway retries on users-2 and the
-- collector holds traces of requests that succeeded with two CLIENT attempts.
local ENV = { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms",
              OTEL_BSP_SCHEDULE_DELAY = "100" }

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, replicas = 2, ready = "healthy", env = ENV },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy", env = ENV },
  },
}

-- A complete trace of a POST /users that succeeded after a retry: the gateway's SERVER span
-- not failed, two or more gateway CLIENT spans (attempts) under it, and users' SERVER span.
local function retried(t)
  for _, tr in ipairs(t:traces { service = "gateway", name = "POST /users" }) do
    local clients, served = 0, false
    for _, s in ipairs(tr.spans) do
      if s.kind == "client" and s.service == "gateway" then clients = clients + 1 end
      if s.kind == "server" and s.service == "users" then served = true end
    end
    if clients >= 2 and served and tr.root.service == "gateway" and tr.root.status ~= "error" then
      return tr
    end
  end
end

scenario("a load through resets and retries, traced", function(t)
  t:link("gateway", "users"):drop() -- new connections from now on: the resets hit calls
  -- the first connections to users-1 are reset: those calls are retried on users-2
  local resets = t:link("gateway", "users-1"):reset_peer { first = 4 }
  local load = t:load { to = "gateway", rate = 40, duration = "3s", request = function(i)
    if i % 10 == 0 then return { method = "POST", path = "/nowhere", body = "{}" } end
    return { method = "POST", path = "/users", body = string.format('{"name":"u%d","email":"u%d@shop"}', i, i),
             headers = { ["content-type"] = "application/json" } }
  end }
  local s = load:wait()
  t:expect(s.ok >= 90, "most requests succeeded: " .. s.ok .. " of " .. s.sent)
  t:expect(s.failed >= 10, "the requests to /nowhere failed: " .. s.failed)
  t:expect(resets:stats().resets >= 1, "connections were reset: " .. resets:stats().resets)
  t:eventually(function() return retried(t) end, "5s", "a retried request's trace arrived")
end)

-- The collector with the real shop: users and gateway export their spans over OTLP/HTTP
-- (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT, batched every 100 ms; a few POST /users through
-- the gateway must come back from t:traces as trees gateway SERVER -> CLIENT -> users SERVER.

local function env()
  return { FL_IT_MARK = os.getenv("IT_MARK"), SVC_CHECK_INTERVAL = "100ms",
           OTEL_BSP_SCHEDULE_DELAY = "100" }
end

local CLIENT = [[
for i in 1 2 3; do
  s=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -X POST \
      -d "{\"name\":\"c$i\",\"email\":\"c$i@shop\"}" "http://$GATEWAY_ADDR/users")
  echo "req $i status $s"
done
echo "endpoint $OTEL_EXPORTER_OTLP_ENDPOINT"
sleep 60]]

topology {
  grace = "2s",
  services = {
    users = { cmd = { "users" }, ready = "healthy", env = env() },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy", env = env() },
    client = { cmd = { "sh", "-c", CLIENT }, needs = { "gateway" }, ready = "none",
               start = false, env = env() },
  },
}

local function posts(t)
  local list = {}
  for _, tr in ipairs(t:traces { service = "gateway", name = "POST /users" }) do
    if tr.root and tr.root.name == "POST /users" then table.insert(list, tr) end
  end
  return list
end

scenario("POST /users traces come back as gateway SERVER -> CLIENT -> users SERVER", function(t)
  local since = t:now()
  t:start("client-1")
  t:eventually(function() return t:log("client-1"):find("endpoint http://", 1, true) end, "10s",
    "the client ran")
  local log = t:log("client-1")
  t:expect(select(2, log:gsub("status 201", "")) == 3, "three users created")
  t:expect(log:find("endpoint " .. t:collector(), 1, true) ~= nil,
    "OTEL_EXPORTER_OTLP_ENDPOINT is the collector: " .. t:collector())
  local traces = t:eventually(function()
    local l = posts(t)
    for _, tr in ipairs(l) do
      -- complete once the users SERVER span has arrived too
      local c = tr.root.children[1]
      if not (c and c.children[1]) then return false end
    end
    return #l >= 3 and l
  end, "10s", "three POST /users traces, complete")
  t:expect(#traces == 3, "exactly three POST /users traces: " .. #traces)
  for _, tr in ipairs(traces) do
    local root = tr.root
    t:expect(#tr.trace_id == 32 and tr.trace_id:match("^[0-9a-f]+$") ~= nil, "trace id hex: " .. tr.trace_id)
    t:expect(root.service == "gateway" and root.kind == "server" and root.parent_id == nil,
      "root is the gateway's SERVER span: " .. root.service .. " " .. root.kind)
    t:expect(#root.span_id == 16 and root.instance == "gateway-1", "root span id and instance")
    t:expect(root.start >= since and root.start < t:now() and root.duration > 0,
      string.format("root times relative to the scenario: start %.3f, duration %.6f", root.start, root.duration))
    t:expect(root.attributes["http.request.method"] == "POST", "root attribute http.request.method")
    local client = root.children[1]
    t:expect(client.kind == "client" and client.service == "gateway" and client.parent_id == root.span_id,
      "then the gateway's CLIENT span: " .. client.kind .. " " .. client.service)
    local server = client.children[1]
    t:expect(server.kind == "server" and server.service == "users" and server.parent_id == client.span_id
      and server.trace_id == tr.trace_id,
      "then the users SERVER span: " .. server.kind .. " " .. server.service)
    t:expect(server.start >= client.start and server.start + server.duration <= root.start + root.duration + 0.05,
      "the users span inside the gateway's")
    t:expect(#tr.spans >= 3, "every span in the flat list: " .. #tr.spans)
  end
  t:expect(#t:traces { service = "users" } >= 3, "the same traces by the users service")
  t:expect(#t:traces { service = "gateway", since = t:now() + 60 } == 0, "since in the future: none")
  t:expect(#t:traces { service = "gateway", name = "no such span" } == 0, "an unknown name: none")
  t:expect(#t:traces { service = "users", name = "POST /users" } == 0,
    "service and name must match the same span (POST /users is the gateway's)")
end)

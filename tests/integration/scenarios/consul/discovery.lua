-- Discovery through the fake Consul, as real clients live it: three echo-svc replicas
-- register themselves with an HTTP check every 100 ms (ready = "healthy": up once it
-- passes); a pinger finds them with blocking health queries on its own agent and pings
-- whatever Consul says passes; a probe (a curl loop) reads everything registered, passing
-- or not. Every scenario must pass; timing bounds are loose (small CI machines, ASan).
local disco = require "disco"

local env = disco.env

topology {
  grace = "2s",
  services = {
    echo = { cmd = { "echo-svc" }, replicas = 3, ready = "healthy",
             env = env { ECHO_CHECK_INTERVAL = "100ms", ECHO_TAGS = "blue, v1" } },
    client = { cmd = { "pinger" }, needs = { "echo" },
               env = env { PINGER_CONSUL_SERVICE = "echo", PINGER_INTERVAL_MS = 20,
                           PINGER_TIMEOUT_MS = 500 } },
    probe = { cmd = { "sh", "-c", disco.PROBE }, ready = "none",
              env = env { PROBE_SERVICE = "echo" } },
    -- turns echo-1's /healthz off for a while, through its own link to echo-1
    sicken = { cmd = { "sh", "-c", [[
      curl -s --max-time 3 "http://${ECHO_ADDR%%,*}/unhealthy?on=1"
      sleep 1.5
      curl -s --max-time 3 "http://${ECHO_ADDR%%,*}/unhealthy?on=0"
      exec sleep 60]] }, needs = { "echo" }, ready = "none", start = false, env = env() },
  },
}

-- Each client pings every target in turn: at most this many pings in flight.
local INFLIGHT = 3

local function three_healthy(t)
  t:eventually(function() return #t:healthy("echo") == 3 end, "5s", "three healthy replicas")
end

-- The client's targets are exactly its links to the instances named (a list of names).
local function targets_are(t, c, names)
  local links, want = disco.links(t, c, "echo"), {}
  for _, n in ipairs(names) do want[#want + 1] = links[n] end
  table.sort(want)
  return table.concat(disco.targets(t, c), ",") == table.concat(want, ",")
end

scenario("healthy counts, and the client is told its own links", function(t)
  -- ready = "healthy": setup waited for every replica's check to pass
  t:expect(disco.names(t:healthy("echo")) == "echo-1,echo-2,echo-3",
    "all three healthy once setup is done: " .. disco.names(t:healthy("echo")))
  t:expect(#t:healthy("client") == 0, "the client did not register: no healthy client")
  t:expect(#t:healthy("nosuch") == 0, "an unknown service has no healthy instance")
  local c = t:instance("client")
  local view = t:consul_view(c, "echo")
  t:expect(#view == 3, "the client is told three replicas, got " .. #view)
  local links = disco.links(t, c, "echo")
  for _, e in ipairs(view) do
    t:expect(links[e.id] and links[e.id] == e.address .. ":" .. e.port,
      e.id .. " is answered as the client's link to it (" .. e.address .. ":" .. e.port .. ")")
    t:expect(e.service == "echo" and e.node == e.id, e.id .. ": service echo on its own node")
    t:expect(#e.tags == 2 and e.tags[1] == "blue" and e.tags[2] == "v1",
      e.id .. " has tags blue, v1")
    local inst = t:instance("echo", tonumber(e.id:match("%d+$")))
    t:expect(e.address .. ":" .. e.port ~= inst.addr, e.id .. " is not its own address")
  end
  -- another instance (the probe does not need echo) is told the registered addresses
  local pv = t:consul_view(t:instance("probe"), "echo")
  local own = {}
  for _, e in ipairs(pv) do own[#own + 1] = e.address .. ":" .. e.port end
  table.sort(own)
  local want = {}
  for _, i in ipairs(t:instances("echo")) do want[#want + 1] = i.addr end
  table.sort(want)
  t:expect(table.concat(own, ",") == table.concat(want, ","),
    "an instance without links to echo is told the registered addresses: " .. table.concat(own, ","))
  -- the client follows: its targets are its links, and every replica answers it
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "3s",
    "the client's targets are its three links")
  local ps = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 15)
  t:expect(disco.count(ps, "ok") == 15, "discovered calls succeed: " .. disco.describe(ps))
  local seen = {}
  for _, p in ipairs(ps) do seen[p.instance] = true end
  t:expect(seen["echo-1"] and seen["echo-2"] and seen["echo-3"], "every replica answered")
  -- the probe sees the three registrations, none critical
  local pr = disco.next_probes(t, t:instance("probe"), 1)[1]
  t:expect(pr.n == 3 and pr.critical == 0 and pr.ids == "echo-1,echo-2,echo-3,",
    "the probe sees three registrations, none critical: " .. pr.line)
end)

scenario("a crashed replica goes critical within an interval, leaves the view, and returns", function(t)
  three_healthy(t)
  local c, victim = t:instance("client"), t:instance("echo", 2)
  t:crash(victim)
  t:eventually(function() return #t:healthy("echo") == 2 end, "1s",
    "echo-2 is critical within about one 100ms check interval")
  t:expect(disco.names(t:healthy("echo")) == "echo-1,echo-3", "echo-1 and echo-3 stay healthy")
  t:eventually(function() return disco.ids(t:consul_view(c, "echo")) == "echo-1,echo-3" end, "1s",
    "echo-2 leaves the client's view")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-3" }) end, "2s",
    "the client drops echo-2 from its targets")
  local after = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 12)
  local bad = 0
  for _, p in ipairs(after) do
    if p.result ~= "ok" or p.instance == "echo-2" then bad = bad + 1 end
  end
  t:expect(bad == 0, "then every call is answered by a live replica: " .. disco.describe(after))
  -- the registration stays (a crash deregisters nothing): critical, as the probe sees it
  local probes = disco.next_probes(t, t:instance("probe"), 2)
  t:expect(probes[2].n == 3 and probes[2].critical == 1,
    "echo-2 is still registered, critical: " .. probes[2].line)
  t:restart(victim) -- ready = "healthy": returns once its check passes again
  t:expect(#t:healthy("echo") == 3, "echo-2 is healthy again when t:restart returns")
  t:eventually(function() return #t:consul_view(c, "echo") == 3 end, "1s",
    "echo-2 is back in the client's view")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "2s",
    "and in its targets")
end)

scenario("t:stop deregisters: the replica leaves the catalog, not just the view", function(t)
  three_healthy(t)
  local c, victim = t:instance("client"), t:instance("echo", 3)
  t:stop(victim)
  -- echo deregisters on SIGTERM before it exits, so this holds as soon as t:stop returns
  t:expect(#t:healthy("echo") == 2, "echo-3 is gone from the healthy list when t:stop returns")
  t:expect(#t:consul_view(c, "echo") == 2, "and from the client's view")
  t:expect(t:log(victim):find("deregistered from consul", 1, true) ~= nil,
    "echo-3 logged its deregistration")
  t:eventually(function()
    local p = disco.next_probes(t, t:instance("probe"), 1)[1]
    return p.n == 2 and p.critical == 0 and p.ids == "echo-1,echo-2,"
  end, "2s", "the probe sees two registrations left, none critical")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2" }) end, "2s",
    "the client drops echo-3")
  t:start(victim)
  t:expect(#t:healthy("echo") == 3, "t:start registers it again (ready = healthy)")
end)

scenario("a failing /healthz makes a live replica critical until it recovers", function(t)
  three_healthy(t)
  local c = t:instance("client")
  t:start("sicken-1") -- echo-1's /healthz answers 500 for 1.5 s
  t:eventually(function() return disco.names(t:healthy("echo")) == "echo-2,echo-3" end, "1s",
    "echo-1 goes critical on its 500s")
  t:eventually(function() return disco.ids(t:consul_view(c, "echo")) == "echo-2,echo-3" end, "1s",
    "and leaves the client's view")
  t:expect(t:instance("echo", 1).state == "up", "while its process keeps running")
  t:eventually(function() return #t:healthy("echo") == 3 end, "4s",
    "echo-1 passes again once /healthz answers 200")
  t:expect(t:log("echo-1"):find("/healthz now answers 500", 1, true) ~= nil,
    "echo-1 logged the /unhealthy call")
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "2s",
    "the client takes echo-1 back")
end)

scenario("link faults reach the discovered connections", function(t)
  three_healthy(t)
  local c = t:instance("client")
  local e1, e2 = t:instance("echo", 1), t:instance("echo", 2)
  t:eventually(function() return targets_are(t, c, { "echo-1", "echo-2", "echo-3" }) end, "3s",
    "the client's targets are its links")
  local links = disco.links(t, c, "echo")
  local f = t:link(c, e1):refuse {}
  local ps = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 18)
  local to1, ok1, okothers = 0, 0, 0
  for _, p in ipairs(ps) do
    if p.target == links["echo-1"] then
      to1 = to1 + 1
      if p.result == "ok" then ok1 = ok1 + 1 end
    elseif p.result == "ok" then
      okothers = okothers + 1
    end
  end
  t:expect(to1 >= 4 and ok1 == 0, "every ping to echo-1's link fails while it refuses: " .. disco.describe(ps))
  t:expect(okothers == #ps - to1, "pings to the other replicas succeed: " .. disco.describe(ps))
  t:expect(f:stats().refused >= 1, "the refuse fault counts what it refused")
  t:expect(#t:healthy("echo") == 3, "Consul still says echo-1 passes: its check does not use the link")
  f:remove()
  local back = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 12)
  t:expect(disco.count(back, "ok") == 12, "all ok once the fault is removed: " .. disco.describe(back))
  -- a partition between the client and echo-2 holds its pings until they time out (500 ms),
  -- so they are logged late: wait for a few of them, and for the others meanwhile
  local part = t:partition(c, e2)
  local mark = disco.mark(t, c, INFLIGHT)
  local held = t:eventually(function()
    local to2, others = {}, {}
    for _, p in ipairs(disco.pings(t, c)) do
      if p.seq > mark then
        local l = p.target == links["echo-2"] and to2 or others
        l[#l + 1] = p
      end
    end
    if #to2 >= 2 and #others >= 6 then return { to2 = to2, others = others } end
  end, "8s", "pings to echo-2 and to the others while partitioned")
  t:expect(disco.count(held.to2, "ok") == 0 and disco.count(held.to2, "timeout") >= 1,
    "pings to echo-2's link time out while partitioned: " .. disco.describe(held.to2))
  t:expect(disco.count(held.others, "ok") == #held.others,
    "pings to the others go on: " .. disco.describe(held.others))
  t:expect(#t:healthy("echo") == 3, "Consul still says echo-2 passes")
  part:remove()
  local healed = disco.wait(t, c, disco.mark(t, c, INFLIGHT), 12)
  t:expect(disco.count(healed, "ok") == 12, "all ok after the partition: " .. disco.describe(healed))
end)

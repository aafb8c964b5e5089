-- The fake broker in scenarios, through real clients (python3-pika, lib/amqp_svc.py): every
-- instance reaches the broker through its own link, given as AMQP_URL. A producer publishes
-- persistent messages with confirms to a durable queue, a consumer acks them. Checked: all
-- arrive; t.broker:stats counts them; a broker restart loses no persistent message; a
-- partition between the producer and the broker stalls it, heal resumes it; drop and
-- duplicate faults are seen by the consumer and counted; block/unblock holds publishers.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local procs = require "procs"
local svc = { "/usr/bin/python3", here .. "/lib/amqp_svc.py" }

local function env(extra)
  local e = { FL_IT_MARK = procs.mark, AMQP_QUEUE = "work" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

topology {
  grace = "2s",
  services = {
    producer = { cmd = svc, ready = "none", start = false,
                 env = env { AMQP_ROLE = "producer", AMQP_COUNT = 40, AMQP_RATE = 100 } },
    consumer = { cmd = svc, ready = "none", env = env { AMQP_ROLE = "consumer" } },
  },
}

-- The bodies the consumer logged, as a set, and how many lines (duplicates count).
local function received(t)
  local got, lines, redelivered = {}, 0, 0
  for body, re in t:log("consumer-1"):gmatch("got (m%d+) redelivered=(%a+)") do
    got[body] = true
    lines = lines + 1
    if re == "True" then redelivered = redelivered + 1 end
  end
  local n = 0
  for _ in pairs(got) do n = n + 1 end
  return n, lines, redelivered
end

local function confirmed(t)
  local n = 0
  for _ in t:log("producer-1"):gmatch("confirmed %d+") do n = n + 1 end
  return n
end

local function connected(t, inst, n)
  t:eventually(function()
    local c = 0
    for _ in t:log(inst):gmatch("connected") do c = c + 1 end
    return c >= n
  end, "10s", inst .. " connected " .. n .. " time(s)")
end

scenario("messages flow from producer to consumer through the broker", function(t)
  connected(t, "consumer-1", 1)
  t:start("producer-1")
  t:eventually(function() return received(t) == 40 end, "15s", "all 40 messages consumed")
  local st = t.broker:stats("work")
  t:expect(st.published == 40, "the queue took 40 messages, got " .. st.published)
  t:eventually(function() return t.broker:stats("work").acked == 40 end, "5s", "40 acked")
  t:expect(t.broker:stats("nope") == nil, "no stats for a queue that does not exist")
  t:expect(t.broker:connections() == 2, "two connections, got " .. t.broker:connections())
end)

scenario("a broker restart loses no persistent message", function(t)
  connected(t, "consumer-1", 1)
  t:stop("consumer-1")
  t:start("producer-1")
  t:eventually(function() return confirmed(t) >= 20 end, "10s", "20 confirmed")
  t.broker:restart()
  connected(t, "producer-1", 2)
  t:eventually(function() return confirmed(t) >= 40 end, "15s", "all confirmed after restart")
  t:start("consumer-1")
  t:eventually(function() return received(t) == 40 end, "15s", "all 40 consumed after restart")
end)

scenario("a partition from the broker stalls the producer until healed", function(t)
  connected(t, "consumer-1", 1)
  t:partition("producer", "broker")
  t:start("producer-1")
  t:sleep("1s")
  t:expect(confirmed(t) == 0, "nothing confirmed while partitioned, got " .. confirmed(t))
  t:heal()
  t:eventually(function() return received(t) == 40 end, "20s", "all consumed after heal")
end)

scenario("dropped and duplicated deliveries are counted and seen", function(t)
  connected(t, "consumer-1", 1)
  t.broker:duplicate { rate = 0.5 }
  t:start("producer-1")
  t:eventually(function() return confirmed(t) == 40 end, "15s", "all confirmed")
  t:eventually(function() local n = received(t); return n == 40 end, "10s", "all consumed")
  local _, lines, re = received(t)
  local st = t.broker:stats("work")
  t:expect(st.duplicated > 5, "some deliveries duplicated: " .. st.duplicated)
  t:eventually(function() local _, l = received(t); return l == 40 + t.broker:stats("work").duplicated end,
    "5s", "every duplicate reached the consumer")
  t:expect(re >= 1, "duplicates arrive redelivered")
  t.broker:duplicate(0)
  t.broker:drop { rate = 1 }
  t:restart("producer-1")
  t:sleep("1.5s")
  t:expect(t.broker:stats("work").dropped > 0, "drops counted")
end)

scenario("blocked publishers wait until unblocked", function(t)
  connected(t, "consumer-1", 1)
  t.broker:block()
  t:start("producer-1")
  connected(t, "producer-1", 1)
  t:sleep("1s")
  t:expect(confirmed(t) == 0, "nothing confirmed while blocked, got " .. confirmed(t))
  t.broker:unblock()
  t:eventually(function() return received(t) == 40 end, "15s", "all consumed after unblock")
end)

-- Discovery: three users replicas register in the fake Consul with gRPC checks every 100 ms;
-- the gateway watches users' passing instances (blocking queries) and balances over what it
-- is told. A curl client keeps creating users through the gateway. Checked: a crashed,
-- stopped or paused replica leaves the gateway's view and a restarted or resumed one comes
-- back; a stopped replica deregisters (it does not merely fail its check); and with Consul
-- down, frozen or stale, the gateway keeps serving from what it last knew, retries hiding the
-- replica that died meanwhile.
local shop = require "shop"

topology {
  grace = "2s",
  mutants = shop.mutants(),
  services = shop.services {
    users = 3,
    client = { kind = "users", n = 2000, pause = 0.02 },
  },
}

local function view(t) return shop.view(t, "gateway-1", "users") end

local function view_is(t, want, within, why)
  t:eventually(function() return view(t) == want end, within,
    why .. ": the gateway is told '" .. want .. "'")
end

local function served(t, i) return shop.served(t, "users-" .. i) end

-- users-i is back in the gateway's view within `within`, and serves requests again.
local function back(t, i, within, how)
  view_is(t, "users-1 users-2 users-3", within, "users-" .. i .. " " .. how)
  local again = served(t, i)
  t:eventually(function() return served(t, i) >= again + 3 end, "5s", "users-" .. i .. " serves again")
end

-- Starts the client and waits for its first answers.
local function load(t)
  t:eventually(function() return #t:healthy("users") == 3 end, "5s", "three healthy replicas")
  shop.start(t, "client-1")
  t:eventually(function() return shop.answered(t, "client-1") >= 5 end, "5s",
    "the client's first answers")
end

-- n more answers from the client: how many were 201, and their summary.
local function next_answers(t, n, from)
  local _, ok, summary = shop.next_answers(t, "client-1", from or shop.answered(t, "client-1"), n)
  return ok, summary
end

scenario("a crashed replica leaves the gateway's view, and returns after a restart", function(t)
  load(t)
  t:crash("users-1")
  view_is(t, "users-2 users-3", "1s", "users-1 crashed")
  t:expect_discovery("users", { within = "1s" }) -- every client's view, judged by the harness
  local before = served(t, 1)
  local ok, summary = next_answers(t, 20)
  t:expect(ok == 20, "every request after the crash answered: " .. summary)
  t:expect(served(t, 1) == before, "nothing reached the crashed replica")
  t:restart("users-1")
  back(t, 1, "1s", "restarted")
  t:expect_discovery("users", { within = "1s" })
end)

scenario("a stopped replica deregisters instead of lingering as critical", { catches = { "no-deregister" } }, function(t)
  -- catches no-deregister: its registration stays, critical, for a minute
  load(t)
  t:stop("users-1")
  view_is(t, "users-2 users-3", "1s", "users-1 stopped")
  -- Flapping users' checks shows every registered instance as passing half the time: a
  -- replica that deregistered is not registered, so it must never come back.
  t.consul:flap("users", "50ms")
  t:always(function() return not view(t):find("users-1", 1, true) end, "400ms",
    "users-1 stays out of the catalog (deregistered, not just failing its check)")
  t.consul:steady("users")
end)

scenario("a paused replica leaves the view, and rejoins when resumed", function(t)
  load(t)
  t:pause("users-2")
  view_is(t, "users-1 users-3", "3s", "users-2 paused (its 1 s check times out)")
  -- the request that was waiting on users-2 may still be answered 503 at its deadline
  local ok, summary = next_answers(t, 20, shop.answered(t, "client-1") + 1)
  t:expect(ok == 20, "every request once users-2 left the view answered: " .. summary)
  t:resume("users-2")
  back(t, 2, "2s", "resumed")
end)

scenario("with Consul down, the gateway keeps calling what it last knew", function(t)
  load(t)
  t.consul:down()
  local s = { served(t, 1), served(t, 2), served(t, 3) }
  local ok, summary = next_answers(t, 30)
  t:expect(ok == 30, "every request while Consul is down answered: " .. summary)
  for i = 1, 3 do
    t:expect(served(t, i) > s[i], "users-" .. i .. " still served while Consul was down")
  end
  t.consul:up()
  view_is(t, "users-1 users-2 users-3", "2s", "Consul back")
end)

scenario("with Consul frozen, retries hide a crash until the thaw tells the gateway", function(t)
  load(t)
  t.consul:freeze()
  t:crash("users-1")
  local _, from = shop.attempts(t)
  local ok, summary = next_answers(t, 20)
  t:expect(ok == 20, "every request while frozen answered: " .. summary)
  local by = shop.attempts(t, nil, from)
  t:expect((by[2] or 0) > 0, "the gateway still tried users-1 (requests retried: " .. (by[2] or 0) .. ")")
  t.consul:thaw()
  view_is(t, "users-2 users-3", "1s", "thawed")
  t:sleep("0.1s")
  _, from = shop.attempts(t)
  ok, summary = next_answers(t, 15)
  by = shop.attempts(t, nil, from)
  t:expect(ok == 15 and (by[1] or 0) >= 14 and not by[2],
    string.format("after the thaw, requests answered at the first attempt: %s; attempts 1: %d, 2: %d",
      summary, by[1] or 0, by[2] or 0))
end)

scenario("stale answers keep a crashed replica in view for a while; retries hide it", function(t)
  load(t)
  t:sleep(math.max(0, 0.7 - t:now())) -- the catalog half a second ago: every replica passing
  t.consul:stale("500ms")
  t:crash("users-1")
  t:sleep("0.2s")
  t:expect(view(t) == "users-1 users-2 users-3", "a stale answer still lists users-1: " .. view(t))
  local ok, summary = next_answers(t, 15)
  t:expect(ok == 15, "every request during stale answers answered: " .. summary)
  view_is(t, "users-2 users-3", "2s", "the stale window passed")
  t.consul:stale(0)
end)

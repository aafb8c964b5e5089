-- The shop of docs/writing-scenarios.md: three users replicas behind the gateway, and a
-- client that creates users through it. `require "shop"` declares the topology and returns
-- the helpers.
local CLIENT = [[
i=0
while :; do
  i=$((i + 1))
  code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' -X POST \
         -d "{\"name\":\"u$i\",\"email\":\"u$i@shop\"}" "http://$GATEWAY_ADDR/users")
  echo "request $i status $code"
  sleep 0.02
done]]

topology {
  services = {
    users   = { cmd = { "users" }, replicas = 3, ready = "healthy" },
    gateway = { cmd = { "gateway" }, needs = { "users" }, ready = "healthy" },
    client  = { cmd = { "sh", "-c", CLIENT }, needs = { "gateway" }, ready = "none" },
  },
}

local shop = {}

-- How many of the client's requests have succeeded (201) and failed so far.
function shop.requests(t)
  local ok, failed = 0, 0
  for code in t:log("client-1"):gmatch("request %d+ status (%d+)") do
    if code == "201" then ok = ok + 1 else failed = failed + 1 end
  end
  return ok, failed
end

return shop

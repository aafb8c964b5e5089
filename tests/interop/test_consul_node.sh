# The npm `consul` package (2.0.1, installed by `make deps` with `npm ci` in tests/interop)
# against a standalone fake Consul with two agents: consul_node.js registers services with
# an HTTP check (pointed at an echo-svc that stays out of Consul, whose /unhealthy fails
# it) and a TTL check, passes/warns/fails the TTL check, queries health with `passing`,
# watches a service and is woken by a registration on the other agent, blocks on a health
# query woken by the HTTP check failing, deregisters, uses KV (base64 decoded by the
# client, cas, keys, recurse, a blocking read), agent.self, status.leader, and checks the
# errors the client reports (404 for an unknown check, 400 for a bad TTL). Every result is
# asserted; the fake's own event log must show what the client did. Without node or the
# package it says SKIP and passes.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

NODE_MODULES="$FL_SOURCE_DIR/tests/interop/node_modules"
command -v node >/dev/null 2>&1 || skip "node is not installed: the npm consul client cannot run"
[ -f "$NODE_MODULES/consul/package.json" ] ||
    skip "$NODE_MODULES/consul is missing (make deps runs npm ci in tests/interop)"
expect_grep '"version": "2\.0\.1"' "$NODE_MODULES/consul/package.json"

start_fake 2
start_echo echo

# the client's own run: one line per check, bounded
run node "$FL_SOURCE_DIR/tests/interop/consul_node.js" "$AGENT1" "$AGENT2" "$ECHO_ADDR"
cat "$OUT"
count_checks "$OUT"
expect_eq "consul_node.js exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all node checks passed$' "$OUT"

# what the fake saw, from its event log
F="$FL_TMP/fake.err"
expect_grep "^faultline consul: node-1: registered service web-1 \(web\) at $ECHO_ADDR, 1 check$" "$F"
expect_grep '^faultline consul: node-1: check service:web-1 critical -> passing: HTTP GET http://.*/healthz: 200 OK' "$F"
expect_grep '^faultline consul: node-1: check service:web-1 passing -> critical: HTTP GET .*: 500 Internal Server Error' "$F"
expect_grep '^faultline consul: node-1: check service:worker-1 critical -> passing: all good$' "$F"
expect_grep '^faultline consul: node-1: check service:worker-1 passing -> warning$' "$F"
expect_grep '^faultline consul: node-1: check service:worker-1 warning -> critical: disk full$' "$F"
expect_grep '^faultline consul: node-2: registered service api-1 \(api\) at 127\.0\.0\.1:7001, 1 check$' "$F"
expect_grep '^faultline consul: node-2: deregistered service api-1$' "$F"
expect_grep '^faultline consul: node-1: deregistered service web-1$' "$F"
expect_eq "the echo service's /healthz was turned off and on once each" \
    "$(grep -c '/healthz now answers' "$FL_TMP/echo.log")" 2

stop_pid "$ECHO_PID" echo-svc
stop_fake
it_done

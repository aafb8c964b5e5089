# Debian's python3-consul 0.7.1 (seen only by /usr/bin/python3) against a standalone fake
# Consul with two agents: consul_py.py registers services with HTTP, TCP and TTL checks
# (consul.Check.http/tcp/ttl) pointed at an echo-svc that stays out of Consul, queries
# health with passing=True, the catalog, KV with recurse/keys/cas (base64 decoded by the
# library), blocking kv.get and health.service woken by writes on the other agent (and a
# blocking read that times out after its wait), status.leader, agent.self, and the
# BadRequest it raises for a bad TTL. It also asserts the library's known incompatibility
# with Consul >= 1.0 (DESIGN.md, "Fakes"): deregister and check pass/fail are sent as GET,
# answered 405, so the library returns False and nothing changes; the fake's event log must
# show no deregistration or check update from those calls. Without the library: SKIP.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is missing: python3-consul cannot run"
v=$($PY -c 'import consul; print(consul.__version__)' 2>/dev/null) ||
    skip "python3-consul is not installed for $PY (make deps installs it)"
expect_eq "python3-consul version" "$v" 0.7.1

start_fake 2
start_echo echo

run env CONSUL_HTTP_ADDR="$ADDR1" $PY "$FL_SOURCE_DIR/tests/interop/consul_py.py" "$ECHO_ADDR" "$ADDR2"
cat "$OUT"
count_checks "$OUT"
expect_eq "consul_py.py exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all python checks passed$' "$OUT"

# the fake's event log: what worked, and that the GETs changed nothing
F="$FL_TMP/fake.err"
expect_grep "^faultline consul: node-1: registered service web-1 \(web\) at $ECHO_ADDR, 1 check$" "$F"
expect_grep "^faultline consul: node-1: registered service db-1 \(db\) at $ECHO_ADDR, 1 check$" "$F"
expect_grep "^faultline consul: node-2: registered service web-2 \(web\) at $ECHO_ADDR, 1 check$" "$F"
expect_grep "^faultline consul: node-1: check service:db-1 critical -> passing: TCP connect $ECHO_ADDR: Success$" "$F"
expect_grep '^faultline consul: node-1: check service:worker-1 critical -> passing: by hand$' "$F"
expect_eq "check changes of worker-1 (only the PUT's)" \
    "$(grep -c 'check service:worker-1 ' "$F")" 1
expect_no_grep 'deregistered service web-2' "$F"
expect_grep '^faultline consul: node-1: deregistered service web-1$' "$F"

# web-2 is left registered through node-2 by the GET that could not deregister it
expect_eq "PUT deregister web-2 on node-2" \
    "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X PUT "$AGENT2/v1/agent/service/deregister/web-2")" 200
expect_eq "the catalog's services after it" "$(curl -s --max-time 5 "$AGENT1/v1/catalog/services")" '{}'

stop_pid "$ECHO_PID" echo-svc
stop_fake
it_done

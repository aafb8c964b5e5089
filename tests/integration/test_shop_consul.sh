# The shop's services with Consul (services/runtime/svc.c + consul.c) against the standalone
# fake Consul, by hand: users and the gateway register (gRPC and HTTP checks every 100 ms)
# and pass; the gateway finds users through a blocking health watch — a second users is
# taken into the balance at once, one that stops on SIGTERM deregisters and is dropped, the
# POSTs keep succeeding throughout; with FAULTLINE_BUG=no-deregister a users stays in the
# catalog after SIGTERM (its check then fails, so the gateway's watch of passing instances
# still drops it). Every service exits 0.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

command -v curl >/dev/null || skip "curl is missing"
start_fake 1

# start_c NAME BIN VAR=VALUE...: start_svc registered with the fake agent (checks every 100 ms)
start_c() {
    _n=$1 _b=$2
    shift 2
    start_svc "$_n" "$_b" CONSUL_HTTP_ADDR="$ADDR1" SVC_CHECK_INTERVAL=100ms INSTANCE_ID="$_n" "$@"
    wait_until 5 grep -q 'registered with consul' "$FL_TMP/$_n.log" ||
        fail "$_n did not register: $(tail -n 3 "$FL_TMP/$_n.log")"
}
# passing SERVICE: the instance ids Consul lists as passing, sorted, on one line
passing() {
    curl -s --max-time 2 "$AGENT1/v1/health/service/$1?passing=true" |
        /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(e["Service"]["ID"] for e in json.load(sys.stdin))))'
}
# in_catalog SERVICE: the instance ids in the catalog, sorted, on one line
in_catalog() {
    curl -s --max-time 2 "$AGENT1/v1/catalog/service/$1" |
        /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(e["ServiceID"] for e in json.load(sys.stdin))))'
}
passing_is() { [ "$(passing "$1")" = "$2" ]; }
catalog_is() { [ "$(in_catalog "$1")" = "$2" ]; }
# posts N: N POST /users through the gateway; the ids of the users that made them, one a line
posts() {
    _i=0
    while [ "$_i" -lt "$1" ]; do
        _id=$(curl -s --max-time 5 -H Content-Type:application/json -d '{"name":"n","email":"e@x"}' \
            "http://$G/users" | sed -n 's/.*"id": *"\(users-[0-9]*\)\..*/\1/p')
        [ -n "$_id" ] && echo "$_id"
        _i=$((_i + 1))
    done
}

start_c users-1 users SERVICE_NAME=users
U1_PID=$SVC_PID
start_c gateway-1 gateway SERVICE_NAME=gateway
G_PID=$SVC_PID G=$SVC_ADDR
expect_grep 'calls users through consul' "$FL_TMP/gateway-1.log"
wait_until 5 passing_is users users-1 && ok "users-1 passes its gRPC check" || fail "users passing: '$(passing users)'"
wait_until 5 passing_is gateway gateway-1 && ok "gateway-1 passes its HTTP check" || fail "gateway passing: '$(passing gateway)'"
posts 4 >"$FL_TMP/ids"
expect_eq "POST /users through Consul, made by users-1" "$(sort -u "$FL_TMP/ids" | tr '\n' ' ')" "users-1 "

start_c users-2 users SERVICE_NAME=users
U2_PID=$SVC_PID
wait_until 5 passing_is users "users-1 users-2" || fail "users passing: '$(passing users)'"
# the gateway's watch answers as soon as the list changes: round robin now takes both
spread_ok() { posts 4 | sort -u | tr '\n' ' ' | grep -qx 'users-1 users-2 '; }
if wait_until 3 spread_ok; then ok "the gateway balances over users-1 and users-2"; else fail "users-2 never answered through the gateway"; fi

stop_pid "$U1_PID" users-1
expect_grep 'deregistered' "$FL_TMP/users-1.log"
wait_until 3 catalog_is users users-2 && ok "users-1 left the catalog" || fail "catalog after users-1 stopped: '$(in_catalog users)'"
posts 6 >"$FL_TMP/ids"
expect_eq "after users-1 stopped, every POST made by users-2" "$(sort -u "$FL_TMP/ids" | tr '\n' ' ')" "users-2 "
expect_eq "after users-1 stopped, POSTs answered" "$(wc -l <"$FL_TMP/ids")" 6

start_c users-3 users SERVICE_NAME=users FAULTLINE_BUG=no-deregister
U3_PID=$SVC_PID
wait_until 5 passing_is users "users-2 users-3" || fail "users passing: '$(passing users)'"
stop_pid "$U3_PID" "users-3 (no-deregister)"
expect_no_grep 'deregistered' "$FL_TMP/users-3.log"
sleep 0.5
expect_eq "users-3 stays in the catalog (no-deregister)" "$(in_catalog users)" "users-2 users-3"
wait_until 5 passing_is users users-2 && ok "users-3's check fails: only users-2 passes" || fail "users passing: '$(passing users)'"
posts 4 >"$FL_TMP/ids"
expect_eq "with users-3 dead, POSTs answered by users-2" "$(sort -u "$FL_TMP/ids" | tr '\n' ' ')" "users-2 "

stop_pid "$G_PID" gateway-1
stop_pid "$U2_PID" users-2
wait_until 3 catalog_is gateway "" && ok "gateway-1 deregistered" || fail "gateway catalog: '$(in_catalog gateway)'"
stop_fake
for f in users-1 users-2 users-3 gateway-1; do
    expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/$f.log"
done
it_done

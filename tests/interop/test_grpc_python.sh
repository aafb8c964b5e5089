# python3-grpcio against our gRPC runtime, both ways. Messages come from classes protoc
# generates at test time from services/proto (python3-grpc-tools is not used: grpcio's
# generic API takes the serializers). grpc_py.py client: statuses (all 16, messages that
# need percent-encoding), metadata and trailers, deadlines, unknown methods, 3 MB messages
# both ways and the 4 MiB limits, health, 300 calls in flight — against our greeter.
# Then greeter-client (our client) against grpc_py.py server (a grpcio Greeter): the same
# kinds of checks the other way, and UNAVAILABLE once that server is gone. Then the shop:
# grpc_py.py shop against our users (CreateUser, GetUser, INVALID_ARGUMENT, NOT_FOUND, 100
# calls in flight, health; deadlines against a users with USERS_DELAY_MS) and our orders
# without AMQP_URL (stored, not announced; INVALID_ARGUMENT for amount 0...). Without
# /usr/bin/python3, grpcio or python3-protobuf: SKIP.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is missing"
$PY -c 'import grpc' 2>/dev/null || skip "python3-grpcio is not installed for $PY (make deps)"
$PY -c 'import google.protobuf' 2>/dev/null || skip "python3-protobuf is not installed for $PY (make deps)"
command -v protoc >/dev/null || skip "protoc is missing (protobuf-compiler)"
mkdir -p "$FL_TMP/py"
protoc -I "$FL_SOURCE_DIR/services/proto" --python_out="$FL_TMP/py" hello.proto health.proto shop.proto ||
    fail "protoc --python_out"
GC="$FL_BIN_DIR/greeter-client"

# grpcio client -> our greeter
env PORT=0 INSTANCE_ID=greeter-py "$FL_BIN_DIR/greeter" >"$FL_TMP/greeter.log" 2>&1 &
G_PID=$!
it_track "$G_PID"
wait_until 5 grep -q 'listening on' "$FL_TMP/greeter.log" || fail "greeter did not start"
G_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/greeter.log")
IT_LIMIT=60 run env PYTHONPATH="$FL_TMP/py" $PY "$FL_SOURCE_DIR/tests/interop/grpc_py.py" client "$G_ADDR"
cat "$OUT"
count_checks "$OUT"
expect_eq "grpc_py.py client exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all python checks passed$' "$OUT"
stop_pid "$G_PID" greeter
expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/greeter.log"

# grpcio client -> our users and orders (no broker: orders are stored, not announced)
start_svc users-py users INSTANCE_ID=users-py
U_PID=$SVC_PID U_ADDR=$SVC_ADDR
start_svc users-slow users INSTANCE_ID=users-slow USERS_DELAY_MS=1000
S_PID=$SVC_PID S_ADDR=$SVC_ADDR
start_svc orders-py orders INSTANCE_ID=orders-py AMQP_URL=
O_PID=$SVC_PID O_ADDR=$SVC_ADDR
expect_grep 'no AMQP_URL: orders are stored but not announced' "$FL_TMP/orders-py.log"
IT_LIMIT=60 run env PYTHONPATH="$FL_TMP/py" $PY "$FL_SOURCE_DIR/tests/interop/grpc_py.py" shop "$U_ADDR" "$S_ADDR" "$O_ADDR"
cat "$OUT"
count_checks "$OUT"
expect_eq "grpc_py.py shop exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all python checks passed$' "$OUT"
stop_pid "$U_PID" users
stop_pid "$S_PID" "users (slow)"
stop_pid "$O_PID" orders
for f in users-py users-slow orders-py; do
    expect_grep '\]: stopped$' "$FL_TMP/$f.log"
    expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/$f.log"
done

# our client -> grpcio server
env PYTHONPATH="$FL_TMP/py" $PY "$FL_SOURCE_DIR/tests/interop/grpc_py.py" server >"$FL_TMP/pyserver.log" 2>&1 &
P_PID=$!
it_track "$P_PID"
wait_until 10 grep -q 'listening on' "$FL_TMP/pyserver.log" || {
    fail "the grpcio server did not start"
    show "$FL_TMP/pyserver.log"
    it_done
}
P_ADDR=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/pyserver.log")

call() {
    run "$GC" "$@" "$P_ADDR"
    expect_eq "greeter-client $* exit status" "$RC" 0
    [ "$RC" -eq 0 ] || show "$OUT"
}
call
expect_grep "^call 1: OK 'Hello World'" "$OUT"
call --name 'Ünïcode ☃' --meta x-echo=v2
expect_grep "^call 1: OK 'Hello Ünïcode ☃' meta\[x-echo\]=v2 meta\[x-echo-trailer\]=v2 " "$OUT"
call --meta x-fail-code=PERMISSION_DENIED --meta 'x-fail-message=nope: 100%25 %C3%A9' --expect PERMISSION_DENIED
expect_grep '^call 1: PERMISSION_DENIED: nope: 100% é ' "$OUT"
call --meta x-fail-code=UNAVAILABLE --expect UNAVAILABLE
expect_grep '^call 1: UNAVAILABLE: ' "$OUT"
call --timeout 150ms --meta x-delay-ms=3000 --expect DEADLINE_EXCEEDED
expect_grep '^call 1: DEADLINE_EXCEEDED: ' "$OUT"
call --method /hello.Greeter/Nope --expect UNIMPLEMENTED
expect_grep '^call 1: UNIMPLEMENTED' "$OUT"
call -q --name-size 3000000 --timeout 10s
expect_grep '^summary: calls=1 OK=1 ' "$OUT"
call --name-size 4194305 --max-send 8000000 --timeout 10s --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: ' "$OUT"
call --name-size 2000000 --max-recv 1000000 --timeout 10s --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: received message larger than max \(2000010 vs\. 1000000\)' "$OUT"
call -q -n 300 -c 50 --timeout 10s
expect_grep '^summary: calls=300 OK=300 connections=1 max_inflight=50$' "$OUT"
stop_pid "$P_PID" "the grpcio server"
call --expect UNAVAILABLE
expect_grep "^call 1: UNAVAILABLE: failed to connect to $P_ADDR: connection refused" "$OUT"
it_done

# npm @grpc/grpc-js and @grpc/proto-loader (from the committed lock file; `make deps` runs
# npm ci) against our greeter: grpc_node.js checks statuses and messages, metadata and
# trailers, deadlines, unknown methods, 3 MB messages and the 4 MiB limits, health, and 200
# calls in flight. Then grpc_node.js shop against our users (and one with USERS_DELAY_MS, for
# deadlines) and our orders without AMQP_URL. Without node or the packages it says SKIP and
# passes.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

NODE_MODULES="$FL_SOURCE_DIR/tests/interop/node_modules"
command -v node >/dev/null 2>&1 || skip "node is not installed: @grpc/grpc-js cannot run"
[ -f "$NODE_MODULES/@grpc/grpc-js/package.json" ] ||
    skip "$NODE_MODULES/@grpc/grpc-js is missing (make deps runs npm ci in tests/interop)"
expect_grep '"version": "1\.14\.7"' "$NODE_MODULES/@grpc/grpc-js/package.json"

env PORT=0 INSTANCE_ID=greeter-node "$FL_BIN_DIR/greeter" >"$FL_TMP/greeter.log" 2>&1 &
G_PID=$!
it_track "$G_PID"
wait_until 5 grep -q 'listening on' "$FL_TMP/greeter.log" || fail "greeter did not start"
G_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/greeter.log")

IT_LIMIT=60 run node "$FL_SOURCE_DIR/tests/interop/grpc_node.js" "$FL_SOURCE_DIR/services/proto" "$G_ADDR"
cat "$OUT"
count_checks "$OUT"
expect_eq "grpc_node.js exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all node checks passed$' "$OUT"
stop_pid "$G_PID" greeter
expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/greeter.log"

# @grpc/grpc-js -> our users and orders (no broker: orders are stored, not announced)
start_svc users-node users INSTANCE_ID=users-node
U_PID=$SVC_PID U_ADDR=$SVC_ADDR
start_svc users-slow users INSTANCE_ID=users-slow USERS_DELAY_MS=1000
S_PID=$SVC_PID S_ADDR=$SVC_ADDR
start_svc orders-node orders INSTANCE_ID=orders-node AMQP_URL=
O_PID=$SVC_PID O_ADDR=$SVC_ADDR
expect_grep 'no AMQP_URL: orders are stored but not announced' "$FL_TMP/orders-node.log"
IT_LIMIT=60 run node "$FL_SOURCE_DIR/tests/interop/grpc_node.js" "$FL_SOURCE_DIR/services/proto" shop "$U_ADDR" "$S_ADDR" "$O_ADDR"
cat "$OUT"
count_checks "$OUT"
expect_eq "grpc_node.js shop exit status" "$RC" 0
[ "$RC" -eq 0 ] || show "$ERR"
expect_grep '^all node checks passed$' "$OUT"
stop_pid "$U_PID" users
stop_pid "$S_PID" "users (slow)"
stop_pid "$O_PID" orders
for f in users-node users-slow orders-node; do
    expect_grep '\]: stopped$' "$FL_TMP/$f.log"
    expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/$f.log"
done
it_done

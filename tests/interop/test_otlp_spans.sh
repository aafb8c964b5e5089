# Our spans, as a real OTLP receiver sees them: otlp_receiver.js decodes what the gateway and
# users export (OTLP/HTTP protobuf) with @opentelemetry/otlp-transformer's generated code (the
# committed lock file; `make deps` runs npm ci), and otlp_check.py checks that each request
# curl sends with a traceparent is one trace: gateway SERVER (child of curl's span) → a
# CLIENT span per attempt (a retry carries http.request.resend_count) → users SERVER. One
# users backend is a dead address, so round robin makes some request retry.
# FAULTLINE_BUG=drop-traceparent on the gateway must make the check fail. Then the order
# flow: POST /orders through the gateway, orders and payments on `faultline fake amqp`, each
# order paid; otlp_check.py --orders wants one trace per request across the broker (gateway →
# orders → PRODUCER → payments CONSUMER → PRODUCER → orders CONSUMER). Without node, the
# packages or /usr/bin/python3 it says SKIP and passes.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

D="$FL_SOURCE_DIR/tests/interop"
NODE_MODULES="$D/node_modules"
command -v node >/dev/null 2>&1 || skip "node is not installed: no OTLP receiver"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is missing: no span checker"
[ -f "$NODE_MODULES/@opentelemetry/otlp-transformer/build/src/generated/root.js" ] ||
    skip "$NODE_MODULES/@opentelemetry/otlp-transformer is missing (make deps runs npm ci in tests/interop)"
expect_grep '"version": "0\.52\.1"' "$NODE_MODULES/@opentelemetry/otlp-transformer/package.json"

REQUESTS=6

# hexid BYTES: BYTES random bytes in lowercase hex.
hexid() {
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# start_svc NAME LOG VAR=VALUE...: a shop service on 127.0.0.1 (a free port) exporting to
# the receiver; sets SVC_PID and SVC_ADDR once it listens.
start_svc() {
    _bin=$1 _log=$2
    shift 2
    env PORT=0 CONSUL_HTTP_ADDR= OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$RECV_PORT" \
        OTEL_BSP_SCHEDULE_DELAY=100 "$@" "$FL_BIN_DIR/$_bin" >"$_log" 2>&1 &
    SVC_PID=$!
    it_track "$SVC_PID"
    if ! wait_until 5 grep -q 'listening on' "$_log"; then
        fail "$_bin did not start"
        show "$_log"
        it_done
    fi
    SVC_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$_log")
}

# start_receiver TAG: otlp_receiver.js writing $W/spans.jsonl; RECV_PID, RECV_PORT.
start_receiver() {
    node "$D/otlp_receiver.js" "$W/spans.jsonl" >"$W/receiver.out" 2>"$W/receiver.err" &
    RECV_PID=$!
    it_track "$RECV_PID"
    if ! wait_until 5 grep -qs '^listening on [0-9]*$' "$W/receiver.out"; then
        fail "$1: the OTLP receiver did not start"
        show "$W/receiver.err"
        it_done
    fi
    RECV_PORT=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$W/receiver.out")
}

# shop_run TAG BUGS: the receiver, users ×2 and the gateway (FAULTLINE_BUG=BUGS), REQUESTS
# POST /users through the gateway, everything stopped; then otlp_check.py, its output in
# $FL_TMP/TAG/check.out and its exit status in CHECK_RC.
shop_run() {
    W="$FL_TMP/$1"
    mkdir -p "$W"
    start_receiver "$1"

    start_svc users "$W/users-1.log" SERVICE_NAME=users INSTANCE_ID=users-1 OTEL_SERVICE_NAME=users
    U1_PID=$SVC_PID U1=$SVC_ADDR
    start_svc users "$W/users-2.log" SERVICE_NAME=users INSTANCE_ID=users-2 OTEL_SERVICE_NAME=users
    U2_PID=$SVC_PID U2=$SVC_ADDR
    DEAD="127.0.0.1:$(spare_port)"
    start_svc gateway "$W/gateway.log" SERVICE_NAME=gateway INSTANCE_ID=gateway-1 \
        OTEL_SERVICE_NAME=gateway USERS_ADDR="$DEAD,$U1,$U2" FAULTLINE_BUG="$2"
    GW_PID=$SVC_PID GW=$SVC_ADDR
    ok "$1: receiver on $RECV_PORT, users on $U1 and $U2, gateway on $GW (users: $DEAD $U1 $U2)"

    : >"$W/requests"
    _i=1 _created=0
    while [ "$_i" -le "$REQUESTS" ]; do
        _trace=$(hexid 16) _span=$(hexid 8)
        _code=$(curl -s -o "$W/body" -w '%{http_code}' --max-time 5 \
            -H "traceparent: 00-$_trace-$_span-01" -H 'Content-Type: application/json' \
            -d "{\"name\":\"user $_i\",\"email\":\"u$_i@example.com\"}" "http://$GW/users")
        [ "$_code" = 201 ] && _created=$((_created + 1))
        echo "$_trace $_span" >>"$W/requests"
        _i=$((_i + 1))
    done
    expect_eq "$1: POST /users answered 201" "$_created" "$REQUESTS"
    # the receiver really decodes: bytes that are not an ExportTraceServiceRequest get 400
    _code=$(printf 'not protobuf' | curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        -H 'Content-Type: application/x-protobuf' --data-binary @- "http://127.0.0.1:$RECV_PORT/v1/traces")
    expect_eq "$1: the receiver answers garbage with" "$_code" 400
    expect_grep 'attempts=2' "$W/gateway.log"

    # the tracers flush on SIGTERM; the receiver goes last
    stop_pid "$GW_PID" "$1: gateway"
    stop_pid "$U1_PID" "$1: users-1"
    stop_pid "$U2_PID" "$1: users-2"
    for _l in "$W/gateway.log" "$W/users-1.log" "$W/users-2.log"; do
        expect_no_grep 'Sanitizer|runtime error|handles left|otel:' "$_l"
    done
    stop_pid "$RECV_PID" "$1: the OTLP receiver"
    expect_eq "$1: requests the receiver rejected" "$(grep -c '^rejected' "$W/receiver.err")" 1
    expect_grep '^rejected: cannot decode' "$W/receiver.err"
    expect_grep '^accepted [1-9][0-9]* spans' "$W/receiver.err"

    /usr/bin/python3 "$D/otlp_check.py" "$W/spans.jsonl" "$W/requests" "$DEAD" >"$W/check.out" 2>&1
    CHECK_RC=$?
}

shop_run good ""
cat "$FL_TMP/good/check.out"
count_checks "$FL_TMP/good/check.out"
expect_eq "otlp_check.py exit status" "$CHECK_RC" 0

# The mutant: the gateway starts a new trace for its calls, so the users spans (and the
# CLIENT spans) are not in the request's trace, and the check must say so.
shop_run drop-traceparent drop-traceparent
expect_eq "drop-traceparent: otlp_check.py fails" "$CHECK_RC" 1
expect_grep '^FAIL: every span belongs to a request.s trace' "$FL_TMP/drop-traceparent/check.out"
expect_grep '^FAIL: trace [0-9a-f]*: one users SERVER span' "$FL_TMP/drop-traceparent/check.out"
[ "$CHECK_RC" -eq 1 ] || show "$FL_TMP/drop-traceparent/check.out" 80

# The order flow across the broker.
ORDERS=3
W="$FL_TMP/orders"
mkdir -p "$W"
start_receiver orders
"$FL" fake amqp --listen 127.0.0.1:0 >"$W/amqp.out" 2>"$W/amqp.err" &
AMQP_PID=$!
it_track "$AMQP_PID"
wait_until 5 grep -qs '^amqp://' "$W/amqp.out" || fail "the fake broker did not start: $(cat "$W/amqp.err")"
AMQP_URL="amqp://guest:guest@$(sed -n 's|^amqp://||p' "$W/amqp.out")"
start_svc orders "$W/orders.log" SERVICE_NAME=orders INSTANCE_ID=orders-1 OTEL_SERVICE_NAME=orders \
    AMQP_URL="$AMQP_URL" ORDERS_DB="$W/orders.db"
O_PID=$SVC_PID O=$SVC_ADDR
start_svc payments "$W/payments.log" SERVICE_NAME=payments INSTANCE_ID=payments-1 \
    OTEL_SERVICE_NAME=payments AMQP_URL="$AMQP_URL" PAYMENTS_DB="$W/payments.db" PAYMENTS_CHARGE_MS=10
P_PID=$SVC_PID
start_svc gateway "$W/gateway.log" SERVICE_NAME=gateway INSTANCE_ID=gateway-1 \
    OTEL_SERVICE_NAME=gateway ORDERS_ADDR="$O" USERS_ADDR="127.0.0.1:$(spare_port)"
GW_PID=$SVC_PID GW=$SVC_ADDR
for _s in orders payments; do
    wait_until 5 grep -q 'connected to the broker' "$W/$_s.log" || fail "$_s did not connect to the fake broker"
done
: >"$W/requests"
: >"$W/ids"
_i=1
while [ "$_i" -le "$ORDERS" ]; do
    _trace=$(hexid 16) _span=$(hexid 8)
    _code=$(curl -s -o "$W/body" -w '%{http_code}' --max-time 5 \
        -H "traceparent: 00-$_trace-$_span-01" -H 'Content-Type: application/json' \
        -d "{\"user_id\":\"u$_i\",\"item\":\"book\",\"amount\":$((100 + _i))}" "http://$GW/orders")
    expect_eq "orders: POST /orders $_i answered" "$_code" 201
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$W/body" >>"$W/ids"
    echo "$_trace $_span" >>"$W/requests"
    _i=$((_i + 1))
done
# all_paid: GET /orders/{id} says "paid" for every order
all_paid() {
    while read -r _id; do
        curl -s --max-time 2 "http://$GW/orders/$_id" | grep -q '"status":"paid"' || return 1
    done <"$W/ids"
}
if wait_until 10 all_paid; then ok "orders: all $ORDERS orders paid"; else fail "orders: not every order was paid"; fi
stop_pid "$GW_PID" "orders: gateway"
stop_pid "$O_PID" "orders: orders"
stop_pid "$P_PID" "orders: payments"
stop_pid "$AMQP_PID" "orders: the fake broker"
for _l in "$W/gateway.log" "$W/orders.log" "$W/payments.log"; do
    expect_no_grep 'Sanitizer|runtime error|handles left|otel:' "$_l"
done
stop_pid "$RECV_PID" "orders: the OTLP receiver"
/usr/bin/python3 "$D/otlp_check.py" --orders "$W/spans.jsonl" "$W/requests" >"$W/check.out" 2>&1
CHECK_RC=$?
cat "$W/check.out"
count_checks "$W/check.out"
expect_eq "otlp_check.py --orders exit status" "$CHECK_RC" 0
it_done

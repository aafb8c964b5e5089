# The seed's own Go greeter server and client (tests/interop/go, built by go/build.sh against
# Debian's grpc-go 1.33 in GOPATH mode, stubs from `protoc --go_out=plugins=grpc`) with ours,
# both ways: the Go client against our greeter (greeting, statuses with percent-encoded
# messages, trailers, deadlines, health, unknown methods, 3 MB and the 4 MiB limits), and
# our greeter-client against the Go server (the same, plus 1000 calls with 100 in flight on
# one connection, and UNAVAILABLE after the Go server's graceful stop). Without go, protoc,
# protoc-gen-go or the Debian Go packages: SKIP.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

GOBIN="$FL_TMP/go"
mkdir -p "$GOBIN"
# the Go build cache outlives the scratch dir, so a second run builds in a second or two
IT_LIMIT=240 run sh "$FL_SOURCE_DIR/tests/interop/go/build.sh" "$GOBIN" "$FL_BIN_DIR/../go-cache"
[ "$RC" -eq 3 ] && skip "$(cat "$ERR")"
expect_eq "building the seed's Go greeter" "$RC" 0
if [ "$RC" -ne 0 ]; then
    show "$ERR"
    it_done
fi
GC="$FL_BIN_DIR/greeter-client"
GOC="$GOBIN/greeter-client-go"

# --- the seed's Go client -> our greeter
env PORT=0 INSTANCE_ID=greeter-go "$FL_BIN_DIR/greeter" >"$FL_TMP/greeter.log" 2>&1 &
G_PID=$!
it_track "$G_PID"
wait_until 5 grep -q 'listening on' "$FL_TMP/greeter.log" || fail "greeter did not start"
G_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/greeter.log")

# goc WANT_EXIT ARGS...: the Go client against our greeter
goc() {
    _want=$1
    shift
    run "$GOC" -addr "$G_ADDR" "$@"
    expect_eq "Go client $* exit status" "$RC" "$_want"
    [ "$RC" -eq "$_want" ] || { show "$OUT"; show "$ERR"; }
}
goc 0
expect_grep '^Greeting: Hello World$' "$OUT"
goc 0 -name 'Ünïcode ☃' -meta x-echo=g1
expect_grep '^Greeting: Hello Ünïcode ☃$' "$OUT"
expect_grep '^header x-echo=g1$' "$OUT"
expect_grep '^trailer x-echo-trailer=g1$' "$OUT"
goc 1 -meta x-fail-code=NOT_FOUND -meta 'x-fail-message=nope: 100%25 %F0%9F%98%80'
expect_grep '^error: code=NotFound desc=nope: 100% 😀$' "$OUT"
goc 1 -meta x-fail-code=UNAVAILABLE
expect_grep '^error: code=Unavailable desc=$' "$OUT"
t0=$(now_ms)
goc 1 -timeout 200ms -meta x-delay-ms=3000
t1=$(now_ms)
expect_grep '^error: code=DeadlineExceeded ' "$OUT"
if [ $((t1 - t0)) -lt 2000 ]; then ok "the deadline ended the call ($((t1 - t0)) ms with the process)"; else fail "the deadline call took $((t1 - t0)) ms"; fi
wait_until 3 grep -q 'delayed answer dropped' "$FL_TMP/greeter.log"
# the Go client may exit before its RST_STREAM leaves: the connection's end cancels then
expect_grep 'delayed answer dropped: (DEADLINE_EXCEEDED|CANCELLED|UNAVAILABLE)$' "$FL_TMP/greeter.log"
goc 0 -health ''
expect_grep '^health: SERVING$' "$OUT"
goc 0 -health hello.Greeter
expect_grep '^health: SERVING$' "$OUT"
goc 1 -health no.Such
expect_grep '^error: code=NotFound desc=unknown service no.Such$' "$OUT"
goc 1 -method /hello.Greeter/Nope
expect_grep '^error: code=Unimplemented desc=unknown method Nope for service hello.Greeter$' "$OUT"
goc 0 -name-size 3000000 -timeout 10s
expect_grep '^Greeting: Hello xxxxxxxxxxxxxx\.\.\. \(3000006 bytes\)$' "$OUT"
goc 1 -name-size 4194305 -timeout 10s
expect_grep '^error: code=ResourceExhausted desc=grpc: received message larger than max \(4194310 vs\. 4194304\)$' "$OUT"
goc 1 -name-size 4194295 -timeout 10s
expect_grep '^error: code=ResourceExhausted desc=grpc: trying to send message larger than max \(4194306 vs\. 4194304\)$' "$OUT"
goc 0 -n 200
expect_eq "200 greetings in a row" "$(grep -c '^Greeting: Hello World$' "$OUT")" 200
stop_pid "$G_PID" greeter
expect_no_grep 'Sanitizer|runtime error|handles left' "$FL_TMP/greeter.log"

# --- our greeter-client -> the seed's Go server
env GREETER_TEST_HOOKS=1 "$GOBIN/greeter-server-go" -listen 127.0.0.1:0 -log >"$FL_TMP/goserver.log" 2>&1 &
S_PID=$!
it_track "$S_PID"
wait_until 10 grep -q 'listening on' "$FL_TMP/goserver.log" || {
    fail "the Go server did not start"
    show "$FL_TMP/goserver.log"
    it_done
}
S_ADDR=$(sed -n 's/.*gRPC server listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/goserver.log")

call() {
    run "$GC" "$@" "$S_ADDR"
    expect_eq "greeter-client $* exit status" "$RC" 0
    [ "$RC" -eq 0 ] || show "$OUT"
}
call
expect_grep "^call 1: OK 'Hello World'" "$OUT"
call --name 'Ünïcode ☃' --meta x-echo=g2
expect_grep "^call 1: OK 'Hello Ünïcode ☃' meta\[x-echo\]=g2 meta\[x-echo-trailer\]=g2 " "$OUT"
call --meta x-fail-code=ABORTED --meta 'x-fail-message=nope: 100%25 %C3%A9' --expect ABORTED
expect_grep '^call 1: ABORTED: nope: 100% é ' "$OUT"
call --timeout 150ms --meta x-delay-ms=3000 --expect DEADLINE_EXCEEDED
expect_grep '^call 1: DEADLINE_EXCEEDED: ' "$OUT"
call --method /hello.Greeter/Nope --expect UNIMPLEMENTED
expect_grep '^call 1: UNIMPLEMENTED: unknown method Nope for service hello.Greeter ' "$OUT"
call --health '' --expect UNIMPLEMENTED
expect_grep '^call 1: UNIMPLEMENTED: unknown service grpc.health.v1.Health ' "$OUT"
call -q --name-size 3000000 --timeout 10s
expect_grep '^summary: calls=1 OK=1 ' "$OUT"
call --name-size 4194305 --max-send 8000000 --timeout 10s --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: received message larger than max \(4194310 vs\. 4194304\)' "$OUT"
call --name-size 2000000 --max-recv 1000000 --timeout 10s --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: received message larger than max \(2000010 vs\. 1000000\)' "$OUT"
call -q -n 1000 -c 100 --timeout 10s
expect_grep '^summary: calls=1000 OK=1000 connections=1 max_inflight=100$' "$OUT"
# the Go server's graceful stop (GOAWAY) with calls in flight: they finish, later ones fail.
# A call every 300 ms, each answered 1.5 s later: the stop once the server holds three.
l0=$(wc -l <"$FL_TMP/goserver.log")
"$GC" -n 5 --interval-ms 300 --timeout 5s --meta x-delay-ms=1500 "$S_ADDR" >"$FL_TMP/goaway.out" 2>&1 &
CP=$!
it_track "$CP"
held() { [ "$(tail -n +$((l0 + 1)) "$FL_TMP/goserver.log" | grep -c 'Received: World$')" -ge 3 ]; }
wait_until 10 held || fail "the Go server never held 3 delayed calls"
stop_pid "$S_PID" "the Go server"
if wait_until 10 exited "$CP"; then wait "$CP"; else fail "greeter-client hangs"; fi
cat "$FL_TMP/goaway.out"
taken=$(tail -n +$((l0 + 1)) "$FL_TMP/goserver.log" | grep -c 'Received: World$')
okn=$(grep -c "^call [1-5]: OK 'Hello World' (1[5-9][0-9][0-9]\.[0-9] ms)$" "$FL_TMP/goaway.out")
unav=$(grep -c "^call [2-5]: UNAVAILABLE: failed to connect to $S_ADDR: connection refused" "$FL_TMP/goaway.out")
expect_eq "every call the Go server took ($taken) was answered after its 1.5 s" "$okn" "$taken"
expect_eq "the 5 calls: answered + refused" "$((okn + unav))" 5
if [ "$taken" -ge 3 ] && [ "$unav" -ge 1 ]; then
    ok "$taken calls answered during the Go server's drain, $unav refused on a new connection"
else
    fail "$taken calls answered, $unav refused: want >= 3 and >= 1"
fi
expect_grep '^summary: calls=5 OK=[0-9] UNAVAILABLE=[0-9] connections=1 ' "$FL_TMP/goaway.out"
call --expect UNAVAILABLE
expect_grep "^call 1: UNAVAILABLE: failed to connect to $S_ADDR: connection refused" "$OUT"
it_done

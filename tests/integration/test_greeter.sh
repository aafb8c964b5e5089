# services/greeter and services/runtime through real processes: greeter-client (our gRPC
# client) against greeter (our server), plus nghttp and curl speaking HTTP/2 by hand where a
# check needs bytes our client would never send. Statuses, health, deadlines on both sides
# (and FAULTLINE_BUG=ignore-deadline), size limits both ways, many calls on one connection,
# malformed requests, a refused connection, and GOAWAY + exit 0 on SIGTERM.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

GC="$FL_BIN_DIR/greeter-client"

# start_greeter NAME VAR=VALUE...: a greeter on 127.0.0.1 (free port); G_PID, G_ADDR, G_LOG.
start_greeter() {
    G_LOG="$FL_TMP/$1.log"
    shift
    env SERVICE_NAME=greeter INSTANCE_ID=greeter-1 BIND=127.0.0.1 PORT=0 "$@" \
        "$FL_BIN_DIR/greeter" >"$G_LOG" 2>&1 &
    G_PID=$!
    it_track "$G_PID"
    if ! wait_until 5 grep -q 'listening on' "$G_LOG"; then
        fail "greeter did not start"
        show "$G_LOG"
        it_done
    fi
    G_ADDR=$(sed -n 's/^greeter\[greeter-1\]: listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$G_LOG")
}

# call ARGS...: greeter-client against the greeter; output in $OUT, status in $RC.
call() {
    run "$GC" "$@" "$G_ADDR"
    if grep -Eq 'Sanitizer|runtime error' "$ERR"; then
        fail "greeter-client $*: $(head -n 3 "$ERR")"
    fi
}

# h2 FILE HEADER...: one request by nghttp with FILE as body; its frames in $OUT.
h2() {
    _body=$1
    shift
    _args=""
    for _h in "$@"; do _args="$_args -H '$_h'"; done
    eval "run nghttp -v -d '$_body' $_args http://$G_ADDR/hello.Greeter/SayHello"
}

# expect_deadline_ms MS: the call in $OUT ended MS to 3*MS+500 ms after it started.
expect_deadline_ms() {
    _ms=$(sed -n 's/^call 1: .*(\([0-9]*\)\.[0-9] ms)$/\1/p' "$OUT")
    if [ -n "$_ms" ] && [ "$_ms" -ge "$1" ] && [ "$_ms" -lt $(($1 * 3 + 500)) ]; then
        ok "the call ended after $_ms ms (deadline $1 ms)"
    else
        fail "the call ended after '$_ms' ms (deadline $1 ms)"
        show "$OUT"
    fi
}

start_greeter greeter
expect_grep '^greeter\[greeter-1\]: listening on 127\.0\.0\.1:[0-9]+$' "$G_LOG"

# the seed's call
call
expect_eq "SayHello exit" "$RC" 0
expect_grep "^call 1: OK 'Hello World'" "$OUT"
call --name 'Ünïcode ☃'
expect_grep "^call 1: OK 'Hello Ünïcode ☃'" "$OUT"

# health
call --health ''
expect_grep '^call 1: OK status=1 ' "$OUT"
call --health hello.Greeter
expect_grep '^call 1: OK status=1 ' "$OUT"
call --health no.Such --expect NOT_FOUND
expect_grep '^call 1: NOT_FOUND: unknown service no.Such' "$OUT"

# unknown methods and services
call --method /hello.Greeter/SayGoodbye --expect UNIMPLEMENTED
expect_grep '^call 1: UNIMPLEMENTED: unknown method SayGoodbye for service hello.Greeter' "$OUT"
call --method /no.Service/X --expect UNIMPLEMENTED
expect_grep '^call 1: UNIMPLEMENTED: unknown service no.Service' "$OUT"

# statuses, messages (percent-encoded on the wire) and metadata both ways
call --meta x-fail-code=PERMISSION_DENIED --meta 'x-fail-message=nope: 100% 😀' \
    --meta x-echo=e1 --expect PERMISSION_DENIED
expect_grep '^call 1: PERMISSION_DENIED: nope: 100% 😀 meta\[x-echo\]=e1 meta\[x-echo-trailer\]=e1 ' "$OUT"
call --meta x-echo=e2
expect_grep "^call 1: OK 'Hello World' meta\[x-echo\]=e2 meta\[x-echo-trailer\]=e2 " "$OUT"
printf '\000\000\000\000\007\012\005World' >"$FL_TMP/hello.bin"
h2 "$FL_TMP/hello.bin" 'content-type: application/grpc' 'te: trailers' 'x-fail-code: 5' \
    'x-fail-message: a%b é'
expect_fgrep 'grpc-message: a%25b %C3%A9' "$OUT"
expect_fgrep 'grpc-status: 5' "$OUT"

# many calls at once, all on one connection
call -q -n 2000 -c 200
expect_grep '^summary: calls=2000 OK=2000 connections=1 max_inflight=200$' "$OUT"
t0=$(now_ms)
call -q -n 100 -c 100 --meta x-delay-ms=300
t1=$(now_ms)
expect_grep '^summary: calls=100 OK=100 connections=1 max_inflight=100$' "$OUT"
if [ $((t1 - t0)) -lt 2500 ]; then
    ok "100 calls delayed 300 ms each took $((t1 - t0)) ms: concurrent on one connection"
else
    fail "100 calls delayed 300 ms each took $((t1 - t0)) ms: not concurrent"
fi

# deadlines: both sides enforce them (whichever fires first: the client's timer, or the
# server's answer to grpc-timeout), never early...
call --timeout 150ms --meta x-delay-ms=2000 --expect DEADLINE_EXCEEDED
expect_grep '^call 1: DEADLINE_EXCEEDED: deadline exceeded' "$OUT"
expect_deadline_ms 150
# ... and the server's, seen by a client (nghttp) that does not enforce it itself
h2 "$FL_TMP/hello.bin" 'content-type: application/grpc' 'te: trailers' 'grpc-timeout: 100m' \
    'x-delay-ms: 1500'
expect_fgrep 'grpc-status: 4' "$OUT"
expect_fgrep 'grpc-message: deadline exceeded' "$OUT"
expect_grep 'deadline exceeded: /hello.Greeter/SayHello from 127\.0\.0\.1:[0-9]+ after 100ms$' "$G_LOG"
expect_grep 'delayed answer dropped: DEADLINE_EXCEEDED$' "$G_LOG"
h2 "$FL_TMP/hello.bin" 'content-type: application/grpc' 'te: trailers' 'grpc-timeout: 1x'
expect_fgrep 'grpc-status: 13' "$OUT"

# message size limits (4 MiB by default) on both sides
call -q --name-size 3000000
expect_grep '^summary: calls=1 OK=1 ' "$OUT"
call --name-size 4194305 --max-send 8000000 --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: received message larger than max \(4194310 vs\. 4194304\)' "$OUT"
call --name-size 4194300 --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: trying to send message larger than max \(4194305 vs\. 4194304\)' "$OUT"
expect_grep 'connections=0 ' "$OUT"
call --name-size 4194290
expect_grep "^call 1: OK 'Hello xxxxxxxx" "$OUT"
call --name-size 1000000 --max-recv 1000000 --expect RESOURCE_EXHAUSTED
expect_grep '^call 1: RESOURCE_EXHAUSTED: grpc: received message larger than max \(1000010 vs\. 1000000\)' "$OUT"
call --name-size 999990 --max-recv 1000000
expect_grep "^call 1: OK 'Hello xxxxxxxx" "$OUT"
# the greeter answered everything above and is still fine
call
expect_grep "^call 1: OK 'Hello World'" "$OUT"

# malformed requests
printf '\001\000\000\000\007\012\005World' >"$FL_TMP/compressed.bin"
h2 "$FL_TMP/compressed.bin" 'content-type: application/grpc' 'te: trailers'
expect_fgrep 'grpc-status: 13' "$OUT"
h2 "$FL_TMP/compressed.bin" 'content-type: application/grpc' 'te: trailers' 'grpc-encoding: gzip'
expect_fgrep 'grpc-status: 12' "$OUT"
expect_fgrep 'grpc-accept-encoding: identity' "$OUT"
printf '\002\000\000\000\007\012\005World' >"$FL_TMP/badflag.bin"
h2 "$FL_TMP/badflag.bin" 'content-type: application/grpc' 'te: trailers'
expect_fgrep 'grpc-status: 13' "$OUT"
cat "$FL_TMP/hello.bin" "$FL_TMP/hello.bin" >"$FL_TMP/two.bin"
h2 "$FL_TMP/two.bin" 'content-type: application/grpc' 'te: trailers'
expect_fgrep 'grpc-status: 12' "$OUT"
printf '\000\000\000\000\011\012\005World' >"$FL_TMP/short.bin"
h2 "$FL_TMP/short.bin" 'content-type: application/grpc' 'te: trailers'
expect_fgrep 'grpc-status: 13' "$OUT"
printf '\000\000\000\000\003\377\377\377' >"$FL_TMP/garbage.bin"
h2 "$FL_TMP/garbage.bin" 'content-type: application/grpc' 'te: trailers'
expect_fgrep 'grpc-status: 13' "$OUT"
run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --http2-prior-knowledge -X POST \
    -H 'content-type: text/plain' --data-binary "@$FL_TMP/hello.bin" "http://$G_ADDR/hello.Greeter/SayHello"
expect_eq "HTTP status for content-type text/plain" "$(cat "$OUT")" 415
run curl -s -o /dev/null -w '%{http_code}' --max-time 5 --http2-prior-knowledge "http://$G_ADDR/hello.Greeter/SayHello"
expect_eq "HTTP status for a GET" "$(cat "$OUT")" 405
run curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$G_ADDR/"
expect_ne "HTTP/1.1 to the gRPC port gets no answer (status)" "$(cat "$OUT")" 200
call
expect_grep "^call 1: OK 'Hello World'" "$OUT"

# SIGTERM: GOAWAY; the calls in flight finish; later ones find no server; exit 0. A call
# every 300 ms, each answered 1.5 s later: SIGTERM once the greeter holds three.
l0=$(wc -l <"$G_LOG")
"$GC" -n 6 --interval-ms 300 --timeout 5s --meta x-delay-ms=1500 "$G_ADDR" >"$FL_TMP/goaway.out" 2>&1 &
CP=$!
it_track "$CP"
held() { [ "$(tail -n +$((l0 + 1)) "$G_LOG" | grep -c 'delaying the answer to')" -ge 3 ]; }
wait_until 10 held || fail "the greeter never held 3 delayed calls"
kill -TERM "$G_PID"
if wait_until 15 exited "$CP"; then wait "$CP"; else fail "greeter-client hangs"; fi
# the greeter exits on its own once drained: no second SIGTERM (one that lands after its signal
# handler is gone, e.g. during ASan's exit-time leak scan, would end it with status 143)
if wait_until 10 exited "$G_PID"; then
    wait "$G_PID"
    expect_eq "greeter: exit status after SIGTERM" "$?" 0
else
    fail "greeter still runs 10s after SIGTERM and its drain"
    kill -KILL "$G_PID" 2>/dev/null
    wait "$G_PID"
fi
cat "$FL_TMP/goaway.out"
tail -n +$((l0 + 1)) "$G_LOG" >"$FL_TMP/drain.log"
taken=$(grep -c 'delaying the answer to' "$FL_TMP/drain.log")
# libuv's timers count whole milliseconds of a loop time truncated to the millisecond, so a
# 1500 ms delay can end up to 1 ms early by the client's clock (seen: 1499.8 ms)
okn=$(grep -c "^call [1-6]: OK 'Hello World' (1\(499\|[5-9][0-9][0-9]\)\.[0-9] ms)$" "$FL_TMP/goaway.out")
unav=$(grep -c "^call [2-6]: UNAVAILABLE: failed to connect to $G_ADDR: connection refused" "$FL_TMP/goaway.out")
expect_eq "every call the greeter took ($taken) was answered after its 1.5 s" "$okn" "$taken"
expect_eq "the 6 calls: answered + refused" "$((okn + unav))" 6
if [ "$taken" -ge 3 ] && [ "$unav" -ge 1 ]; then
    ok "$taken calls answered during the drain, $unav refused on a new connection"
else
    fail "$taken calls answered, $unav refused: want >= 3 and >= 1"
fi
expect_grep '^summary: calls=6 OK=[0-9] UNAVAILABLE=[0-9] connections=1 ' "$FL_TMP/goaway.out"
expect_grep '^greeter\[greeter-1\]: stopping on SIGTERM$' "$G_LOG"
expect_grep "^greeter\[greeter-1\]: GOAWAY to 127\.0\.0\.1:[0-9]+ \(last stream [0-9]+, [1-6] calls in flight\)$" "$FL_TMP/drain.log"
expect_no_grep 'delayed answer dropped' "$FL_TMP/drain.log"
expect_grep '^greeter\[greeter-1\]: stopped$' "$G_LOG"
expect_no_grep 'Sanitizer|runtime error|handles left' "$G_LOG"

# a refused connection is UNAVAILABLE
call --expect UNAVAILABLE
expect_grep "^call 1: UNAVAILABLE: failed to connect to $G_ADDR: connection refused" "$OUT"

# FAULTLINE_BUG=ignore-deadline: the server no longer enforces grpc-timeout...
start_greeter buggy FAULTLINE_BUG=ignore-deadline
expect_grep 'FAULTLINE_BUG=ignore-deadline: grpc-timeout is not enforced' "$G_LOG"
h2 "$FL_TMP/hello.bin" 'content-type: application/grpc' 'te: trailers' 'grpc-timeout: 100m' \
    'x-delay-ms: 400'
expect_fgrep 'grpc-status: 0' "$OUT"
# ... but our client still does, and its RST_STREAM CANCEL reaches the handler
call --timeout 100ms --meta x-delay-ms=3000 --expect DEADLINE_EXCEEDED
expect_grep '^call 1: DEADLINE_EXCEEDED: deadline exceeded after 100ms ' "$OUT"
expect_deadline_ms 100
wait_until 3 grep -q 'delayed answer dropped: CANCELLED' "$G_LOG"
expect_grep '^greeter\[greeter-1\]: delayed answer dropped: CANCELLED$' "$G_LOG"
stop_pid "$G_PID" "greeter (ignore-deadline)"
expect_no_grep 'Sanitizer|runtime error|handles left' "$G_LOG"

# a bad variable
run env PORT=nope "$FL_BIN_DIR/greeter"
expect_eq "greeter with PORT=nope: exit" "$RC" 2
expect_grep "bad PORT 'nope'" "$ERR"
it_done

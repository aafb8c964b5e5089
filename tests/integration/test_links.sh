# Links and toxics through real clients. First the client itself, services/pinger: bad
# configuration exits 2; it pings round robin, counts on GET /stats and exits 0 on SIGTERM.
# Then scenarios/links/ runs echo-svc servers with pinger and curl clients, adds latency,
# jitter, partitions (two-way, one-way, isolate), reset_peer, refuse, limit_data, bandwidth,
# slicer, slow_close and timeout, and reads the clients' logs to check what each fault did
# and that removing it brings healthy traffic back; every one of those scenarios must pass.
# Last, mistakes in using links must be usage errors (exit 2, "faultline: FILE:LINE: ...").
# Nothing may be left running.
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)

# stop_pid PID WHAT: SIGTERM, then (bounded) its exit status must be 0; SIGKILL if it hangs.
exited() { # gone, or a zombie waiting for this shell's `wait`
    st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$st" ] || [ "$st" = Z ]
}
stop_pid() {
    kill -TERM "$1"
    if wait_until 5 exited "$1"; then
        wait "$1"
        expect_eq "$2: exit status after SIGTERM" "$?" 0
    else
        fail "$2 still runs 5s after SIGTERM"
        kill -KILL "$1"
        wait "$1"
    fi
}

# stats EXPR: EXPR, a Python expression over the /stats answer (as d), printed.
stats() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$FL_TMP/stats.json" "$1" 2>&1
}

# ---- the pinger on its own: bad configuration exits 2 with a message
P="$FL_BIN_DIR/pinger"
expect_exit 2 env -u ECHO_ADDR "$P"
expect_grep '^pinger\[pinger\]: ECHO_ADDR is not set' "$ERR"
expect_exit 2 env ECHO_ADDR=127.0.0.1:1,nowhere "$P"
expect_fgrep "bad target 'nowhere' in ECHO_ADDR" "$ERR"
expect_exit 2 env PINGER_TARGET_VAR=USERS_ADDR ECHO_ADDR=127.0.0.1:1 "$P"
expect_grep '^pinger\[pinger\]: USERS_ADDR is not set' "$ERR"
expect_exit 2 env ECHO_ADDR=127.0.0.1:1 PINGER_INTERVAL_MS=0 "$P"
expect_fgrep "bad PINGER_INTERVAL_MS '0'" "$ERR"
expect_exit 2 env ECHO_ADDR=127.0.0.1:1 PINGER_TIMEOUT_MS=soon "$P"
expect_exit 2 env ECHO_ADDR=127.0.0.1:1 PINGER_KEEPALIVE=2 "$P"
expect_exit 2 env ECHO_ADDR=127.0.0.1:1 PINGER_PATH=no-slash "$P"

# ---- the pinger on its own: pings round robin, counts on GET /stats, exits 0 on SIGTERM
PORT=0 INSTANCE_ID=solo-echo "$FL_BIN_DIR/echo-svc" >"$FL_TMP/echo.log" 2>&1 &
EPID=$!
it_track "$EPID"
wait_until 5 grep -q 'listening on' "$FL_TMP/echo.log" || fail "echo-svc did not start"
EADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$FL_TMP/echo.log")
# port 1 on loopback: nothing listens there, so those pings are refused
PORT=0 ECHO_ADDR="$EADDR,127.0.0.1:1" PINGER_INTERVAL_MS=10 "$P" >"$FL_TMP/pinger.log" 2>&1 &
PPID_=$!
it_track "$PPID_"
wait_until 5 grep -q 'listening on' "$FL_TMP/pinger.log" || fail "the pinger did not start"
PADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\);.*/\1/p' "$FL_TMP/pinger.log")
has_pings() {
    [ "$(grep -c '^ping ' "$FL_TMP/pinger.log")" -ge 6 ]
}
wait_until 5 has_pings || fail "the pinger logs no pings"
expect_grep "^ping seq=1 target=$EADDR result=ok status=200 ms=[0-9]+\.[0-9]{3} bytes=[0-9]+ conn=1 instance=solo-echo$" "$FL_TMP/pinger.log"
expect_grep '^ping seq=2 target=127\.0\.0\.1:1 result=refused status=- ms=[0-9.]+ bytes=- conn=2 instance=- error=ECONNREFUSED$' "$FL_TMP/pinger.log"
curl -s --max-time 5 "http://$PADDR/stats" >"$FL_TMP/stats.json"
expect_eq "stats: instance" "$(stats 'd["instance"]')" pinger
expect_eq "stats: ok pings" "$(stats 'd["results"]["ok"] > 2')" True
expect_eq "stats: per target" "$(stats "d['targets']['$EADDR']['ok'] > 2 and d['targets']['127.0.0.1:1']['refused'] > 2 and d['targets']['127.0.0.1:1']['ok'] == 0")" True
expect_eq "stats: requests add up" "$(stats 'd["requests"] == sum(d["results"].values())')" True
stop_pid "$PPID_" pinger
expect_grep '^pinger\[pinger\]: stopping on SIGTERM$' "$FL_TMP/pinger.log"
stop_pid "$EPID" echo-svc

# ---- latency, jitter, partition, isolate, reset_peer, refuse, limit_data, timeout, slow_close
suite links/basic.lua
# what each fault did is on the timeline, from where it was added to its removal
expect_grep '\[fault\] pinger->echo: latency\{ms=150\} \(links/basic.lua:[0-9]+\)' "$S"
expect_grep '\[fault\] pinger->echo: removed latency\{ms=150\}: applied to [0-9]+ connections, chunks [1-9]' "$S"
expect_grep '\[fault\] pinger <-/-> echo: removed partition: applied to [0-9]+ connections?, chunks [1-9]' "$S"
expect_grep '\[fault\] isolate echo-1: removed partition: ' "$S"
expect_grep '\[fault\] reset_peer_downstream: still on at the end on 2 links: applied to 2 connections, .*resets 2,' "$S"
expect_grep '\[fault\] pinger->echo: removed refuse\{\}: applied to [0-9]+ connections, refused [1-9]' "$S"
expect_grep '\[fault\] pinger->echo: removed limit_data\{bytes=40\}: .*dropped [1-9][0-9]*, closes [1-9]' "$S"
# the faults left on by one scenario are reported with what they did, and gone from the next
expect_grep '\[fault\] latency_both: still on at the end on 1 link: applied to [1-9]' "$S"
expect_grep '\[fault\] timeout_both: still on at the end on 1 link: ' "$S"
# the clients stop cleanly on SIGTERM
expect_grep '\[process\] pinger-1: exited with code 0$' "$S"
expect_no_grep '\[process\] pinger-1: exited with code [1-9]' "$S"
expect_no_grep '\[process\] (pinger|late)-1: .*\(unexpected\)' "$S"
expect_no_marker "$MARK" 3 "after links/basic.lua"

# ---- large answers: bandwidth and slicer
suite links/big.lua
expect_grep '\[fault\] pinger-1->echo-1: removed bandwidth\{kbps=80\}: applied to [0-9]+ connections, chunks [0-9]+, bytes [0-9]{5}' "$S"
expect_no_marker "$MARK" 3 "after links/big.lua"

# ---- faults on open keep-alive connections
suite links/keepalive.lua
expect_no_marker "$MARK" 3 "after links/keepalive.lua"

# ---- one-way partitions, with clients on both sides
suite links/oneway.lua
expect_grep '\[fault\] a -/-> \{b, c\}: one-way partition \(links/oneway.lua:[0-9]+\)' "$S"
expect_grep '\[fault\] \{b, c\} -/-> a: one-way partition \(links/oneway.lua:[0-9]+\)' "$S"
expect_no_marker "$MARK" 3 "after links/oneway.lua"

# ---- usage errors: each tagged line is reported as FILE:LINE with its message; exit 2
U=links-bad/usage.lua
expect_exit 2 env IT_MARK="$MARK" "$FL" run "$U"
grep -n -- '-- @usage ' "$U" | while IFS= read -r hit; do
    line=${hit%%:*}
    want=${hit#*-- @usage }
    if grep -F -- "faultline: $U:$line: " "$ERR" | grep -qF -- "$want"; then
        echo "ok: $U:$line: $want"
    else
        echo "FAIL: stderr lacks 'faultline: $U:$line: ...$want'"
        show "$ERR" 20
    fi
done >"$FL_TMP/usage.checks"
cat "$FL_TMP/usage.checks"
IT_CHECKS=$((IT_CHECKS + $(grep -c '^ok: ' "$FL_TMP/usage.checks")))
n=$(grep -c '^FAIL: ' "$FL_TMP/usage.checks")
IT_CHECKS=$((IT_CHECKS + n))
IT_FAILS=$((IT_FAILS + n))
expect_eq "usage errors on stderr" "$(grep -c '^faultline: ' "$ERR")" "$(grep -c -- '-- @usage ' "$U")"
expect_grep "^✓ $U: a good scenario after them still runs" "$OUT"
expect_no_marker "$MARK" 3 "after $U"

it_done

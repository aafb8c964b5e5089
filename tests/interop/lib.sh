# Shared helpers for the interop tests, sourced by every tests/interop/test_*.sh after the
# integration tests' tests/integration/lib.sh (ok, fail, expect_*, wait_until, it_track,
# it_done...). POSIX sh (dash). What a test starts here is stopped by PID: by the helpers
# below when the test goes well, by it_cleanup (SIGKILL) when it exits early.

# skip WHY: the test cannot run here (a client library is missing); says so and passes.
skip() {
    echo "SKIP: $*"
    exit 0
}

# exited PID: gone, or a zombie waiting for this shell's `wait`.
exited() {
    _st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$_st" ] || [ "$_st" = Z ]
}

# stop_pid PID WHAT: SIGTERM, then (bounded) its exit status must be 0; SIGKILL if it hangs.
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    if wait_until 5 exited "$1"; then
        wait "$1"
        expect_eq "$2: exit status after SIGTERM" "$?" 0
    else
        fail "$2 still runs 5s after SIGTERM"
        kill -KILL "$1" 2>/dev/null
        wait "$1"
    fi
}

# start_fake NODES: a standalone fake Consul with NODES agents on 127.0.0.1 (ports picked by
# the kernel), stdout in $FL_TMP/fake.out, events in $FL_TMP/fake.err. Sets FAKE_PID and
# AGENT1..AGENTn (http://127.0.0.1:PORT) and ADDR1..ADDRn (127.0.0.1:PORT); exits the test
# if the agents do not all print their address within 5 s.
start_fake() {
    "$FL" fake consul --listen 127.0.0.1:0 --nodes "$1" >"$FL_TMP/fake.out" 2>"$FL_TMP/fake.err" &
    FAKE_PID=$!
    it_track "$FAKE_PID"
    _want=$1
    _fake_ready() {
        [ "$(grep -c '^node-[0-9]* http://127\.0\.0\.1:[0-9]*$' "$FL_TMP/fake.out")" -ge "$_want" ]
    }
    if ! wait_until 5 _fake_ready; then
        fail "the fake Consul did not print $_want agent addresses"
        show "$FL_TMP/fake.out"
        show "$FL_TMP/fake.err"
        it_done
    fi
    _i=1
    while [ "$_i" -le "$1" ]; do
        _url=$(sed -n "s|^node-$_i \(http://127\.0\.0\.1:[0-9]*\)$|\1|p" "$FL_TMP/fake.out")
        eval "AGENT$_i=\$_url"
        eval "ADDR$_i=\${_url#http://}"
        _i=$((_i + 1))
    done
    ok "the fake Consul listens: $(tr '\n' ' ' <"$FL_TMP/fake.out")"
}

# stop_fake: SIGTERM, exit 0, and nothing alarming on its stderr.
stop_fake() {
    stop_pid "$FAKE_PID" "the fake Consul"
    expect_no_grep 'Sanitizer|runtime error|ERROR|leak' "$FL_TMP/fake.err"
}

# start_echo NAME VAR=VALUE...: an echo-svc on 127.0.0.1 (a free port) that stays out of
# Consul, with those variables; ECHO_PID and ECHO_ADDR (127.0.0.1:PORT) once it listens.
start_echo() {
    _log="$FL_TMP/$1.log"
    shift
    env PORT=0 ECHO_REGISTER=0 CONSUL_HTTP_ADDR= "$@" "$FL_BIN_DIR/echo-svc" >"$_log" 2>&1 &
    ECHO_PID=$!
    it_track "$ECHO_PID"
    if ! wait_until 5 grep -q 'listening on' "$_log"; then
        fail "echo-svc did not start"
        show "$_log"
        it_done
    fi
    ECHO_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$_log")
}

# count_checks FILE: adds the "ok: " and "FAIL: " lines a client script printed to this
# test's tally (the script's own lines were already shown).
count_checks() {
    _ok=$(grep -c '^ok: ' "$1")
    _bad=$(grep -c '^FAIL: ' "$1")
    IT_CHECKS=$((IT_CHECKS + _ok + _bad))
    IT_FAILS=$((IT_FAILS + _bad))
}

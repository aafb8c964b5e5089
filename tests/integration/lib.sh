# Shared helpers for the integration tests, sourced by every tests/integration/test_*.sh.
# POSIX sh (dash). Each check prints "ok: ..." or "FAIL: ..." with what it saw, and the test
# keeps going so one run shows every broken check; it_done exits 1 if any check failed.
# Every faultline run is bounded by `timeout`, every wait by a deadline, and whatever a test
# started is stopped by PID when it exits (see it_track and it_reap_marker).
#
# Environment (set by ctest, see CMakeLists.txt): FL (the faultline binary), FL_BIN_DIR,
# FL_SOURCE_DIR, FL_TMP (a scratch folder, emptied by it_init).

set -u

: "${FL:?FL must be the faultline binary}"
: "${FL_BIN_DIR:?FL_BIN_DIR must be the bin folder of faultline}"
: "${FL_SOURCE_DIR:?FL_SOURCE_DIR must be the source tree}"
: "${FL_TMP:?FL_TMP must be a scratch folder}"

SCEN="$FL_SOURCE_DIR/tests/integration/scenarios"
IT_LIMIT=${IT_LIMIT:-40} # seconds any single faultline run may take
IT_FAILS=0
IT_CHECKS=0
IT_PIDS=""  # background processes this test started
IT_MARKS="" # env markers whose processes must not outlive the test
OUT=""
ERR=""
RC=0

it_init() {
    rm -rf "$FL_TMP" && mkdir -p "$FL_TMP" || {
        echo "FAIL: cannot create $FL_TMP"
        exit 1
    }
    OUT="$FL_TMP/stdout"
    ERR="$FL_TMP/stderr"
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    # Scenario files are named relative to here, so messages read "verdicts/x.lua:3: ...".
    cd "$SCEN" || exit 1
}

ok() {
    IT_CHECKS=$((IT_CHECKS + 1))
    echo "ok: $*"
}

fail() {
    IT_CHECKS=$((IT_CHECKS + 1))
    IT_FAILS=$((IT_FAILS + 1))
    echo "FAIL: $*"
}

# show FILE [LINES]: the head of a file, indented, for failure messages.
show() {
    if [ -s "$1" ]; then
        echo "  --- $1 (first ${2:-40} lines):"
        head -n "${2:-40}" "$1" | sed 's/^/  | /'
    else
        echo "  --- $1 is empty"
    fi
}

# run CMD...: runs CMD bounded by IT_LIMIT, stdout in $OUT, stderr in $ERR, status in $RC.
run() {
    timeout -k 5 "$IT_LIMIT" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
        echo "NOTE: '$*' was stopped after ${IT_LIMIT}s (status $RC)"
    fi
}

# expect_exit CODE CMD...: runs CMD (see run) and checks its exit status.
expect_exit() {
    _it_want=$1
    shift
    run "$@"
    if [ "$RC" -eq "$_it_want" ]; then
        ok "exit $_it_want: $*"
    else
        fail "expected exit $_it_want, got $RC: $*"
        show "$OUT"
        show "$ERR"
    fi
}

# expect_grep ERE FILE / expect_no_grep ERE FILE: a line of FILE matches (does not match).
expect_grep() {
    if grep -Eq -- "$1" "$2"; then
        ok "$(basename "$2") matches /$1/"
    else
        fail "$(basename "$2") does not match /$1/"
        show "$2"
    fi
}

expect_no_grep() {
    if grep -Eq -- "$1" "$2"; then
        fail "$(basename "$2") matches /$1/ but must not:"
        grep -En -- "$1" "$2" | head -n 10 | sed 's/^/  | /'
    else
        ok "$(basename "$2") does not match /$1/"
    fi
}

# expect_fgrep TEXT FILE / expect_no_fgrep TEXT FILE: the same, for a fixed string.
expect_fgrep() {
    if grep -Fq -- "$1" "$2"; then
        ok "$(basename "$2") contains '$1'"
    else
        fail "$(basename "$2") lacks '$1'"
        show "$2"
    fi
}

expect_no_fgrep() {
    if grep -Fq -- "$1" "$2"; then
        fail "$(basename "$2") contains '$1' but must not:"
        grep -Fn -- "$1" "$2" | head -n 10 | sed 's/^/  | /'
    else
        ok "$(basename "$2") does not contain '$1'"
    fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1 = '$3'"
    else
        fail "$1: got '$2', want '$3'"
    fi
}

# expect_ne WHAT A B
expect_ne() {
    if [ "$2" != "$3" ]; then
        ok "$1 differ ('$2' / '$3')"
    else
        fail "$1 are equal ('$2') but must differ"
    fi
}

# summary_of FILE: the run's summary line ("3 scenarios: 2 passed, ...").
summary_of() {
    grep -E '^[0-9]+ scenarios?: ' "$1" | tail -n 1
}

# expect_summary "P passed, F failed, E errors, S skipped" [FILE]
expect_summary() {
    s=$(summary_of "${2:-$OUT}")
    case "$s" in
    *": $1 in "*) ok "summary says $1" ;;
    *)
        fail "summary should say '$1', got '$s'"
        show "${2:-$OUT}" 60
        ;;
    esac
}

# now_ms: wall clock in milliseconds.
now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# wait_until SECONDS CMD...: polls CMD every 0.05s until it succeeds; 1 on timeout.
wait_until() {
    limit=$(($(now_ms) + $1 * 1000))
    shift
    while ! "$@"; do
        [ "$(now_ms)" -ge "$limit" ] && return 1
        sleep 0.05
    done
    return 0
}

# new_mark: a value unique to this test run, for FL_IT_MARK (see marker_pids).
new_mark() {
    m="it$$x$(date +%s%N)"
    IT_MARKS="$IT_MARKS $m"
    echo "$m"
}

# marker_pids MARK: PIDs of live processes whose environment holds FL_IT_MARK=MARK. The
# scenario files copy $IT_MARK (which faultline itself carries) into FL_IT_MARK of their
# services, so only service processes, never the harness, match.
marker_pids() {
    for f in $(grep -lsaF "FL_IT_MARK=$1" /proc/[0-9]*/environ 2>/dev/null); do
        p=${f#/proc/}
        p=${p%/environ}
        [ "$p" = "$$" ] || echo "$p"
    done
}

no_marker_pids() {
    [ -z "$(marker_pids "$1")" ]
}

# describe_pids PID...: one line per process, for failure messages.
describe_pids() {
    for p in "$@"; do
        st=$(sed -n 's/^State:[[:space:]]*//p' "/proc/$p/status" 2>/dev/null)
        cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
        echo "  | pid $p [$st] $cmd"
    done
}

# expect_no_marker MARK SECONDS WHAT: within SECONDS no process carries MARK; if some do,
# they are listed and killed (by PID) so the test leaves nothing behind.
expect_no_marker() {
    if wait_until "$2" no_marker_pids "$1"; then
        ok "$3: no process left"
    else
        left=$(marker_pids "$1")
        fail "$3: processes still running after $2s:"
        # shellcheck disable=SC2086
        describe_pids $left
        it_reap_marker "$1"
    fi
}

# it_reap_marker MARK: SIGKILLs, by PID, every process that carries MARK.
it_reap_marker() {
    for p in $(marker_pids "$1"); do
        kill -CONT "$p" 2>/dev/null
        kill -KILL "$p" 2>/dev/null
    done
}

# it_track PID: a background process to kill (by PID) if the test exits before it ends.
it_track() {
    IT_PIDS="$IT_PIDS $1"
}

it_cleanup() {
    for p in $IT_PIDS; do
        kill -KILL "$p" 2>/dev/null
    done
    for m in $IT_MARKS; do
        it_reap_marker "$m"
    done
}

# it_done: the verdict of the whole test.
it_done() {
    if [ "$IT_FAILS" -gt 0 ]; then
        echo "$IT_FAILS of $IT_CHECKS checks FAILED"
        exit 1
    fi
    echo "all $IT_CHECKS checks passed"
    exit 0
}

# Scenario suites (each test sets MARK=$(new_mark) first; the scenarios tag their processes
# with it).

# suite FILE: runs FILE with --verbose and a fixed seed; every scenario must pass, and nothing
# may report a sanitizer error or handles left open. The output is kept in
# $FL_TMP/<name>.out, named in $S.
suite() {
    t0=$(now_ms)
    expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose --seed 42 "$1"
    S="$FL_TMP/$(basename "$1" .lua).out"
    cp "$OUT" "$S"
    n=$(grep -c '^scenario(' "$1")
    expect_summary "$n passed, 0 failed, 0 errors, 0 skipped" "$S"
    if [ "$RC" -ne 0 ]; then
        grep -E '^✗ ' "$S" | sed 's/^/  failed: /'
        grep -E '\[assert\] FAILED' "$S" | sed 's/^/  /'
    fi
    expect_no_grep 'Sanitizer|runtime error|handles left open' "$S"
    expect_no_grep 'Sanitizer|runtime error|handles left open' "$ERR"
    echo "  ($1 took $(($(now_ms) - t0))ms)"
}

# usage_checks FILE: FILE must exit 2, and stderr must have, for every line of FILE tagged
# "-- @usage TEXT", a "faultline: FILE:LINE: ...TEXT..." line, and no other usage line.
usage_checks() {
    expect_exit 2 env IT_MARK="$MARK" "$FL" run --seed 42 "$1"
    grep -n -- '-- @usage ' "$1" | while IFS= read -r hit; do
        line=${hit%%:*}
        want=${hit#*-- @usage }
        if grep -F -- "faultline: $1:$line: " "$ERR" | grep -qF -- "$want"; then
            echo "ok: $1:$line: $want"
        else
            echo "FAIL: stderr lacks 'faultline: $1:$line: ...$want'"
            show "$ERR" 20
        fi
    done >"$FL_TMP/usage.checks"
    cat "$FL_TMP/usage.checks"
    IT_CHECKS=$((IT_CHECKS + $(grep -c '^ok: ' "$FL_TMP/usage.checks")))
    n=$(grep -c '^FAIL: ' "$FL_TMP/usage.checks")
    IT_CHECKS=$((IT_CHECKS + n))
    IT_FAILS=$((IT_FAILS + n))
    expect_eq "$1: usage errors on stderr" "$(grep -c '^faultline: ' "$ERR")" \
        "$(grep -c -- '-- @usage ' "$1")"
    expect_no_grep 'Sanitizer|runtime error' "$ERR"
}

# The harness is SIGKILLed in the middle of a scenario whose services have children of
# their own, some of them paused: within 5 s nothing the scenario started may be left
# (each instance's shim kills its whole process group when the harness dies).
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
LOG="$FL_TMP/harness.out"
env IT_MARK="$MARK" "$FL" run --verbose orphans.lua >"$LOG" 2>&1 &
HARNESS=$!
it_track "$HARNESS"

# 2 forkers (shim + sh's 3 sleeps each) and 1 echo-svc (shim + service) carry the marker.
count_marked() {
    [ "$(marker_pids "$MARK" | wc -l)" -ge 10 ]
}
ready_to_kill() {
    grep -q 'waiting to be killed' "$LOG" && count_marked
}
if wait_until 15 ready_to_kill; then
    ok "the scenario runs: $(marker_pids "$MARK" | wc -l) processes carry the marker"
else
    fail "the scenario did not get ready within 15s ($(marker_pids "$MARK" | wc -l) marked processes)"
    show "$LOG" 60
fi
expect_grep '\[process\] forker-1: paused \(SIGSTOP\)$' "$LOG"
expect_grep '\[process\] web-1: paused \(SIGSTOP\)$' "$LOG"
stopped=0
for p in $(marker_pids "$MARK"); do
    grep -q '^State:[[:space:]]*T' "/proc/$p/status" 2>/dev/null && stopped=$((stopped + 1))
done
[ "$stopped" -ge 4 ] && ok "$stopped paused processes" || fail "only $stopped paused processes, want 4"

if kill -KILL "$HARNESS" 2>/dev/null; then
    ok "SIGKILLed the harness (pid $HARNESS)"
else
    fail "the harness (pid $HARNESS) was not running any more"
    show "$LOG" 60
fi
wait "$HARNESS" 2>/dev/null
expect_no_marker "$MARK" 5 "after the harness was SIGKILLed"

it_done

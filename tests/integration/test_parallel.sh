# Two runs started at the same moment on the same suite: both pass, each in its own
# 127.X.0.0/16 range with its own ports, and both leave nothing behind.
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
env IT_MARK="$MARK" "$FL" run --verbose parallel.lua >"$FL_TMP/run1" 2>&1 &
P1=$!
env IT_MARK="$MARK" "$FL" run --verbose parallel.lua >"$FL_TMP/run2" 2>&1 &
P2=$!
it_track "$P1"
it_track "$P2"

both_done() {
    ! kill -0 "$P1" 2>/dev/null && ! kill -0 "$P2" 2>/dev/null
}
if wait_until 30 both_done; then
    ok "both runs ended"
else
    fail "the runs did not end within 30s"
fi
wait "$P1"
RC1=$?
wait "$P2"
RC2=$?
expect_eq "exit status of run 1" "$RC1" 0
expect_eq "exit status of run 2" "$RC2" 0
for f in "$FL_TMP/run1" "$FL_TMP/run2"; do
    expect_summary "2 passed, 0 failed, 0 errors, 0 skipped" "$f"
done

range() {
    sed -n 's/^faultline .*addresses \(127\.[0-9]*\.0\.0\/16\).*/\1/p' "$1"
}
R1=$(range "$FL_TMP/run1")
R2=$(range "$FL_TMP/run2")
[ -n "$R1" ] && [ -n "$R2" ] && ok "ranges printed: $R1, $R2" || fail "a run printed no range"
expect_ne "the two runs' address ranges" "$R1" "$R2"

# No address, and no port, is used by both runs.
addrs() {
    sed -n 's/.*\[note\] addr \(127\.[0-9.]*:[0-9]*\) (.*/\1/p' "$1" | sort -u
}
addrs "$FL_TMP/run1" >"$FL_TMP/addrs1"
addrs "$FL_TMP/run2" >"$FL_TMP/addrs2"
expect_eq "instances noted by run 1" "$(wc -l <"$FL_TMP/addrs1" | tr -d ' ')" 10
expect_eq "instances noted by run 2" "$(wc -l <"$FL_TMP/addrs2" | tr -d ' ')" 10
cut -d: -f2 "$FL_TMP/addrs1" | sort -u >"$FL_TMP/ports1"
cut -d: -f2 "$FL_TMP/addrs2" | sort -u >"$FL_TMP/ports2"
common=$(comm -12 "$FL_TMP/ports1" "$FL_TMP/ports2" | tr '\n' ' ')
[ -z "$common" ] && ok "no port used by both runs" || fail "ports used by both runs: $common"
expect_no_marker "$MARK" 2 "after both runs"

it_done

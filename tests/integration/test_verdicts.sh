# Verdicts: pass, t:expect (fails, continues), t:assert (stops), Lua errors (with a
# traceback), timeouts (busy loops and long waits; the run goes on), t:eventually, t:always,
# skip — each reported with its message and file:line.
. "$(dirname "$0")/lib.sh"
it_init

# line_of TAG FILE: the number of the line tagged "-- @TAG".
line_of() {
    grep -n -- "-- @$1\$" "$2" | cut -d: -f1
}

# failure_block NAME FILE: the "Failures:" entry of scenario NAME, up to the next entry.
failure_block() {
    awk -v head="$1 [" 'index($0, head) && /^✗ / {on = 1; print; next}
        on && (/^✗ / || /^[0-9]+ scenarios?: /) {exit}
        on {print}' "$2"
}

B=verdicts/basic.lua
expect_exit 1 "$FL" run --verbose "$B"
cp "$OUT" "$FL_TMP/basic.out"
O="$FL_TMP/basic.out"
expect_summary "4 passed, 5 failed, 1 errors, 1 skipped" "$O"

expect_grep "^✓ $B: passes \(" "$O"
expect_fgrep "passes: reached the end" "$O"

# t:expect: fails the scenario, says what and where, and the scenario goes on
failure_block "$B: expect fails and continues" "$O" >"$FL_TMP/expect"
expect_grep "^✗ $B: expect fails and continues \[fail\]" "$FL_TMP/expect"
expect_grep "^    one equals two \(and 1 more failed expectations\)$" "$FL_TMP/expect"
expect_grep "^    at $B:$(line_of expect "$B")$" "$FL_TMP/expect"
expect_grep "\[note\] expect: still running after the failed expectation \($B:[0-9]+\)" "$O"
expect_grep "\[assert\] FAILED: a second failed expectation" "$O"

# t:assert: stops the scenario at once
failure_block "$B: assert stops the scenario" "$O" >"$FL_TMP/assert"
expect_grep "^    this assertion stops it$" "$FL_TMP/assert"
expect_grep "^    at $B:$(line_of assert "$B")$" "$FL_TMP/assert"
expect_no_fgrep "MUST NOT APPEAR" "$O"

# a Lua error: verdict error, the message with its location, and a traceback
failure_block "$B: lua error" "$O" >"$FL_TMP/error"
expect_grep "^✗ $B: lua error \[error\]" "$FL_TMP/error"
expect_grep "^    $B:$(line_of error "$B"): attempt to index a nil value \(local 'cfg'\)" "$FL_TMP/error"
expect_grep "^    traceback:" "$FL_TMP/error"
expect_grep "$B:$(line_of error "$B"): in " "$FL_TMP/error"
expect_grep "$B:$(line_of caller "$B"): in " "$FL_TMP/error"

# t:eventually
expect_grep "^✓ $B: eventually succeeds \(" "$O"
expect_grep "\[assert\] eventually n reaches 3 \(after " "$O"
failure_block "$B: eventually times out" "$O" >"$FL_TMP/eventually"
expect_grep "^    eventually the sky is green: still not true after 300ms" "$FL_TMP/eventually"
expect_grep "^    at $B:$(line_of eventually "$B")$" "$FL_TMP/eventually"

failure_block "$B: eventually quotes the last error" "$O" >"$FL_TMP/eventually_error"
expect_grep "^    eventually no error: still not true after 100ms \(last error: $B:$(line_of eventually_error "$B"): not yet, sorry\)" "$FL_TMP/eventually_error"

# t:always
expect_grep "^✓ $B: always holds \(" "$O"
expect_grep "\[assert\] always the sky is blue \(held for 200ms, [0-9]+ checks\)" "$O"
failure_block "$B: always breaks" "$O" >"$FL_TMP/always"
expect_grep "^    always the clock stands still: broken after " "$FL_TMP/always"
expect_grep "^    at $B:$(line_of always "$B")$" "$FL_TMP/always"

# skip, and a scenario after failing ones still runs
expect_grep "^- $B: skipped \(" "$O"
expect_no_fgrep "a skipped scenario must not run" "$O"
expect_grep "^✓ $B: runs after the failures \(" "$O"
expect_fgrep "after: the run went on" "$O"

# ---- timeouts: a busy loop (--timeout and scenario{timeout=}) and a long t:sleep
T=verdicts/timeouts.lua
t0=$(now_ms)
expect_exit 1 "$FL" run --timeout 2s "$T"
t1=$(now_ms)
cp "$OUT" "$FL_TMP/timeouts.out"
O="$FL_TMP/timeouts.out"
expect_summary "1 passed, 3 failed, 0 errors, 0 skipped" "$O"
elapsed=$((t1 - t0))
[ "$elapsed" -ge 3400 ] && [ "$elapsed" -lt 8000 ] && ok "timeouts took ${elapsed}ms (2s + 1s + 0.5s)" ||
    fail "timeouts took ${elapsed}ms, expected about 3.5s"
failure_block "$T: busy loop" "$O" >"$FL_TMP/spin"
expect_grep "^    timed out after 2s" "$FL_TMP/spin"
expect_grep "^    at $T:$(line_of spin "$T")$" "$FL_TMP/spin"
failure_block "$T: busy loop with its own timeout" "$O" >"$FL_TMP/spin_opt"
expect_grep "^    timed out after 1s" "$FL_TMP/spin_opt"
expect_grep "^    at $T:$(line_of spin_opt "$T")$" "$FL_TMP/spin_opt"
failure_block "$T: stuck in a long sleep" "$O" >"$FL_TMP/sleep"
expect_grep "^    timed out after 500ms" "$FL_TMP/sleep"
expect_grep "^    at $T:$(line_of sleep "$T")$" "$FL_TMP/sleep"
expect_grep "^✓ $T: runs after the timeouts \(" "$O"
# the scenario's own timeout wins over --timeout, in both directions
expect_exit 1 "$FL" run --timeout 5m --filter 'long sleep' "$T"
expect_fgrep "timed out after 500ms" "$OUT"

# A loop that swallows every error (pcall) must not outlive its timeout either.
IT_LIMIT=6
t0=$(now_ms)
expect_exit 1 "$FL" run --timeout 1s verdicts/pcall_spin.lua
t1=$(now_ms)
IT_LIMIT=40
[ $((t1 - t0)) -lt 5000 ] && ok "pcall busy loop stopped after $((t1 - t0))ms" ||
    fail "pcall busy loop ran for $((t1 - t0))ms despite --timeout 1s"
expect_grep "^✗ verdicts/pcall_spin.lua: busy loop that swallows errors \(" "$OUT"
expect_grep "^✓ verdicts/pcall_spin.lua: runs after the swallowing loop \(" "$OUT"

it_done

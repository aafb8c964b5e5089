# The fake broker in scenarios (scenarios/broker/): real AMQP clients (python3-pika, in
# scenarios/broker/lib/amqp_svc.py) reach it through their own links, as AMQP_URL. Checked,
# through Lua scenarios that must pass: messages flow and t.broker:stats counts them; a
# restart loses no persistent message; a partition from the broker stalls a producer until
# healed; duplicate and drop faults are seen and counted; block/unblock holds publishers. The
# timeline must show the faults and what the broker saw; usage errors are
# "faultline: FILE:LINE: ..." with exit 2; amqp = "none" gives no AMQP_URL and amqp = "amqp://..."
# is handed over as it is; nothing may be left running.
IT_LIMIT=${IT_LIMIT:-150}
. "$(dirname "$0")/lib.sh"
it_init

[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pika' 2>/dev/null ||
    { fail "python3-pika is missing (make deps installs it)"; it_done; }

MARK=$(new_mark)

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

T0=$(now_ms)

# ---- messages, restart, partition, duplicate/drop, block
suite broker/flow.lua
for f in 'restart' 'duplicate deliveries at rate 0\.5' 'drop deliveries at rate 1' \
    'block publishers' 'unblock'; do
    expect_grep "\[fault\] broker: $f \(broker/flow\.lua:[0-9]+\)$" "$S"
done
expect_grep '\[fault\] producer <-/-> broker: partition' "$S"
expect_grep '\[note\] broker: connection 127\.[0-9.]+:[0-9]+ opened \(user guest, vhost /\)$' "$S"
expect_grep '\[note\] broker: queue work declared durable$' "$S"
expect_grep '\[note\] broker: restarted: 1 connection\(s\) closed, transient state lost$' "$S"
expect_grep '\[note\] broker: publishers blocked$' "$S"
expect_no_grep '\[process\] (producer|consumer)-[0-9]: .*\(unexpected\)' "$S"
expect_no_marker "$MARK" 3 "after broker/flow.lua"

# ---- usage errors, and AMQP_URL is the instance's link
usage_checks broker/usage.lua
expect_grep '^✓ broker/usage\.lua: every instance reaches the broker through its own link' "$OUT"
expect_summary "1 passed, 0 failed, 5 errors, 0 skipped"

usage_checks broker/none.lua
expect_grep '^✓ broker/none\.lua: no AMQP_URL without a broker' "$OUT"
expect_summary "1 passed, 0 failed, 3 errors, 0 skipped"

usage_checks broker/real.lua
expect_grep '^✓ broker/real\.lua: every instance gets the real broker' "$OUT"
expect_summary "1 passed, 0 failed, 1 errors, 0 skipped"

expect_exit 2 env IT_MARK="$MARK" "$FL" run broker/bad_amqp.lua
expect_eq "the load error" "$(cat "$ERR")" \
    "faultline: broker/bad_amqp.lua:1: topology amqp must be \"fake\", \"none\" or the amqp:// URL of a real broker, got rabbit"
expect_no_marker "$MARK" 3 "after the broker scenarios"

echo "  (test_broker.sh took $(($(now_ms) - T0))ms)"
it_done

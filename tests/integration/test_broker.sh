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

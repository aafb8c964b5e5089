# The shop through the harness. scenarios/shop/users.lua: users replicas behind the gateway,
# discovered through the fake Consul (gRPC health checks), balanced and retried by the
# runtime, driven by a curl loop. scenarios/shop/orders.lua: orders and payments on the fake
# broker (outbox, confirms, charges once in SQLite, acks after commit) through a broker
# restart, duplicated deliveries and a crashed payments replica. Every scenario must pass on
# the correct services; then each bug switch must make the scenario that exists for it fail:
# FAULTLINE_BUG=no-retry (requests on a reset connection fail), sticky-lb (one replica takes
# everything), ack-before-commit (a crashed payments replica loses payments). Nothing may be
# left running.
IT_LIMIT=${IT_LIMIT:-150}
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
T0=$(now_ms)

suite shop/users.lua
expect_grep '\[note\] users-1: consul: registered service users-1 \(users\) at 127\.[0-9.]+:[0-9]+, 1 check$' "$S"
expect_grep '\[fault\] users-1: crash' "$S"
expect_no_marker "$MARK" 3 "after shop/users.lua"

# bug_catches BUG FILE SCENARIO: with SHOP_BUG=BUG, that scenario of FILE fails (exit 1).
# (--filter takes a Lua pattern: the name's magic characters are escaped.)
bug_catches() {
    _pat=$(printf '%s' "$3" | sed 's/[][^$().%*+?-]/%&/g')
    expect_exit 1 env SHOP_BUG="$1" IT_MARK="$MARK" "$FL" run --seed 42 --filter "$_pat" "$2"
    expect_fgrep "✗ $2: $3" "$OUT"
    expect_no_marker "$MARK" 3 "after the $1 run"
}
bug_catches no-retry shop/users.lua "connections reset on the way to one replica are hidden by retries"
bug_catches sticky-lb shop/users.lua "requests spread over the replicas"

# the order flow: orders, payments, the broker (outbox, confirms, acks after commit)
suite shop/orders.lua
expect_grep '\[fault\] broker: restart' "$S"
expect_grep '\[note\] broker: queue payments\.order-created declared durable$' "$S"
expect_no_marker "$MARK" 3 "after shop/orders.lua"
bug_catches ack-before-commit shop/orders.lua "a payments replica crashing mid-flow loses no payment"

echo "  (test_shop.sh took $(($(now_ms) - T0))ms)"
it_done

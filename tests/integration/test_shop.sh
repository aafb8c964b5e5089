# The shop's users slice through the harness (scenarios/shop/users.lua): users replicas
# behind the gateway, discovered through the fake Consul (gRPC health checks), balanced and
# retried by the runtime, driven by a curl loop. Every scenario must pass on the correct
# services; then each bug switch must make the scenario that exists for it fail:
# FAULTLINE_BUG=no-retry (requests on a reset connection fail), sticky-lb (one replica takes
# everything). Nothing may be left running.
IT_LIMIT=${IT_LIMIT:-120}
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
T0=$(now_ms)

suite shop/users.lua
expect_grep '\[note\] users-1: consul: registered service users-1 \(users\) at 127\.[0-9.]+:[0-9]+, 1 check$' "$S"
expect_grep '\[fault\] users-1: crash' "$S"
expect_no_marker "$MARK" 3 "after shop/users.lua"

# bug_catches BUG SCENARIO: with SHOP_BUG=BUG, that scenario fails (exit 1)
bug_catches() {
    expect_exit 1 env SHOP_BUG="$1" IT_MARK="$MARK" "$FL" run --seed 42 --filter "$2" shop/users.lua
    expect_grep "^✗ shop/users\.lua: $2" "$OUT"
    expect_no_marker "$MARK" 3 "after the $1 run"
}
bug_catches no-retry "connections reset on the way to one replica are hidden by retries"
bug_catches sticky-lb "requests spread over the replicas"

echo "  (test_shop.sh took $(($(now_ms) - T0))ms)"
it_done

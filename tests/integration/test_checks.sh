# The generic checks (harness/checks.c) through the real shop: checks/shop.lua runs three
# users replicas behind the gateway, exporting spans to the collector, under t:load.
# t:distribution / t:expect_balanced, t:expect_traces and t:expect_discovery must pass on the
# correct services, and each must fail, with its evidence, on the mutant it exists for:
# sticky-lb (one replica serves everything), drop-traceparent (the gateway's calls start new
# traces), retry-past-max (twice the policy's attempts) and a retry policy of 5 attempts
# against max_attempts = 3, no-deregister (a stopped replica stays registered); and a frozen Consul must leave a stale view that
# t:expect_discovery reports. checks/usage*.lua: usage errors at the user's line (tracing
# off, a statically wired client, no Consul, bad options). Nothing may be left running.
IT_LIMIT=${IT_LIMIT:-150}
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
T0=$(now_ms)
F=checks/shop.lua
FROZEN="a frozen Consul leaves a stale view (must fail)"

# A filter matching every scenario of F but the one that must fail (Lua patterns have no
# alternation: the names are listed by what they start with).
pattern() {
    printf '%s' "$1" | sed 's/[][^$().%*+?-]/%&/g'
}

# only NAME [ENV...]: runs the scenario NAME of F (with ENV), output in $OUT.
only() {
    _name=$1
    shift
    run env "$@" IT_MARK="$MARK" "$FL" run --verbose --seed 42 --filter "$(pattern "$_name")" "$F"
}

# passes SCENARIO ERE: on the correct services SCENARIO passes, its output matching ERE.
passes() {
    only "$1"
    expect_eq "'$1' exit status" "$RC" 0
    expect_fgrep "✓ $F: $1" "$OUT"
    expect_grep "$2" "$OUT"
    expect_no_grep 'Sanitizer|runtime error|handles left open' "$OUT"
    expect_no_grep 'Sanitizer|runtime error' "$ERR"
}
passes "requests spread evenly over the users replicas" \
    '\[assert\] users balanced within 20%: users-1 [0-9]+, users-2 [0-9]+, users-3 [0-9]+ \(expected [0-9.]+ each; max deviation [0-9.]+% at users-[123]\); window [0-9.]+s to [0-9.]+s \(checks/shop.lua:[0-9]+\)$'
passes "every trace through the gateway is connected" \
    '\[assert\] [0-9]+ traces rooted at gateway are connected and within the attempt limit \(at most [0-9]+ attempts per call\); traces begun [0-9.]+s to [0-9.]+s, judged at [0-9.]+s'
passes "retries are extra CLIENT spans, within max_attempts" \
    '\[assert\] [0-9]+ traces rooted at gateway are connected and within the attempt limit \(at most [23] attempts per call\)'
passes "a crashed replica leaves every view, and comes back restarted" \
    "\\[assert\\] every client's view of users is \\{users-2, users-3\\} \\(1 client\\); at [0-9.]+s"
passes "a stopped replica deregisters" \
    "\\[assert\\] every client's view of users is \\{users-1, users-3\\} \\(1 client\\)"
expect_no_marker "$MARK" 3 "after the correct runs"

# catches BUG_ENV SCENARIO ERE: with BUG_ENV, SCENARIO fails (exit 1) with a message matching ERE.
catches() {
    only "$2" "$1"
    expect_eq "$1: '$2' exit status" "$RC" 1
    expect_fgrep "✗ $F: $2" "$OUT"
    expect_grep "$3" "$OUT"
    expect_no_marker "$MARK" 3 "after the $1 run"
}
catches SHOP_BUG=sticky-lb "requests spread evenly over the users replicas" \
    '\[assert\] FAILED: users not balanced within 20%: users-1 [0-9]+, users-2 [0-9]+, users-3 [0-9]+ \(expected [0-9.]+ each; max deviation (1[0-9][0-9]|200)\.[0-9]% at users-[123]\); window [0-9.]+s to [0-9.]+s'
catches SHOP_BUG=drop-traceparent "every trace through the gateway is connected" \
    '\[assert\] FAILED: [0-9]+ of [0-9]+ traces rooted at gateway are bad; trace [0-9a-f]{32}: it starts with span [0-9a-f]{16} \(gateway client .shop\.Users/CreateUser. on gateway-1\): a call made without its caller.s trace context'
catches 'SHOP_RETRY={"methodConfig":[{"name":[{"service":"shop.Users"}],"retryPolicy":{"maxAttempts":5,"initialBackoff":"0.01s","maxBackoff":"0.05s","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}]}' \
    "retries are extra CLIENT spans, within max_attempts" \
    '\[assert\] FAILED: [0-9]+ of [0-9]+ traces rooted at gateway are bad; trace [0-9a-f]{32}: a call to .shop\.Users/CreateUser. from gateway-1 made [45] attempts \(at most 3 allowed\): spans [0-9a-f]{16} '
catches SHOP_BUG=retry-past-max "retries are extra CLIENT spans, within max_attempts" \
    '\[assert\] FAILED: [0-9]+ of [0-9]+ traces rooted at gateway are bad; trace [0-9a-f]{32}: a call to .shop\.Users/CreateUser. from gateway-1 made [4-6] attempts \(at most 3 allowed\): spans [0-9a-f]{16} '
catches SHOP_BUG=no-deregister "a stopped replica deregisters" \
    '\[assert\] FAILED: users-2 stopped \(it exited with code 0\) but is still registered in Consul \(critical\): it did not deregister'
# a stale view, on the correct services
catches SHOP_BUG= "$FROZEN" \
    "\\[assert\\] FAILED: gateway-1's view of users is \\{users-1, users-2, users-3\\}, expected \\{users-2, users-3\\} \\(the instances up and passing; last answer index [0-9]+ at [0-9.]+s, [0-9]+ answers so far\\); at [0-9.]+s"

usage_checks checks/usage.lua
usage_checks checks/usage-none.lua
expect_no_marker "$MARK" 3 "after the usage files"

echo "  (test_checks.sh took $(($(now_ms) - T0))ms)"
it_done

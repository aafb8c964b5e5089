# The supervisor on real processes: echo-svc replicas crashed, stopped, paused, resumed and
# restarted (scenarios/supervisor/, which must all pass), readiness and its failures, the
# wiring of `needs`, addresses, and no process left behind by any scenario.
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)

# ---- the suite: every scenario passes
expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose supervisor/
cp "$OUT" "$FL_TMP/suite.out"
O="$FL_TMP/suite.out"
n=$(grep -c '^scenario(' supervisor/*.lua | awk -F: '{s += $2} END {print s}')
expect_summary "$n passed, 0 failed, 0 errors, 0 skipped" "$O"
# the range the run claimed is the one its instances live in
x=$(sed -n 's/^faultline .*addresses 127\.\([0-9]*\)\.0\.0\/16.*/\1/p' "$O")
expect_grep "\[note\] range X=$x \(" "$O"
# the timeline shows the process events
expect_grep '\[process\] users-1: killed by SIGKILL$' "$O"
expect_grep '\[process\] users-2: exited with code 0$' "$O"
expect_grep '\[process\] users-3: paused \(SIGSTOP\)$' "$O"
expect_grep '\[process\] users-3: resumed \(SIGCONT\)$' "$O"
expect_grep '\[process\] stubborn-1: still running after the grace period: SIGKILL$' "$O"
expect_grep '\[process\] quitter-1: exited with code 7 \(unexpected\)$' "$O"
expect_grep '\[process\] slow-1: ready after ([3-9][0-9]{2}|[0-9]{4,})\.[0-9]ms$' "$O"
# client-1 (which needs users and user-db) starts only once they are all ready
awk '/\[note\] setup: /{ready = 0; bad = 0}
     /users-[123]: ready after/{ready++}
     /client-1: started/{if (ready != 3) bad = 1; seen = 1}
     END {exit !(seen && !bad)}' "$O" &&
    ok "client-1 started after users-1..3 were ready" ||
    fail "client-1 started before every users replica was ready"
expect_no_marker "$MARK" 2 "after the suite"

# ---- setup failures: named, with the reason, the scenario body never runs
expect_exit 1 env IT_MARK="$MARK" "$FL" run --verbose supervisor-extra/exits_at_once.lua
expect_grep '^    setup: quitter-1 exited with code 3 before it was ready$' "$OUT"
expect_grep '^    at supervisor-extra/exits_at_once.lua:[0-9]+$' "$OUT"
expect_no_fgrep "MUST NOT RUN" "$OUT"
expect_no_marker "$MARK" 2 "after a service exited during setup"

t0=$(now_ms)
expect_exit 1 env IT_MARK="$MARK" "$FL" run --verbose supervisor-extra/never_listens.lua
t1=$(now_ms)
expect_grep '^    setup: mute-1 not ready within 400ms \(state: starting\)$' "$OUT"
expect_no_fgrep "MUST NOT RUN" "$OUT"
[ $((t1 - t0)) -ge 400 ] && [ $((t1 - t0)) -lt 3000 ] &&
    ok "gave up after ready_timeout (run took $((t1 - t0))ms)" ||
    fail "never_listens took $((t1 - t0))ms, want 400ms..3s"
expect_no_marker "$MARK" 2 "after a service never listened"

# ---- a stop right after a start still reaches the service as SIGTERM
expect_exit 0 env IT_MARK="$MARK" "$FL" run supervisor-extra/stop_race.lua
expect_no_marker "$MARK" 2 "after the stop race"

# ---- many replicas: still one port each
expect_exit 0 env IT_MARK="$MARK" "$FL" run supervisor-extra/many_replicas.lua
expect_no_marker "$MARK" 5 "after 120 replicas"

it_done

# t:nemesis: scenarios/nemesis/schedule.lua runs seeded random fault schedules against two
# echo-svc replicas and a pinger; every scenario must pass (each fault held then healed,
# crashed instances restarted, traffic flowing again, :stop() and the scenario's end healing
# what is on). Two runs with the same --seed note the same plan and history; another seed
# gives another. The JSON report must show every nemesis fault as an interval that ends.
# Mistakes in using t:nemesis are usage errors at the user's line. Nothing may be left
# running.
. "$(dirname "$0")/lib.sh"
it_init
IT_LIMIT=120

MARK=$(new_mark)
F=nemesis/schedule.lua

# failures FILE: the failed scenarios and assertions of a run, for the log
failures() {
    grep -E '^✗ |\[assert\] FAILED' "$1" | sed 's/^/  /'
}

# plans FILE: the plan and history notes of the first scenario, without their timestamps
plans() {
    sed -n 's/.*\[note\] \(\(plan\|did\) [0-9].*\) (nemesis\/schedule\.lua:[0-9]*)$/\1/p' "$1"
}

expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose --seed 42 --json "$FL_TMP/a.json" "$F"
cp "$OUT" "$FL_TMP/a.out"
expect_summary "5 passed, 0 failed, 0 errors, 0 skipped" "$FL_TMP/a.out"
failures "$FL_TMP/a.out"
expect_no_grep 'Sanitizer|runtime error|handles left open' "$FL_TMP/a.out"
expect_no_grep 'Sanitizer|runtime error|handles left open' "$ERR"
plans "$FL_TMP/a.out" >"$FL_TMP/a.plan"

expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose --seed 42 --filter 'every kind' "$F"
failures "$OUT"
plans "$OUT" >"$FL_TMP/b.plan"
expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose --seed 43 --filter 'every kind' "$F"
failures "$OUT"
plans "$OUT" >"$FL_TMP/c.plan"

n=$(grep -c '^plan ' "$FL_TMP/a.plan")
if [ "$n" -ge 8 ] && [ "$(grep -c '^did ' "$FL_TMP/a.plan")" -eq "$n" ]; then
    ok "--seed 42: $n steps planned and as many done"
else
    fail "--seed 42: $n steps planned, $(grep -c '^did ' "$FL_TMP/a.plan") done"
    show "$FL_TMP/a.plan"
fi
# the history is the plan, step for step
if [ "$(sed -n 's/^plan //p' "$FL_TMP/a.plan")" = "$(sed -n 's/^did //p' "$FL_TMP/a.plan")" ]; then
    ok "the history follows the plan"
else
    fail "the history differs from the plan"
    show "$FL_TMP/a.plan" 60
fi
if cmp -s "$FL_TMP/a.plan" "$FL_TMP/b.plan"; then
    ok "--seed 42 twice: the same plan and history"
else
    fail "--seed 42 twice gave different schedules:"
    diff "$FL_TMP/a.plan" "$FL_TMP/b.plan" | sed 's/^/  | /'
fi
expect_ne "schedules with seeds 42 and 43" "$(cat "$FL_TMP/a.plan")" "$(cat "$FL_TMP/c.plan")"
# every kind of fault is in the plan of seed 42, on both replicas
for k in crash pause partition latency reset_peer consul_down broker_restart; do
    expect_grep "^plan [0-9]+ $k " "$FL_TMP/a.plan"
done
expect_grep '^plan [0-9]+ [a-z_]+ echo-1 ' "$FL_TMP/a.plan"
expect_grep '^plan [0-9]+ [a-z_]+ echo-2 ' "$FL_TMP/a.plan"
# the seed option: the same plan whatever --seed says
seeded() { grep -o 'seeded [0-9].*hold=[0-9.]*' "$1"; }
expect_exit 0 env IT_MARK="$MARK" "$FL" run --verbose --seed 7 --filter 'seed option' "$F"
expect_eq "the seed option's plan under --seed 7 and 42" "$(seeded "$OUT")" "$(seeded "$FL_TMP/a.out")"
expect_ne "the seed option's plan" "$(seeded "$OUT")" ""

# the report: every nemesis fault is an interval that ends (nothing left on), with a line
python3 - "$FL_TMP/a.json" >"$FL_TMP/intervals" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["scenarios"]:
    for f in s["faults"]:
        if "nemesis" in f["text"] or "nemesis" in f["subject"] or f["subject"] in ("consul", "broker"):
            print("%s|%s|%s|%s|%s|%s|%s" % (s["name"], f["subject"], f["text"], f["instant"],
                  "open" if f["off"] is None else "closed", f["end_text"], f["fired"]))
PY
show "$FL_TMP/intervals" 8
expect_grep '^every kind of fault[^|]*\|echo-[12]\|crash \(nemesis\)\|False\|closed\|restart \(nemesis\)' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|echo-[12]\|pause \(nemesis\)\|False\|closed\|resume \(nemesis\)' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|isolate echo-[12] \(nemesis\)\|partition\|False\|closed\|removed partition' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|links to echo-[12] \(nemesis\)\|latency\{jitter=50, ms=200\}\|False\|closed' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|links to echo-[12] \(nemesis\)\|reset_peer\{ms=0\}\|False\|closed' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|consul\|down\|False\|closed\|up' "$FL_TMP/intervals"
expect_grep '^every kind of fault[^|]*\|broker\|down\|False\|closed\|up' "$FL_TMP/intervals"
expect_no_grep '\|False\|open\|' "$FL_TMP/intervals"
# the link faults did something to the pinger's traffic: each kind fired at least once
for k in 'isolate echo-[12] \(nemesis\)\|partition' 'links to echo-[12] \(nemesis\)\|latency' \
    'links to echo-[12] \(nemesis\)\|reset_peer'; do
    expect_grep "^every kind of fault[^|]*\|$k.*\|True\$" "$FL_TMP/intervals"
done
# a nemesis still running as the scenario ends: healed then
expect_grep '^a nemesis still run[^|]*\|links to echo-1 \(nemesis\)\|latency.*\|closed\|removed latency' "$FL_TMP/intervals"
expect_grep '^a nemesis still run[^|]*\|consul\|down\|False\|closed\|up' "$FL_TMP/intervals"
expect_grep '^stop heals the fault[^|]*\|isolate echo-1 \(nemesis\)\|partition\|False\|closed\|removed partition' "$FL_TMP/intervals"
expect_no_marker "$MARK" 5 "after $F"

usage_checks nemesis/usage.lua
expect_grep "^✓ nemesis/usage.lua: a good scenario after them still runs" "$OUT"
expect_no_marker "$MARK" 5 "after nemesis/usage.lua"

it_done

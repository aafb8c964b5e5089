# The load generator (harness/workload.c, lua_load.c) against real services: load/http.lua
# (t:http, the achieved rate, injected latency, errors by kind after a crash, :results(),
# the open-loop check with a paused server, teardown of a running load), load/grpc.lua
# (t:grpc and gRPC loads on users and through the gateway, t.pb), load/broken.lua (request
# functions that break: reported at the user's line, the load stopped, the next scenario
# fine), load/usage.lua (usage errors). The JSON report must carry one sample per second of
# each load, summing to what the load sent. Nothing may be left running.
IT_LIMIT=${IT_LIMIT:-120}
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)
T0=$(now_ms)

# --- HTTP, with the JSON report
suite load/http.lua
J="$FL_TMP/http.json"
expect_exit 0 env IT_MARK="$MARK" "$FL" run --seed 7 --filter 'achieved rate' --json "$J" load/http.lua
if python3 - "$J" >"$FL_TMP/series.out" 2>&1 <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
sc = [s for f in doc["files"] for s in f["scenarios"]] if "files" in doc else doc["scenarios"]
series = sc[0]["series"]
assert len(series) == 1, "one series: %r" % [s["name"] for s in series]
s = series[0]
assert s["name"] == "echo", s["name"]
n = len(s["samples"])
assert n == 3, "3 samples for 3 s, got %d" % n
assert sum(x["sent"] for x in s["samples"]) == 1200, [x["sent"] for x in s["samples"]]
assert all(380 <= x["sent"] <= 420 and x["ok"] == x["sent"] and x["errors"] == 0 for x in s["samples"]), s["samples"]
assert all(0 < x["p50_ms"] <= x["p90_ms"] <= x["p99_ms"] <= x["max_ms"] for x in s["samples"]), s["samples"]
ts = [x["t"] for x in s["samples"]]
assert all(b - a > 0.99 and b - a < 1.01 for a, b in zip(ts, ts[1:])), ts
print("ok", n, ts)
PY
then ok "JSON report: 3 per-second samples of 400 requests ($(cat "$FL_TMP/series.out"))"
else
    fail "JSON report samples"
    show "$FL_TMP/series.out"
fi
expect_no_marker "$MARK" 3 "after load/http.lua"

# --- gRPC on users, HTTP through the gateway
suite load/grpc.lua
expect_no_marker "$MARK" 3 "after load/grpc.lua"

# --- broken request functions
# two of the breaks are usage errors: exit 2
expect_exit 2 env IT_MARK="$MARK" "$FL" run --seed 42 load/broken.lua
expect_fgrep 'load/broken.lua:8: boom at 20 (in the request function of t:load at load/broken.lua:7, request 20)' "$OUT"
expect_fgrep 'at load/broken.lua:8' "$OUT"
expect_fgrep 'faultline: load/broken.lua:16: t:load request function returned a number for request 5' "$ERR"
expect_fgrep "faultline: load/broken.lua:27: waiting calls" "$ERR"
expect_fgrep "(in the request function of t:load at load/broken.lua:26, request 3)" "$ERR"
expect_no_fgrep "never reached" "$OUT"
expect_fgrep 'timed out after 1s waiting at load/broken.lua:34' "$OUT"
expect_summary "1 passed, 1 failed, 3 errors, 0 skipped" "$OUT"
expect_no_grep 'Sanitizer|runtime error|handles left open' "$ERR"
expect_no_marker "$MARK" 3 "after load/broken.lua"

usage_checks load/usage.lua
expect_no_marker "$MARK" 3 "after load/usage.lua"

echo "  (test_load.sh took $(($(now_ms) - T0))ms)"
it_done

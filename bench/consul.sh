#!/usr/bin/env bash
# bench/consul.sh: the fake Consul benchmark (issue 5). Runs `faultline fake consul` on
# 127.0.0.1 and measures the issue's three targets, printing a markdown table:
#
#   1. 1,000 concurrent blocking watchers on one service
#      (GET /v1/health/service/X?index=N&wait=60s) all woken after a registration      < 10 ms
#      (from the registration's 200 to the last watcher's answer; median of REPS x ROUNDS)
#   2. 100 instances registered with HTTP checks all passing after they listen          < 1 s
#   3. health queries on one core (wrk -t1, /v1/health/service/X?passing, 5 instances)  >= 20,000/s
#
# plus, for target 1, the machine's floor: `consulbench floor`, a bare epoll server that writes
# one prepared answer of the same size to every parked watcher in a plain loop, measured by the
# same watch tool the same way, in runs alternating with the fake's (REPS of each, medians over
# all their rounds), so that both see the same load. The load tools are bench/consulbench
# (plain sockets and epoll) and wrk. The fake and the tools run on cores of their own when
# taskset is there (the fake on core 0); every process this script starts is stopped by its
# PID; the whole run takes about a minute. It builds nothing:
#
#   bench/consul.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Environment: WATCHERS (default 1000), ROUNDS (registrations per watch run; default 10), REPS
# (alternating fake and floor watch runs; default 3), INSTANCES (default 100), CHECK_REPS
# (default 3), DURATION (wrk seconds per run; default 5), WRK_REPS (default 3), WRK_CONNS
# (default 32), FAULTLINE and CONSULBENCH (binaries other than the build dir's). Exit status: 0
# all targets met, 1 a target missed, 2 the benchmark could not run.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/faultline" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
WATCHERS=${WATCHERS:-1000}
ROUNDS=${ROUNDS:-10}
REPS=${REPS:-3}
INSTANCES=${INSTANCES:-100}
CHECK_REPS=${CHECK_REPS:-3}
DURATION=${DURATION:-5}
WRK_REPS=${WRK_REPS:-3}
WRK_CONNS=${WRK_CONNS:-32}
FAULTLINE=${FAULTLINE:-$BUILD/bin/faultline}
CONSULBENCH=${CONSULBENCH:-$BUILD/bin/consulbench}

die() {
    echo "consul.sh: $*" >&2
    exit 2
}

for f in "$FAULTLINE" "$CONSULBENCH"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD), or pass the build dir"
done
for t in wrk curl awk; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install wrk curl)"
done
# Cores: the fake on core 0, the load on core 1, when there are two and taskset exists.
FAKE_CPU=()
LOAD_CPU=()
PINNING="not pinned (no taskset, or one core)"
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    FAKE_CPU=(taskset -c 0)
    LOAD_CPU=(taskset -c 1)
    PINNING="fake on core 0 (taskset -c 0), load tools on core 1"
fi
# 1,000 watchers are 1,000 descriptors in the tool and in the fake (both raise their own soft
# limit to the hard one too).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((WATCHERS + 64)) ] ||
    die "the open-files limit $(ulimit -n) is below the $((WATCHERS + 64)) the watchers need"

TMP=$(mktemp -d /tmp/faultline-consul-bench.XXXXXX) || die "cannot make a temp dir"
PIDS=()

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    PIDS=()
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

stop_pid() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# start_fake NODES: `faultline fake consul` with agents node-1..node-NODES on free ports, on
# the fake's core; sets FAKE_PID, AGENTS (HOST:PORT, comma-separated, node-1 first) and AGENT1.
start_fake() {
    local out=$TMP/fake.out
    : >"$out"
    "${FAKE_CPU[@]}" "$FAULTLINE" fake consul --listen 127.0.0.1:0 --nodes "$1" --quiet \
        >"$out" 2>"$TMP/fake.err" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    for _ in $(seq 100); do
        [ "$(grep -c http:// "$out")" -ge "$1" ] && break
        kill -0 "$FAKE_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ "$(grep -c http:// "$out")" -ge "$1" ] || die "the fake did not start: $(cat "$TMP/fake.err")"
    AGENTS=$(sed -n 's,^node-[0-9]* http://,,p' "$out" | paste -sd, -)
    AGENT1=${AGENTS%%,*}
}

# field NAME FILE: the value of NAME=... on the file's summary line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2" | tail -1; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

children_cpu() {
    times >"$TMP/times"
    CHILD_CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$TMP/times")
}

cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

pass() { awk -v ok="$1" 'BEGIN { print (ok ? "pass" : "**FAIL**") }'; }

MISSED=0
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 |"); }

echo "consul.sh: build $BUILD; $(nproc) cores; $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
START=$(date +%s)
read -r BUSY0 TOTAL0 < <(machine_jiffies)
children_cpu
CHILD0=$CHILD_CPU

# ------------------------------------------------------------ 1. blocking watchers ----

# rounds FILE...: every round's "last watcher +X ms after the 200" of the watch outputs
rounds() { sed -n 's/.*last watcher +\([0-9.]*\) ms after the 200.*/\1/p' "$@"; }
# idle FILE...: every round's share of the window the watch tool spent waiting
idle() { sed -n 's/.*tool idle \([0-9]*\) %.*/\1/p' "$@"; }
maxof() { sort -g | tail -1; }

# watch_run OUT AGENTS: one watch run (WATCHERS, ROUNDS) on the load tools' core
watch_run() {
    "${LOAD_CPU[@]}" timeout 120 "$CONSULBENCH" watch "$2" web "$WATCHERS" "$ROUNDS" >"$1" 2>"$1.err" || {
        cat "$1" >&2
        die "consulbench watch failed: $(cat "$1.err")"
    }
}

# floor_run OUT: the bare server on the fake's core, watched the same way
floor_run() {
    "${FAKE_CPU[@]}" "$CONSULBENCH" floor "$BYTES" >"$1.srv" 2>"$1.srv.err" &
    local pid=$! addr=
    PIDS+=("$pid")
    for _ in $(seq 100); do
        addr=$(sed -n 's,^floor http://,,p' "$1.srv")
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || die "consulbench floor did not start: $(cat "$1.srv.err")"
    watch_run "$1" "$addr"
    stop_pid "$pid"
}

start_fake 10
BYTES=
for r in $(seq "$REPS"); do
    echo "consul.sh: watch      $WATCHERS watchers on node-1, $ROUNDS registrations (rep $r/$REPS)" >&2
    watch_run "$TMP/watch1.$r.out" "$AGENT1"
    [ -n "$BYTES" ] || BYTES=$(field answer_bytes "$TMP/watch1.$r.out")
    echo "consul.sh: floor      $WATCHERS watchers of a bare server, $BYTES-byte answers (rep $r/$REPS)" >&2
    floor_run "$TMP/floor.$r.out"
done
echo "consul.sh: watch      $WATCHERS watchers over 10 agents, $ROUNDS registrations" >&2
watch_run "$TMP/watch10.out" "$AGENTS"
stop_pid "$FAKE_PID"
if [ ${#FAKE_CPU[@]} -gt 0 ]; then
    start_fake 1
    echo "consul.sh: watch      $WATCHERS watchers on node-1, nothing pinned" >&2
    timeout 120 "$CONSULBENCH" watch "$AGENT1" web "$WATCHERS" "$ROUNDS" >"$TMP/watchfree.out" \
        2>"$TMP/watchfree.err" || die "consulbench watch failed: $(cat "$TMP/watchfree.err")"
    stop_pid "$FAKE_PID"
fi
N1=$((REPS * ROUNDS))
W1=$(rounds "$TMP"/watch1.*.out | median)
W1MAX=$(rounds "$TMP"/watch1.*.out | maxof)
W1IDLE=$(idle "$TMP"/watch1.*.out | median)
W10=$(rounds "$TMP/watch10.out" | median)
W10MAX=$(rounds "$TMP/watch10.out" | maxof)
FLOOR=$(rounds "$TMP"/floor.*.out | median)
FLOORMAX=$(rounds "$TMP"/floor.*.out | maxof)
FLOORIDLE=$(idle "$TMP"/floor.*.out | median)
ok=$(awk -v a="$W1" -v b="$W10" 'BEGIN { print (a < 10 && b < 10) }')
[ "$ok" = 1 ] || MISSED=1
row "1. $WATCHERS watchers on 1 agent: registration's 200 → last watcher answered (ms; median of $N1 rounds over $REPS runs, max)" \
    "$W1 (max $W1MAX; tool idle $W1IDLE %)" "< 10" "$(pass "$ok")"
row "… $WATCHERS watchers spread over 10 agents (ms; median of $ROUNDS, max)" "$W10 (max $W10MAX)" "< 10" "$(pass "$ok")"
if [ -f "$TMP/watchfree.out" ]; then
    row "… $WATCHERS watchers on 1 agent, nothing pinned (ms; median of $ROUNDS, max)" \
        "$(rounds "$TMP/watchfree.out" | median) (max $(rounds "$TMP/watchfree.out" | maxof))" \
        "—" "report only"
fi
row "… floor: a bare server writing $BYTES B to each, runs alternating with the fake's, measured the same way (ms; median of $N1, max)" \
    "$FLOOR (max $FLOORMAX; tool idle $FLOORIDLE %)" "—" "report only"

# ------------------------------------------------------------ 2. HTTP checks ----

start_fake 10
CHECKS=()
for r in $(seq "$CHECK_REPS"); do
    echo "consul.sh: checks     $INSTANCES instances, rep $r/$CHECK_REPS" >&2
    "${LOAD_CPU[@]}" timeout 30 "$CONSULBENCH" checks "$AGENTS" "checked$r" "$INSTANCES" \
        >"$TMP/checks$r.out" 2>"$TMP/checks$r.err" || die "consulbench checks failed: $(cat "$TMP/checks$r.err")"
    CHECKS+=("$(field first_listen_to_all_passing_ms "$TMP/checks$r.out")")
done
stop_pid "$FAKE_PID"
C=$(echo "${CHECKS[*]}" | median)
CMAX=$(echo "${CHECKS[*]}" | tr ' ' '\n' | sort -g | tail -1)
ok=$(awk -v a="$CMAX" 'BEGIN { print (a < 1000) }')
[ "$ok" = 1 ] || MISSED=1
row "2. $INSTANCES instances with HTTP checks: first listen → all passing (ms; median of $CHECK_REPS, max)" \
    "$C (max $CMAX)" "< 1000" "$(pass "$ok")"

# ------------------------------------------------------------ 3. health queries ----

start_fake 1
for i in 1 2 3 4 5; do
    body="{\"Name\":\"api\",\"ID\":\"api-$i\",\"Address\":\"10.0.0.$i\",\"Port\":8080,\"Tags\":[\"v1\"],\"Check\":{\"TTL\":\"10m\"}}"
    if ! curl -fsS -X PUT -d "$body" "http://$AGENT1/v1/agent/service/register" >/dev/null ||
        ! curl -fsS -X PUT "http://$AGENT1/v1/agent/check/pass/service:api-$i" >/dev/null; then
        die "cannot register instance api-$i"
    fi
done
URL="http://$AGENT1/v1/health/service/api?passing"
n=$(curl -fsS "$URL" | grep -o '"Checks":' | wc -l)
[ "$n" = 5 ] || die "the health query lists $n passing instances, expected 5"
HSIZE=$(curl -fsS "$URL" | wc -c)
RPS=()
FAKECPU=()
for r in $(seq "$WRK_REPS"); do
    echo "consul.sh: wrk        -t1 -c$WRK_CONNS -d${DURATION}s, rep $r/$WRK_REPS" >&2
    before=$(cpu_s "$FAKE_PID")
    "${LOAD_CPU[@]}" wrk -t1 -c"$WRK_CONNS" -d"${DURATION}s" "$URL" >"$TMP/wrk$r.out" 2>&1 ||
        die "wrk failed: $(cat "$TMP/wrk$r.out")"
    after=$(cpu_s "$FAKE_PID")
    grep -qE 'Non-2xx|Socket errors' "$TMP/wrk$r.out" && die "wrk saw errors: $(cat "$TMP/wrk$r.out")"
    RPS+=("$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$TMP/wrk$r.out")")
    FAKECPU+=("$(awk -v a="$after" -v b="$before" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * (a - b) / d }')")
done
stop_pid "$FAKE_PID"
Q=$(echo "${RPS[*]}" | median)
QCPU=$(echo "${FAKECPU[*]}" | median)
# what one core of the fake serves: each run's req/s over the share of a core it used
PERCORE=$(for r in $(seq "$WRK_REPS"); do
    awk -v q="${RPS[$((r - 1))]}" -v c="${FAKECPU[$((r - 1))]}" 'BEGIN { if (c > 0) printf "%.0f\n", q * 100 / c }'
done | median)
ok=$(awk -v a="$Q" 'BEGIN { print (a >= 20000) }')
[ "$ok" = 1 ] || MISSED=1
row "3. health queries, 1 core, wrk -t1 -c$WRK_CONNS, 5 passing instances, $HSIZE-byte answer (req/s; median of $WRK_REPS)" \
    "$Q (the fake at $QCPU % of its core: $PERCORE per core-second)" "≥ 20000" "$(pass "$ok")"

# ------------------------------------------------------------ the table ----

stop_all
read -r BUSY1 TOTAL1 < <(machine_jiffies)
children_cpu
OTHERS=$(awk -v b="$((BUSY1 - BUSY0))" -v t="$((TOTAL1 - TOTAL0))" -v c="$CHILD_CPU" \
    -v c0="$CHILD0" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
    'BEGIN { o = (b / hz - (c - c0)) / (t / hz); if (o < 0) o = 0; printf "%.0f %% of the machine (%d cores)", 100 * o, n }')

echo
echo "| metric | measured | target | result |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - START)) s; $PINNING; other processes used $OTHERS."
echo "Raw, watchers on 1 agent and floor, alternating runs (ms after the 200; tool idle %):"
for r in $(seq "$REPS"); do
    echo "    fake  run $r: $(rounds "$TMP/watch1.$r.out" | paste -sd' ' -); idle $(idle "$TMP/watch1.$r.out" | paste -sd' ' -)"
    echo "    floor run $r: $(rounds "$TMP/floor.$r.out" | paste -sd' ' -); idle $(idle "$TMP/floor.$r.out" | paste -sd' ' -); server's write loop $(sed -n 's/.* written in \([0-9.]*\) ms/\1/p' "$TMP/floor.$r.out.srv" | paste -sd' ' -)"
done
echo "Raw, watchers over 10 agents: $(rounds "$TMP/watch10.out" | paste -sd' ' -)."
if [ -f "$TMP/watchfree.out" ]; then
    echo "Raw, watchers on 1 agent, nothing pinned: $(rounds "$TMP/watchfree.out" | paste -sd' ' -)."
fi
echo "Raw, checks (ms, first listen → all passing): ${CHECKS[*]}."
for r in $(seq "$CHECK_REPS"); do grep '^checks:' "$TMP/checks$r.out" | sed 's/^/    /'; done
echo "Raw, wrk req/s: ${RPS[*]}; fake CPU % of a core: ${FAKECPU[*]}."
exit $MISSED

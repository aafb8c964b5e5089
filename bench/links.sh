#!/usr/bin/env bash
# bench/links.sh: the link benchmark (issue 4). Measures a direct loopback connection and the
# same connection through a faultline link (`faultline proxy`), side by side in one run, and
# prints a markdown table with the ratios and the targets:
#
#   1. added latency of a link with no toxics, 1 connection x 1 stream, mean   <= 25 us
#   2. throughput through a link, 16 connections x 32 streams                  >= 97 % of direct
#   3. 1 GiB streamed through a link, bandwidth unlimited                      >= 2 GB/s
#   4. harness memory for 10,000 idle connections through a link               <  64 MiB
#
# plus, for information only: the same through a link holding a latency toxic of 0 ms (both
# directions), the cost of the toxic pipeline itself; streams through a link that copies
# (`--no-splice`), to compare with splice(2); the link's CPU time per request and per GiB; and
# throughput with the two HTTP/2 ends pinned to core 0 and the link to core 1 (a core of its
# own, as the link would have on a machine with more cores than this benchmark's processes).
#
# HTTP/2 figures use h2load (nghttp2-client) against nghttpd --no-tls (nghttp2-server)
# serving a 13-byte file, standing in for a unary gRPC server; the raw TCP figures use
# bench/tcpbench. Everything listens on 127.0.0.1 on ports free at start; every process the
# script starts is stopped by its PID. It builds nothing:
#
#   bench/links.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Environment: REPS (repetitions per noisy figure, median taken; default 5), DURATION (h2load
# seconds per measurement, after 1 s of warm-up; default 2), IDLE_CONNS (default 10000),
# STREAM_BYTES (default 1 GiB), FAULTLINE and TCPBENCH (binaries other than the build dir's,
# e.g. to measure a patched proxy). Exit status: 0 all targets met, 1 a target missed, 2 the
# benchmark could not run.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/faultline" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
REPS=${REPS:-5}
DURATION=${DURATION:-2}
IDLE_CONNS=${IDLE_CONNS:-10000}
STREAM_BYTES=${STREAM_BYTES:-1073741824}
FAULTLINE=${FAULTLINE:-$BUILD/bin/faultline}
TCPBENCH=${TCPBENCH:-$BUILD/bin/tcpbench}

die() {
    echo "links.sh: $*" >&2
    exit 2
}

for f in "$FAULTLINE" "$TCPBENCH"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD), or pass the build dir"
done
for t in h2load nghttpd curl awk; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install nghttp2-client nghttp2-server curl)"
done

TMP=$(mktemp -d /tmp/faultline-bench.XXXXXX) || die "cannot make a temp dir"
PIDS=()

# Stops every process this script started, by PID.
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

freeport() { "$TCPBENCH" freeport; }

# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most).
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$1 after 5 s"
}

declare -A SERVER_PORT LISTEN CONTROL PROXY_PID

# start_tcpbench MODE NAME: a sink or hold server on a kernel-chosen port, SERVER_PORT[NAME].
start_tcpbench() {
    local out=$TMP/$2.out
    "$TCPBENCH" "$1" 127.0.0.1:0 >"$out" 2>"$TMP/$2.err" &
    PIDS+=($!)
    for _ in $(seq 100); do
        if grep -q '^listening' "$out" 2>/dev/null; then
            SERVER_PORT[$2]=$(awk '{ print $2; exit }' "$out")
            return 0
        fi
        sleep 0.05
    done
    die "tcpbench $1 did not start: $(cat "$TMP/$2.err")"
}

# start_proxy NAME UPSTREAM_PORT [PREFIX...]: a faultline proxy listening on LISTEN[NAME], its
# control API on CONTROL[NAME], its PID in PROXY_PID[NAME]. PREFIX: a command to run it under
# (taskset -c 1); NAME copy gets --no-splice.
start_proxy() {
    local lp cp name=$1 up=$2 extra=()
    shift 2
    [ "$name" = copy ] || [ "$name" = scopy ] && extra=(--no-splice)
    lp=$(freeport) || die "no free port"
    cp=$(freeport) || die "no free port"
    "$@" "$FAULTLINE" proxy --listen "127.0.0.1:$lp" --upstream "127.0.0.1:$up" \
        --control "127.0.0.1:$cp" --quiet "${extra[@]}" 2>"$TMP/proxy-$name.err" &
    local pid=$!
    PIDS+=("$pid")
    LISTEN[$name]=$lp
    CONTROL[$name]=$cp
    PROXY_PID[$name]=$pid
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$cp/version" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    die "$FAULTLINE proxy did not start on 127.0.0.1:$lp (control $cp): $(cat "$TMP/proxy-$name.err")"
}

# add_latency0 CONTROL_PORT: a latency toxic of 0 ms on both directions.
add_latency0() {
    curl -fsS -X POST -H 'Content-Type: application/json' \
        -d '{"name":"lat0","type":"latency","stream":"both","attributes":{"ms":0}}' \
        "http://127.0.0.1:$1/proxies/main/toxics" >"$TMP/toxic.json" 2>&1 ||
        die "cannot add the latency toxic: $(cat "$TMP/toxic.json")"
}

# CPU seconds (user + system) a process has used so far.
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# h2 PORT CLIENTS STREAMS LOG: one h2load measurement (1 s warm-up, DURATION s measured).
# Prints "REQ_PER_S MEAN_US P50_US REQUESTS"; dies when a request failed.
h2() {
    local out=$TMP/h2load.out
    ${H2PREFIX:-} h2load -c "$2" -m "$3" -t 1 --warm-up-time 1 -D "$DURATION" --log-file "$4" \
        "http://127.0.0.1:$1/index.html" >"$out" 2>&1 || die "h2load failed: $(tail -3 "$out")"
    local req
    # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
    req=$(awk '/^requests:/ { if ($10 != 0 || $12 != 0 || $14 != 0) print "bad"; else print $8 }' "$out")
    if [ -z "$req" ] || [ "$req" = bad ]; then
        die "h2load saw failed requests: $(grep '^requests:' "$out")"
    fi
    local rps
    rps=$(awk '/^finished in/ { printf "%.0f", $4 }' "$out")
    sort -n -k3 "$4" | awk -v rps="$rps" -v req="$req" '
        { d[NR] = $3; s += $3 }
        END { if (NR == 0) exit 1; printf "%s %.2f %d %d\n", rps, s / NR, d[int((NR + 1) / 2)], req }'
}

# paired diff|ratio "A1 A2 ..." "B1 B2 ...": the median of A_i - B_i or A_i / B_i, each pair
# measured back to back, so that slow drifts of the machine cancel out.
paired() {
    awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN {
        n = split(a, x, " "); split(b, y, " ")
        for (i = 1; i <= n; i++) print (m == "diff" ? x[i] - y[i] : x[i] / y[i]) }' | median
}

# Process (user, nice, system) and total jiffies of the whole machine, from /proc/stat;
# interrupt time is left out, as it is not charged to processes.
machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# CPU seconds used by the children this shell has waited for. `times` runs in this shell (a
# pipe or $(...) would run it in a subshell, which has no children yet) and sets CHILD_CPU.
children_cpu() {
    times >"$TMP/times"
    CHILD_CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$TMP/times")
}

pass() { awk -v ok="$1" 'BEGIN { print (ok ? "pass" : "**FAIL**") }'; }

MISSED=0
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }

echo "links.sh: build $BUILD; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
read -r BUSY0 TOTAL0 < <(machine_jiffies)
children_cpu
CHILD0=$CHILD_CPU

# ------------------------------------------------------------ HTTP/2: latency, throughput ----

mkdir -p "$TMP/htdocs"
printf 'hello, world\n' >"$TMP/htdocs/index.html"
H2PORT=$(freeport)
nghttpd --no-tls -a 127.0.0.1 -d "$TMP/htdocs" "$H2PORT" >"$TMP/nghttpd.out" 2>&1 &
PIDS+=($!)
wait_port "$H2PORT"
start_proxy link "$H2PORT"
start_proxy lat0 "$H2PORT"
add_latency0 "${CONTROL[lat0]}"
declare -A PORT=([direct]=$H2PORT [link]=${LISTEN[link]} [lat0]=${LISTEN[lat0]})
CONFIGS=(direct link lat0)

echo "links.sh: warm-up" >&2
for c in "${CONFIGS[@]}"; do
    h2load -c 16 -m 32 -n 20000 "http://127.0.0.1:${PORT[$c]}/index.html" >/dev/null 2>&1 ||
        die "h2load warm-up through $c failed"
done

declare -A LAT P50 RPS CPUREQ
for r in $(seq "$REPS"); do
    # rotate the order each repetition, so no configuration always runs first
    order=("${CONFIGS[@]:$(((r - 1) % 3))}" "${CONFIGS[@]:0:$(((r - 1) % 3))}")
    for c in "${order[@]}"; do
        echo "links.sh: latency    rep $r/$REPS $c" >&2
        res=$(h2 "${PORT[$c]}" 1 1 "$TMP/lat-$c-$r.log") || exit 2
        read -r _ mean p50 _ <<<"$res"
        LAT[$c]="${LAT[$c]:-} $mean"
        P50[$c]="${P50[$c]:-} $p50"
    done
    for c in "${order[@]}"; do
        echo "links.sh: throughput rep $r/$REPS $c" >&2
        before=0
        [ "$c" != direct ] && before=$(cpu_s "${PROXY_PID[$c]}")
        res=$(h2 "${PORT[$c]}" 16 32 "$TMP/tput-$c-$r.log") || exit 2
        read -r rps _ _ req <<<"$res"
        RPS[$c]="${RPS[$c]:-} $rps"
        if [ "$c" != direct ]; then
            after=$(cpu_s "${PROXY_PID[$c]}")
            CPUREQ[$c]="${CPUREQ[$c]:-} $(awk -v a="$after" -v b="$before" -v n="$req" 'BEGIN { printf "%.3f", (a - b) * 1e6 / n }')"
        fi
    done
done
declare -A LATM P50M RPSM CPUM
for c in "${CONFIGS[@]}"; do
    LATM[$c]=$(echo "${LAT[$c]}" | median)
    P50M[$c]=$(echo "${P50[$c]}" | median)
    RPSM[$c]=$(echo "${RPS[$c]}" | median)
    [ "$c" = direct ] || CPUM[$c]=$(echo "${CPUREQ[$c]}" | median)
done

added=$(paired diff "${LAT[link]}" "${LAT[direct]}")
d=$(awk -v a="$added" 'BEGIN { printf "%+.1f µs", a }')
ok=$(awk -v a="$added" 'BEGIN { print (a <= 25) }')
[ "$ok" = 1 ] || MISSED=1
row "added latency, 1 conn × 1 stream, mean (µs)" "${LATM[direct]}" "${LATM[link]}" "$d" "≤ +25 µs" "$(pass "$ok")"
d=$(awk -v a="$(paired diff "${LAT[lat0]}" "${LAT[direct]}")" 'BEGIN { printf "%+.1f µs", a }')
row "… with a latency 0 ms toxic (both ways)" "${LATM[direct]}" "${LATM[lat0]}" "$d" "—" "report only"
d=$(awk -v a="$(paired diff "${P50[link]}" "${P50[direct]}")" 'BEGIN { printf "%+.1f µs", a }')
row "added latency, 1 conn × 1 stream, median (µs)" "${P50M[direct]}" "${P50M[link]}" "$d" "—" "report only"

r=$(paired ratio "${RPS[link]}" "${RPS[direct]}")
ratio=$(awk -v r="$r" 'BEGIN { printf "%.1f %%", 100 * r }')
ok=$(awk -v r="$r" 'BEGIN { print (r >= 0.97) }')
[ "$ok" = 1 ] || MISSED=1
row "throughput, 16 conns × 32 streams (req/s)" "${RPSM[direct]}" "${RPSM[link]}" "$ratio" "≥ 97 %" "$(pass "$ok")"
ratio=$(awk -v r="$(paired ratio "${RPS[lat0]}" "${RPS[direct]}")" 'BEGIN { printf "%.1f %%", 100 * r }')
row "… with a latency 0 ms toxic (both ways)" "${RPSM[direct]}" "${RPSM[lat0]}" "$ratio" "—" "report only"
row "link CPU per request at that load (µs)" "—" "${CPUM[link]} (toxic: ${CPUM[lat0]})" "—" "—" "report only"

stop_pid "${PROXY_PID[link]}"
stop_pid "${PROXY_PID[lat0]}"

# Throughput again with h2load and nghttpd pinned to core 0 and the link to core 1: what the
# link costs the traffic when it does not take its CPU from the two ends (report only).
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PINPORT=$(freeport)
    taskset -c 0 nghttpd --no-tls -a 127.0.0.1 -d "$TMP/htdocs" "$PINPORT" >"$TMP/nghttpd-pin.out" 2>&1 &
    PIDS+=($!)
    wait_port "$PINPORT"
    start_proxy pin "$PINPORT" taskset -c 1
    declare -A PPORT=([direct]=$PINPORT [link]=${LISTEN[pin]})
    for c in direct link; do
        taskset -c 0 h2load -c 16 -m 32 -n 20000 "http://127.0.0.1:${PPORT[$c]}/index.html" >/dev/null 2>&1 ||
            die "h2load warm-up through pinned $c failed"
    done
    declare -A PRPS
    PCPU=""
    for r in $(seq "$REPS"); do
        order=(direct link)
        [ $((r % 2)) = 0 ] && order=(link direct)
        for c in "${order[@]}"; do
            echo "links.sh: pinned     rep $r/$REPS $c" >&2
            [ "$c" = link ] && before=$(cpu_s "${PROXY_PID[pin]}")
            res=$(H2PREFIX="taskset -c 0" h2 "${PPORT[$c]}" 16 32 "$TMP/pin-$c-$r.log") || exit 2
            read -r rps _ _ req <<<"$res"
            PRPS[$c]="${PRPS[$c]:-} $rps"
            [ "$c" = link ] && PCPU="$PCPU $(awk -v a="$(cpu_s "${PROXY_PID[pin]}")" -v b="$before" -v n="$req" 'BEGIN { printf "%.3f", (a - b) * 1e6 / n }')"
        done
    done
    ratio=$(awk -v r="$(paired ratio "${PRPS[link]}" "${PRPS[direct]}")" 'BEGIN { printf "%.1f %%", 100 * r }')
    row "… ends on core 0, link on core 1 (req/s)" "$(echo "${PRPS[direct]}" | median)" \
        "$(echo "${PRPS[link]}" | median) (link CPU $(echo "$PCPU" | median) µs/req)" "$ratio" "—" "report only"
    stop_pid "${PROXY_PID[pin]}"
fi

# ------------------------------------------------------------ TCP: 1 GiB streams ----

start_tcpbench sink sink
start_proxy slink "${SERVER_PORT[sink]}"
start_proxy scopy "${SERVER_PORT[sink]}"
start_proxy slat0 "${SERVER_PORT[sink]}"
add_latency0 "${CONTROL[slat0]}"
declare -A SPORT=([direct]=${SERVER_PORT[sink]} [link]=${LISTEN[slink]} [copy]=${LISTEN[scopy]} [lat0]=${LISTEN[slat0]})
declare -A SPID=([link]=${PROXY_PID[slink]} [copy]=${PROXY_PID[scopy]} [lat0]=${PROXY_PID[slat0]})
SCONFIGS=(direct link copy lat0)
SREPS=$((REPS < 5 ? 5 : REPS))
declare -A GBPS GCPU
for c in "${SCONFIGS[@]}"; do # warm-up
    "$TCPBENCH" stream "127.0.0.1:${SPORT[$c]}" $((STREAM_BYTES / 4)) >/dev/null ||
        die "stream warm-up through $c failed"
done
for r in $(seq "$SREPS"); do
    order=("${SCONFIGS[@]:$(((r - 1) % 4))}" "${SCONFIGS[@]:0:$(((r - 1) % 4))}")
    for c in "${order[@]}"; do
        echo "links.sh: stream     rep $r/$SREPS $c" >&2
        [ "$c" != direct ] && before=$(cpu_s "${SPID[$c]}")
        out=$("$TCPBENCH" stream "127.0.0.1:${SPORT[$c]}" "$STREAM_BYTES") || die "stream through $c failed"
        GBPS[$c]="${GBPS[$c]:-} ${out##*gbps=}"
        [ "$c" != direct ] && GCPU[$c]="${GCPU[$c]:-} $(awk -v a="$(cpu_s "${SPID[$c]}")" -v b="$before" -v n="$STREAM_BYTES" 'BEGIN { printf "%.3f", (a - b) * 1073741824 / n }')"
    done
done
declare -A GBM GCM
for c in "${SCONFIGS[@]}"; do GBM[$c]=$(echo "${GBPS[$c]}" | median); done
for c in link copy lat0; do GCM[$c]=$(echo "${GCPU[$c]}" | median); done
GIB=$(awk -v b="$STREAM_BYTES" 'BEGIN { printf "%g GiB", b / 1073741824 }')
ratio=$(awk -v r="$(paired ratio "${GBPS[link]}" "${GBPS[direct]}")" 'BEGIN { printf "%.1f %%", 100 * r }')
ok=$(awk -v a="${GBM[link]}" 'BEGIN { print (a >= 2.0) }')
[ "$ok" = 1 ] || MISSED=1
row "$GIB streamed, 1 conn (GB/s)" "${GBM[direct]}" "${GBM[link]}" "$ratio" "link ≥ 2 GB/s" "$(pass "$ok")"
ratio=$(awk -v r="$(paired ratio "${GBPS[copy]}" "${GBPS[direct]}")" 'BEGIN { printf "%.1f %%", 100 * r }')
row "… copying instead of splice (\`--no-splice\`)" "${GBM[direct]}" "${GBM[copy]}" "$ratio" "—" "report only"
ratio=$(awk -v r="$(paired ratio "${GBPS[lat0]}" "${GBPS[direct]}")" 'BEGIN { printf "%.1f %%", 100 * r }')
row "… with a latency 0 ms toxic (both ways)" "${GBM[direct]}" "${GBM[lat0]}" "$ratio" "—" "report only"
row "link CPU per GiB streamed (s)" "—" "${GCM[link]} (copying: ${GCM[copy]}; toxic: ${GCM[lat0]})" "—" "—" "report only"
stop_pid "${PROXY_PID[slink]}"
stop_pid "${PROXY_PID[scopy]}"
stop_pid "${PROXY_PID[slat0]}"

# ------------------------------------------------------------ idle connections: memory ----

# The proxy holds two descriptors per connection; the client and the hold server one each.
need=$((2 * IDLE_CONNS + 64))
NOFILE_NOTE=""
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    if ! ulimit -n "$need" 2>/dev/null; then
        hard=$(ulimit -Hn)
        ulimit -n "$hard" 2>/dev/null
        fit=$((($(ulimit -n) - 64) / 2))
        echo "links.sh: cannot raise the open-files limit to $need (hard limit $hard):" \
            "measuring $fit idle connections instead of $IDLE_CONNS and scaling" >&2
        NOFILE_NOTE="open-files limit $hard < $need and not raisable here: measured $fit, scaled to $IDLE_CONNS"
        IDLE_MEASURED=$fit
    fi
fi
IDLE_MEASURED=${IDLE_MEASURED:-$IDLE_CONNS}
[ "$IDLE_MEASURED" -gt 0 ] || die "the open-files limit leaves no room for idle connections"

start_tcpbench hold hold
start_proxy idle "${SERVER_PORT[hold]}"
sleep 0.2
rss0=$(rss_kib "${PROXY_PID[idle]}")
echo "links.sh: idle       $IDLE_MEASURED connections" >&2
"$TCPBENCH" idle "127.0.0.1:${LISTEN[idle]}" "$IDLE_MEASURED" >"$TMP/idle.out" 2>"$TMP/idle.err" &
IDLE_PID=$!
PIDS+=("$IDLE_PID")
for _ in $(seq 1200); do
    grep -q '^ready' "$TMP/idle.out" && break
    kill -0 "$IDLE_PID" 2>/dev/null || die "tcpbench idle failed: $(cat "$TMP/idle.err")"
    sleep 0.05
done
grep -q '^ready' "$TMP/idle.out" || die "idle connections not ready after 60 s"
sleep 0.5
rss1=$(rss_kib "${PROXY_PID[idle]}")
active=$(curl -fsS "http://127.0.0.1:${CONTROL[idle]}/proxies/main" | sed -n 's/.*"active": *\([0-9]*\).*/\1/p')
[ "$active" = "$IDLE_MEASURED" ] || die "the link reports ${active:-?} active connections, expected $IDLE_MEASURED"
stop_pid "$IDLE_PID"
read -r delta_mib per_kib proj_mib < <(awk -v a="$rss1" -v b="$rss0" -v n="$IDLE_MEASURED" -v want="$IDLE_CONNS" \
    'BEGIN { d = (a - b) / 1024; printf "%.1f %.2f %.1f\n", d, (a - b) / n, d * want / n }')
ok=$(awk -v p="$proj_mib" 'BEGIN { print (p < 64) }')
[ "$ok" = 1 ] || MISSED=1
if [ "$IDLE_MEASURED" = "$IDLE_CONNS" ]; then
    cell="+$delta_mib MiB ($per_kib KiB/conn; RSS $((rss0 / 1024)) → $((rss1 / 1024)) MiB)"
else
    cell="+$delta_mib MiB for $IDLE_MEASURED conns = +$proj_mib MiB scaled to $IDLE_CONNS ($per_kib KiB/conn; RSS $((rss0 / 1024)) → $((rss1 / 1024)) MiB)"
fi
row "harness memory, $IDLE_CONNS idle conns (VmRSS)" "—" "$cell" "—" "< 64 MiB" "$(pass "$ok")"

# ------------------------------------------------------------ the table ----

stop_all
read -r BUSY1 TOTAL1 < <(machine_jiffies)
children_cpu
# What else ran on the machine meanwhile: busy time not spent by this script's processes.
OTHERS=$(awk -v b="$((BUSY1 - BUSY0))" -v t="$((TOTAL1 - TOTAL0))" -v c="$CHILD_CPU" \
    -v c0="$CHILD0" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
    'BEGIN { o = (b / hz - (c - c0)) / (t / hz); if (o < 0) o = 0; printf "%.0f %% of the machine (%d cores)", 100 * o, n }')

echo
echo "| metric | direct | through link | ratio / delta | target | result |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Direct and link columns: medians of $REPS runs (HTTP/2, ${DURATION} s each after 1 s warm-up) and" \
    "$SREPS runs (streams); ratio/delta: median of the per-repetition pairs. Other processes used" \
    "$OTHERS during the run."
[ -n "$NOFILE_NOTE" ] && echo "Idle connections: $NOFILE_NOTE."
echo "Raw: latency means (µs) direct${LAT[direct]}; link${LAT[link]}; lat0${LAT[lat0]}."
echo "Raw: req/s direct${RPS[direct]}; link${RPS[link]}; lat0${RPS[lat0]}."
[ -n "${PRPS[link]:-}" ] && echo "Raw: pinned req/s direct${PRPS[direct]}; link${PRPS[link]}."
echo "Raw: GB/s direct${GBPS[direct]}; link${GBPS[link]}; copy${GBPS[copy]}; lat0${GBPS[lat0]}."
echo "Raw: link CPU s per GiB link${GCPU[link]}; copy${GCPU[copy]}; lat0${GCPU[lat0]}."
exit $MISSED

#!/usr/bin/env bash
# bench/grpc.sh: the gRPC greeter benchmark (issue 7). Measures our C greeter
# (services/greeter) and the seed's grpc-go greeter (tests/interop/go/server, built against
# Debian's grpc-go by tests/interop/go/build.sh) in the same run, interleaved, with h2load
# sending unary /hello.Greeter/SayHello calls ("World"), and prints a markdown table:
#
#   1. throughput, 16 connections x 32 streams        ours >= 1.5 x grpc-go's (req/s)
#   2. latency, 1 connection x 1 stream: mean, p50, p99 (us)      ours' p99 < grpc-go's
#   3. idle memory (VmRSS) of our greeter, fresh and after the load          < 5 MiB
#
# plus each server's CPU time per request at full load, for information. Every repetition
# runs the four measurements with the order of the two servers swapped each time; the table
# gives medians, and the ratio is the median of the per-repetition ratios (pairs measured
# back to back, so that the machine's drift cancels out). h2load must see every request
# succeed, and both servers must answer "Hello World" (checked with greeter-client) before
# and after. Everything listens on 127.0.0.1 on ports the kernel picks; every process the
# script starts is stopped by its PID. It builds only the Go greeter:
#
#   bench/grpc.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Environment: REPS (repetitions, default 5), DURATION (h2load seconds per measurement
# after 1 s of warm-up, default 3). Exit status: 0 all targets met, 1 a target missed, 2 the
# benchmark could not run.
set -u

die() {
    echo "grpc.sh: $*" >&2
    exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/greeter" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build dir ${1:-}"
REPS=${REPS:-5}
DURATION=${DURATION:-3}

for f in "$BUILD/bin/greeter" "$BUILD/bin/greeter-client"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD), or pass the build dir"
done
for t in h2load awk sort; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install nghttp2-client)"
done

TMP=$(mktemp -d /tmp/faultline-grpcbench.XXXXXX) || die "cannot make a temp dir"
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    PIDS=()
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

GO_OUT=$BUILD/go-greeter
mkdir -p "$GO_OUT"
echo "grpc.sh: building the seed's Go greeter into $GO_OUT" >&2
sh "$ROOT/tests/interop/go/build.sh" "$GO_OUT" "$BUILD/go-cache" >"$TMP/gobuild.log" 2>&1 ||
    die "cannot build the Go greeter: $(tail -3 "$TMP/gobuild.log")"

# the request: a 5-byte gRPC prefix and HelloRequest{name: "World"}
printf '\000\000\000\000\007\012\005World' >"$TMP/hello.bin"

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

declare -A ADDR PID
# start NAME LOG CMD...: a server that prints "listening on 127.0.0.1:PORT"; ADDR[NAME], PID[NAME].
start() {
    local name=$1 log=$2
    shift 2
    "$@" >"$log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    for _ in $(seq 100); do
        ADDR[$name]=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$log" 2>/dev/null)
        [ -n "${ADDR[$name]}" ] && return 0
        sleep 0.05
    done
    die "$name did not start: $(tail -3 "$log")"
}

start ours "$TMP/ours.log" env PORT=0 INSTANCE_ID=bench "$BUILD/bin/greeter"
start grpcgo "$TMP/grpcgo.log" "$GO_OUT/greeter-server-go" -listen 127.0.0.1:0

# greets NAME: the server answers the seed's call correctly
greets() {
    "$BUILD/bin/greeter-client" "${ADDR[$1]}" >"$TMP/greet.out" 2>&1 &&
        grep -q "^call 1: OK 'Hello World'" "$TMP/greet.out" ||
        die "$1 at ${ADDR[$1]} does not greet: $(cat "$TMP/greet.out")"
}
greets ours
greets grpcgo
sleep 1
RSS_FRESH=$(rss_kib "${PID[ours]}")
RSS_GO_FRESH=$(rss_kib "${PID[grpcgo]}")

# h2 NAME CLIENTS STREAMS: one h2load run (1 s warm-up, DURATION s measured) against NAME.
# Prints "REQ_PER_S MEAN_US P50_US P99_US CPU_US_PER_REQ"; dies when a request failed.
h2() {
    local out=$TMP/h2load.out log=$TMP/h2load.log c0 c1
    rm -f "$log" # h2load appends to its log file
    c0=$(cpu_s "${PID[$1]}")
    h2load -c "$2" -m "$3" -t 1 --warm-up-time 1 -D "$DURATION" --log-file "$log" \
        -d "$TMP/hello.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
        "http://${ADDR[$1]}/hello.Greeter/SayHello" >"$out" 2>&1 || die "h2load failed: $(tail -3 "$out")"
    c1=$(cpu_s "${PID[$1]}")
    local req rps
    # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
    req=$(awk '/^requests:/ { if ($10 != 0 || $12 != 0 || $14 != 0) print "bad"; else print $8 }' "$out")
    [ -n "$req" ] && [ "$req" != bad ] || die "h2load saw failed requests against $1: $(grep '^requests:' "$out")"
    grep -q "^status codes: $req 2xx" "$out" || die "h2load saw non-2xx answers from $1: $(grep '^status codes' "$out")"
    rps=$(awk '/^finished in/ { printf "%.0f", $4 }' "$out")
    # the CPU includes the warm-up second: per request, over every request h2load made
    sort -n -k3 "$log" | awk -v rps="$rps" -v cpu="$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" \
        -v dur="$DURATION" '
        { d[NR] = $3; s += $3 }
        END { if (NR == 0) exit 1
              p99 = d[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
              printf "%s %.2f %d %d %.3f\n", rps, s / NR, d[int((NR + 1) / 2)], p99, cpu * 1e6 / (rps * (dur + 1)) }'
}

declare -A RPS MEAN P50 P99 CPU
RATIOS=""
echo "grpc.sh: $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); $REPS reps of ${DURATION}s" >&2
read -r BUSY0 TOTAL0 < <(machine_jiffies)
CPU_OURS0=$(cpu_s "${PID[ours]}")
CPU_GO0=$(cpu_s "${PID[grpcgo]}")
H2CPU=0
for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order="ours grpcgo"; else order="grpcgo ours"; fi
    declare -A this
    for who in $order; do
        t0=$(date +%s.%N)
        read -r r m p5 p9 c < <(h2 "$who" 16 32) || die "no throughput figure for $who"
        RPS[$who]="${RPS[$who]:-} $r"
        CPU[$who]="${CPU[$who]:-} $c"
        this[$who]=$r
        echo "  rep $rep $who 16x32: $r req/s, server CPU $c us/req" >&2
    done
    RATIOS="$RATIOS $(awk -v a="${this[ours]}" -v b="${this[grpcgo]}" 'BEGIN { printf "%.3f", a / b }')"
    for who in $order; do
        read -r r m p5 p9 c < <(h2 "$who" 1 1) || die "no latency figure for $who"
        MEAN[$who]="${MEAN[$who]:-} $m"
        P50[$who]="${P50[$who]:-} $p5"
        P99[$who]="${P99[$who]:-} $p9"
        echo "  rep $rep $who 1x1: mean $m us, p50 $p5 us, p99 $p9 us" >&2
    done
done
read -r BUSY1 TOTAL1 < <(machine_jiffies)
OURS_CPU=$(awk -v a="$CPU_OURS0" -v b="$(cpu_s "${PID[ours]}")" 'BEGIN { print b - a }')
GO_CPU=$(awk -v a="$CPU_GO0" -v b="$(cpu_s "${PID[grpcgo]}")" 'BEGIN { print b - a }')
times >"$TMP/times" # h2load's CPU: the children this shell waited for
H2CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$TMP/times")
OTHERS=$(awk -v b="$((BUSY1 - BUSY0))" -v t="$((TOTAL1 - TOTAL0))" -v c="$(awk -v x="$OURS_CPU" -v y="$GO_CPU" -v z="$H2CPU" 'BEGIN { print x + y + z }')" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN { o = (b / hz - c) / (t / hz); if (o < 0) o = 0; printf "%.0f", 100 * o }')
sleep 1
RSS_AFTER=$(rss_kib "${PID[ours]}")
RSS_GO_AFTER=$(rss_kib "${PID[grpcgo]}")
greets ours
greets grpcgo
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

med() { echo "$1" | median; }
r_ours=$(med "${RPS[ours]}"); r_go=$(med "${RPS[grpcgo]}"); ratio=$(med "$RATIOS")
m_ours=$(med "${MEAN[ours]}"); m_go=$(med "${MEAN[grpcgo]}")
p5_ours=$(med "${P50[ours]}"); p5_go=$(med "${P50[grpcgo]}")
p9_ours=$(med "${P99[ours]}"); p9_go=$(med "${P99[grpcgo]}")
c_ours=$(med "${CPU[ours]}"); c_go=$(med "${CPU[grpcgo]}")
ok_tp=$(awk -v r="$ratio" 'BEGIN { print (r >= 1.5) }')
ok_p99=$(awk -v a="$p9_ours" -v b="$p9_go" 'BEGIN { print (a < b) }')
ok_rss=$(awk -v a="$RSS_FRESH" -v b="$RSS_AFTER" 'BEGIN { print (a < 5120 && b < 5120) }')
MISSED=0
for v in "$ok_tp" "$ok_p99" "$ok_rss"; do [ "$v" = 1 ] || MISSED=1; done
verdict() { if [ "$1" = 1 ]; then echo pass; else echo "**FAIL**"; fi; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

echo
echo "| metric | ours (C) | grpc-go (seed) | ours / grpc-go | target | result |"
echo "|---|---|---|---|---|---|"
echo "| throughput, 16 conns × 32 streams (req/s) | $r_ours | $r_go | ${ratio}× | ≥ 1.5× | $(verdict "$ok_tp") |"
echo "| latency, 1 conn × 1 stream, mean (µs) | $m_ours | $m_go | $(awk -v a="$m_ours" -v b="$m_go" 'BEGIN { printf "%.2f", a / b }') | — | report only |"
echo "| latency, 1 conn × 1 stream, p50 (µs) | $p5_ours | $p5_go | $(awk -v a="$p5_ours" -v b="$p5_go" 'BEGIN { printf "%.2f", a / b }') | — | report only |"
echo "| latency, 1 conn × 1 stream, p99 (µs) | $p9_ours | $p9_go | $(awk -v a="$p9_ours" -v b="$p9_go" 'BEGIN { printf "%.2f", a / b }') | ours lower | $(verdict "$ok_p99") |"
echo "| server CPU per request at 16 × 32 (µs) | $c_ours | $c_go | $(awk -v a="$c_ours" -v b="$c_go" 'BEGIN { printf "%.2f", a / b }') | — | report only |"
echo "| idle memory, fresh / after the load (VmRSS) | $(mib "$RSS_FRESH") / $(mib "$RSS_AFTER") | $(mib "$RSS_GO_FRESH") / $(mib "$RSS_GO_AFTER") | — | ours < 5 MiB | $(verdict "$ok_rss") |"
echo
echo "Medians of $REPS repetitions (h2load -t 1, ${DURATION} s each after 1 s of warm-up; the two" \
    "servers alternate first); the throughput ratio is the median of the per-repetition ratios." \
    "Other processes used $OTHERS % of the machine ($(nproc) cores) during the run; load average" \
    "after: $LOAD_AFTER."
echo "Raw req/s: ours${RPS[ours]}; grpc-go${RPS[grpcgo]}; ratios$RATIOS."
echo "Raw 1×1 mean/p99 (µs): ours${MEAN[ours]} /${P99[ours]}; grpc-go${MEAN[grpcgo]} /${P99[grpcgo]}."
exit $MISSED

#!/usr/bin/env bash
# bench/load.sh: the load generator benchmark (issue 8). faultline's t:load and wrk, in the
# same run, alternately, against the same server: one echo-svc instance (the smallest HTTP
# server of the project, libuv, one thread), GET /healthz over HTTP/1.1 keep-alive, CONNS
# connections each (wrk -t1 -cCONNS; t:load concurrency = CONNS at a rate far above what the
# server takes, stopped after DURATION: it sends as fast as answers free a slot).
#
#   1. request rate: faultline >= 80% of wrk's (median over REPS of each, and the median of the
#      per-repetition ratios)
#   2. faultline's own overhead per request < 5 µs. Method: CPU time (utime + stime from
#      /proc/self/stat, 10 ms ticks, over ~100k+ requests) of the whole faultline process
#      during its load, divided by the requests answered. Most of it is the kernel's
#      loopback TCP work (the write and read syscalls, and the softirq that delivers to the
#      server, charged to the sender), which any client pays: wrk's own CPU per request
#      (/usr/bin/time) measures that floor in the same run. The targets checked: faultline's
#      user-space CPU per request (everything the generator does itself: scheduling,
#      parsing, histograms, libuv) < 5 µs, and its total CPU per request minus wrk's < 5 µs.
#      The total is printed too.
#
#   bench/load.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Environment: REPS (default 5), DURATION (seconds per measurement, default 3), CONNS
# (default 32). Exit status: 0 targets met, 1 a target missed, 2 the benchmark could not run.
set -u

die() {
    echo "load.sh: $*" >&2
    exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/faultline" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build dir ${1:-}"
for f in faultline echo-svc; do
    [ -x "$BUILD/bin/$f" ] || die "$BUILD/bin/$f not found: build first (cmake --build $BUILD)"
done
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"
[ "$(getconf CLK_TCK)" = 100 ] || die "clock ticks are not 100/s: bench/load.lua assumes so"

REPS=${REPS:-5}
DURATION=${DURATION:-3}
CONNS=${CONNS:-32}
TMP=$(mktemp -d /tmp/faultline-loadbench.XXXXXX) || die "cannot make a temp dir"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 2' INT TERM

echo "load.sh: $REPS repetitions of ${DURATION}s each, $CONNS connections, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
PATH="$BUILD/bin:$PATH" BENCH_TMP=$TMP REPS=$REPS DURATION=$DURATION CONNS=$CONNS \
    timeout $((REPS * DURATION * 4 + 60)) "$BUILD/bin/faultline" run "$ROOT/bench/load.lua" \
    >"$TMP/out" 2>&1 || die "the benchmark scenario failed: $(tail -20 "$TMP/out")"

awk -v reps="$REPS" '
function median(a, n,    i, j, t) {
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 == "wrk" { nw++; wr[nw] = $2; wc[nw] = $3 }
$1 == "faultline" && NF == 5 { nf++; fr[nf] = $2; fc[nf] = $3; fu[nf] = $4; fs[nf] = $5 }
END {
    if (nw != reps || nf != reps) { print "load.sh: expected " reps " measurements of each, got " nw " and " nf > "/dev/stderr"; exit 2 }
    for (i = 1; i <= reps; i++) { ratio[i] = fr[i] / wr[i]; extra[i] = fc[i] - wc[i] }
    printf "%-44s %12s\n", "measure (median of " reps ")", "value"
    printf "%-44s %12.0f\n", "wrk requests/s", median(wr, reps)
    printf "%-44s %12.0f\n", "faultline t:load requests/s", median(fr, reps)
    r = median(ratio, reps)
    printf "%-44s %12.2f   target >= 0.80: %s\n", "faultline / wrk (per repetition)", r, (r >= 0.8 ? "met" : "MISSED")
    printf "%-44s %12.2f\n", "wrk CPU µs per request (user+sys)", median(wc, reps)
    printf "%-44s %12.2f\n", "faultline CPU µs per request (user+sys)", median(fc, reps)
    u = median(fu, reps); e = median(extra, reps)
    printf "%-44s %12.2f   target < 5: %s\n", "faultline user CPU µs per request", u, (u < 5 ? "met" : "MISSED")
    printf "%-44s %12.2f\n", "faultline system CPU µs per request", median(fs, reps)
    printf "%-44s %12.2f   target < 5: %s\n", "faultline CPU µs per request minus wrk", e, (e < 5 ? "met" : "MISSED")
    printf "raw:"; for (i = 1; i <= reps; i++) printf " [wrk %d %.2fus | fl %d %.2fus]", wr[i], wc[i], fr[i], fc[i]; printf "\n"
    exit (r >= 0.8 && u < 5 && e < 5) ? 0 : 1
}' "$TMP/out"

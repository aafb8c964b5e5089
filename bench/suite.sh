#!/bin/sh
# The shop suite's wall time (issue 8: the whole of scenarios/shop, soak at its default 30 s,
# under 3 minutes on this 2-core machine), run REPS times in a row (default 3), which also
# shows whether any scenario is flaky: each run must pass. Prints one line per run (the
# summary line, wall seconds, load average before) and exits 1 if a run failed or took
# 180 s or more.
#   bench/suite.sh [BUILD_DIR]        # default build
set -eu
BUILD=${1:-build}
REPS=${REPS:-3}
cd "$(dirname "$0")/.."
FL="$BUILD/bin/faultline"
[ -x "$FL" ] || { echo "suite.sh: no $FL (make build first)" >&2; exit 2; }
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD), $(nproc) cores"
bad=0
i=0
while [ "$i" -lt "$REPS" ]; do
    i=$((i + 1))
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    t0=$(date +%s%N)
    rc=0
    "$FL" run --quiet scenarios/shop >"$LOG" 2>&1 || rc=$?
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    summary=$(grep -E '^[0-9]+ scenarios:' "$LOG" | tail -1)
    printf 'run %d: %s; wall %d.%03d s; load average before %s\n' "$i" "$summary" \
        $((ms / 1000)) $((ms % 1000)) "$load"
    if [ "$rc" -ne 0 ]; then
        bad=1
        grep -E '^✗ |^    ' "$LOG" | head -20
    fi
    [ "$ms" -lt 180000 ] || bad=1
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$bad"

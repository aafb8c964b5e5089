#!/usr/bin/env bash
# bench/amqp.sh: the fake AMQP broker benchmark (issue 6). Runs `faultline fake amqp` and a real
# RabbitMQ (Debian's rabbitmq-server, started here on spare loopback ports) side by side, and
# measures both with the same client (bench/amqpbench: librabbitmq, one connection, 100-byte
# transient messages through the default exchange to one queue), interleaved, printing a
# markdown table with the ratios and the targets:
#
#   1. publish, no confirms (msg/s)                                   fake >= 3x RabbitMQ
#   2. consume with basic.consume, no-ack and with acks (msg/s)       fake >= 3x RabbitMQ
#   3. publish with confirms, WINDOW unconfirmed at most (msg/s)      fake >= 20,000
#   4. memory per queued 100-byte message, beyond its 100 bytes       fake <= 256 bytes
#
# Each repetition runs `amqpbench round` once on each broker, the order alternating: publish N
# (timed until a passive queue.declare counts all N queued), consume them no-ack, publish N
# again, consume them with acks (basic.qos PREFETCH, basic.ack multiple=true every ACK_EVERY
# deliveries), then N publishes with confirms. Figures are medians over REPS; ratios are the
# medians of the per-repetition ratios, so drifts of a shared machine cancel as far as they
# can. Memory: a fresh fake's VmRSS before and after MEM_N messages are queued (by a client
# that then disconnects). Neither broker is pinned to a core (RabbitMQ uses both; the fake is
# one thread). Everything listens on 127.0.0.1 (epmd and Erlang distribution too); every
# process this script starts is stopped by its PID. It builds nothing:
#
#   bench/amqp.sh [BUILD_DIR]      (default: build-bench, else build)
#
# For the publish figure the script also measures the client's own ceiling (report only):
# FLOOR_N publishes timed into the socket buffers of the fake stopped with SIGSTOP (no reads,
# no wake-ups, no window updates), the most any broker could get from this client.
#
# Environment: N (messages per figure per repetition; default 200000), REPS (default 5),
# PREFETCH (default 1000), ACK_EVERY (default 250), WINDOW (default 1000), MEM_N (default
# 1000000), FLOOR_N (default 5000), FAULTLINE, AMQPBENCH, TCPBENCH (binaries other than the build dir's), RABBITMQ_SERVER
# (default /usr/lib/rabbitmq/bin/rabbitmq-server). Exit status: 0 all targets met, 1 a target
# missed, 2 the benchmark could not run.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/faultline" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
N=${N:-200000}
REPS=${REPS:-5}
PREFETCH=${PREFETCH:-1000}
ACK_EVERY=${ACK_EVERY:-250}
WINDOW=${WINDOW:-1000}
MEM_N=${MEM_N:-1000000}
FLOOR_N=${FLOOR_N:-5000}
FAULTLINE=${FAULTLINE:-$BUILD/bin/faultline}
AMQPBENCH=${AMQPBENCH:-$BUILD/bin/amqpbench}
TCPBENCH=${TCPBENCH:-$BUILD/bin/tcpbench}
RABBITMQ_SERVER=${RABBITMQ_SERVER:-/usr/lib/rabbitmq/bin/rabbitmq-server}

die() {
    echo "amqp.sh: $*" >&2
    exit 2
}

for f in "$FAULTLINE" "$AMQPBENCH" "$TCPBENCH"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD), or pass the build dir"
done
[ -x "$RABBITMQ_SERVER" ] || die "$RABBITMQ_SERVER not found (apt-get install rabbitmq-server)"
for t in epmd awk; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install rabbitmq-server)"
done

TMP=$(mktemp -d /tmp/faultline-amqp-bench.XXXXXX) || die "cannot make a temp dir"
PIDS=()

stop_pid() {
    kill "$1" 2>/dev/null
    # bounded: RabbitMQ takes a few seconds to stop; after 30 s it is killed
    local i
    for i in $(seq 300); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Stops every process this script started, by PID, the last started first (RabbitMQ before
# its epmd).
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    stop_all
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

freeport() { "$TCPBENCH" freeport || die "no free port"; }

# start_fake: `faultline fake amqp` on a free port; sets FAKE_PID and FAKE_URL.
start_fake() {
    local out=$TMP/fake.out
    : >"$out"
    "$FAULTLINE" fake amqp --listen 127.0.0.1:0 --quiet >"$out" 2>"$TMP/fake.err" &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    for _ in $(seq 100); do
        grep -q '^amqp://' "$out" && break
        kill -0 "$FAKE_PID" 2>/dev/null || break
        sleep 0.05
    done
    FAKE_URL=$(grep -m1 '^amqp://' "$out") || die "the fake did not start: $(cat "$TMP/fake.err")"
}

# start_rabbit: epmd and RabbitMQ on free loopback ports, state in $TMP/rabbit; sets
# RABBIT_URL, RABBIT_PID (the beam.smp process, for its CPU time) and RABBIT_VERSION.
start_rabbit() {
    local dir=$TMP/rabbit amqp dist epmd_port i
    mkdir -p "$dir/home" "$dir/mnesia" "$dir/log" || die "cannot make $dir"
    echo '[].' >"$dir/enabled_plugins"
    echo '# amqp.sh: defaults' >"$dir/rabbitmq.conf"
    amqp=$(freeport)
    dist=$(freeport)
    epmd_port=$(freeport)
    # our own epmd, so that its PID is known (RabbitMQ would otherwise start one as a daemon)
    epmd -port "$epmd_port" -address 127.0.0.1 >"$TMP/epmd.log" 2>&1 &
    PIDS+=($!)
    env HOME="$dir/home" RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_NODENAME="amqpbench$amqp@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" ERL_EPMD_PORT="$epmd_port" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        "$RABBITMQ_SERVER" >"$TMP/rabbit.out" 2>&1 &
    local script=$!
    PIDS+=("$script")
    RABBIT_URL="amqp://127.0.0.1:$amqp"
    # it accepts connections after about 7 s on a quiet machine
    for i in $(seq 120); do
        "$AMQPBENCH" "$RABBIT_URL" ping 2>/dev/null && break
        kill -0 "$script" 2>/dev/null || die "RabbitMQ did not start: $(tail -5 "$TMP/rabbit.out")"
        sleep 0.5
    done
    "$AMQPBENCH" "$RABBIT_URL" ping || die "RabbitMQ does not answer after 60 s: $(tail -5 "$TMP/rabbit.out")"
    RABBIT_PID=$(ps -o pid= --ppid "$script" | head -1 | tr -d ' ')
    [ -n "$RABBIT_PID" ] || die "cannot find the RabbitMQ process (a child of $script)"
    RABBIT_VERSION=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')
}

cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# CPU time of this script's children, and the broker processes', which are not reaped
# children until they stop.
children_cpu() {
    times >"$TMP/times"
    CHILD_CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$TMP/times")
}

pass() { awk -v ok="$1" 'BEGIN { print (ok ? "pass" : "**FAIL**") }'; }

echo "amqp.sh: build $BUILD; $(nproc) cores; N=$N REPS=$REPS PREFETCH=$PREFETCH ACK_EVERY=$ACK_EVERY WINDOW=$WINDOW; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
START=$(date +%s)
read -r BUSY0 TOTAL0 < <(machine_jiffies)
children_cpu
CHILD0=$CHILD_CPU

start_fake
echo "amqp.sh: starting RabbitMQ" >&2
start_rabbit
echo "amqp.sh: fake $FAKE_URL, RabbitMQ $RABBIT_VERSION $RABBIT_URL (beam.smp $RABBIT_PID)" >&2

FIGS=(publish consume_noack publish2 consume_ack confirms)
declare -A PID_OF=([fake]=$FAKE_PID [rabbit]=$RABBIT_PID) URL_OF=([fake]=$FAKE_URL [rabbit]=$RABBIT_URL)
declare -A VALS CPU RATIOS

# round WHO COUNT: one `amqpbench round`; its figures go to VALS[WHO.FIG] (space-separated)
# and the broker's CPU seconds over it to CPU[WHO].
round() {
    local who=$1 n=$2 out=$TMP/round.out before after f v
    before=$(cpu_s "${PID_OF[$who]}")
    timeout 900 "$AMQPBENCH" "${URL_OF[$who]}" round "$n" "$PREFETCH" "$ACK_EVERY" "$WINDOW" \
        >"$out" 2>"$TMP/round.err" || die "amqpbench round on $who failed: $(cat "$TMP/round.err")"
    after=$(cpu_s "${PID_OF[$who]}")
    LAST_CPU=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.3f", a - b }')
    for f in "${FIGS[@]}"; do
        v=$(sed -n "s/.* $f=\([0-9.]*\).*/\1/p" "$out")
        [ -n "$v" ] || die "amqpbench printed no $f: $(cat "$out")"
        LAST[$f]=$v
    done
}

declare -A LAST
echo "amqp.sh: warm-up, $((N / 4)) messages per figure on each broker" >&2
round fake $((N / 4))
round rabbit $((N / 4))

for r in $(seq "$REPS"); do
    if [ $((r % 2)) = 1 ]; then order=(fake rabbit); else order=(rabbit fake); fi
    declare -A REP=()
    for who in "${order[@]}"; do
        echo "amqp.sh: rep $r/$REPS, $who" >&2
        round "$who" "$N"
        for f in "${FIGS[@]}"; do
            VALS[$who.$f]="${VALS[$who.$f]:-} ${LAST[$f]}"
            REP[$who.$f]=${LAST[$f]}
        done
        CPU[$who]="${CPU[$who]:-} $LAST_CPU"
    done
    for f in "${FIGS[@]}"; do
        RATIOS[$f]="${RATIOS[$f]:-} $(awk -v a="${REP[fake.$f]}" -v b="${REP[rabbit.$f]}" 'BEGIN { printf "%.2f", a / b }')"
    done
    echo "amqp.sh:   fake   $(for f in "${FIGS[@]}"; do printf '%s=%s ' "$f" "${REP[fake.$f]}"; done)" >&2
    echo "amqp.sh:   rabbit $(for f in "${FIGS[@]}"; do printf '%s=%s ' "$f" "${REP[rabbit.$f]}"; done)" >&2
done

# the publish figure is the median of both publish phases of every repetition
med() { echo "$1" | median | awk '{ printf "%.0f", $1 }'; }
med2() { echo "$1" | median | awk '{ printf "%.2f", $1 }'; }
declare -A M
for who in fake rabbit; do
    M[$who.publish]=$(med "${VALS[$who.publish]} ${VALS[$who.publish2]}")
    for f in consume_noack consume_ack confirms; do M[$who.$f]=$(med "${VALS[$who.$f]}"); done
    M[$who.cpu]=$(med2 "${CPU[$who]}")
done
RATIO_PUBLISH=$(med2 "${RATIOS[publish]} ${RATIOS[publish2]}")
RATIO_NOACK=$(med2 "${RATIOS[consume_noack]}")
RATIO_ACK=$(med2 "${RATIOS[consume_ack]}")
RATIO_CONF=$(med2 "${RATIOS[confirms]}")
RATIO_CPU=$(awk -v a="${M[fake.cpu]}" -v b="${M[rabbit.cpu]}" 'BEGIN { printf "%.2f", a / b }')

# The client's ceiling: publishes into the socket buffers of a stopped fake (no reads, no
# wake-ups, no window updates), which no broker read by this client can beat.
FLOOR=()
for r in $(seq "$REPS"); do
    timeout 60 "$AMQPBENCH" "$FAKE_URL" floor "$FLOOR_N" "$FAKE_PID" >"$TMP/floor.out" 2>&1 ||
        die "amqpbench floor failed: $(cat "$TMP/floor.out")"
    FLOOR+=("$(sed -n 's/.*msg_per_s=\([0-9]*\).*/\1/p' "$TMP/floor.out")")
done

stop_all

# ------------------------------------------------------------ memory ----

start_fake
"$AMQPBENCH" "$FAKE_URL" fill 0 amqpbench-mem >/dev/null || die "amqpbench fill failed"
sleep 0.2
RSS0=$(rss_kb "$FAKE_PID")
echo "amqp.sh: memory, $MEM_N messages queued in a fresh fake (VmRSS $RSS0 kB before)" >&2
timeout 600 "$AMQPBENCH" "$FAKE_URL" fill "$MEM_N" amqpbench-mem >"$TMP/fill.out" ||
    die "amqpbench fill failed"
sleep 0.2
RSS1=$(rss_kb "$FAKE_PID")
stop_pid "$FAKE_PID"
PER_MSG=$(awk -v a="$RSS1" -v b="$RSS0" -v n="$MEM_N" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
OVERHEAD=$(awk -v p="$PER_MSG" 'BEGIN { printf "%.1f", p - 100 }')

# ------------------------------------------------------------ the table ----

read -r BUSY1 TOTAL1 < <(machine_jiffies)
children_cpu
OTHERS=$(awk -v b="$((BUSY1 - BUSY0))" -v t="$((TOTAL1 - TOTAL0))" -v c="$CHILD_CPU" \
    -v c0="$CHILD0" -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" \
    'BEGIN { o = (b / hz - (c - c0)) / (t / hz); if (o < 0) o = 0; printf "%.0f %% of the machine (%d cores)", 100 * o, n }')

MISSED=0
verdict() {
    local ok
    ok=$(awk "BEGIN { print ($1) ? 1 : 0 }")
    [ "$ok" = 1 ] || MISSED=1
    pass "$ok"
}
echo
echo "| metric | RabbitMQ $RABBIT_VERSION | fake | fake / RabbitMQ | target | result |"
echo "|---|---|---|---|---|---|"
echo "| 1. publish, no confirms (msg/s) | ${M[rabbit.publish]} | ${M[fake.publish]} | ${RATIO_PUBLISH}× | ≥ 3× | $(verdict "$RATIO_PUBLISH >= 3") |"
echo "| 2. consume, no-ack (msg/s) | ${M[rabbit.consume_noack]} | ${M[fake.consume_noack]} | ${RATIO_NOACK}× | ≥ 3× | $(verdict "$RATIO_NOACK >= 3") |"
echo "| 2. consume, acks: prefetch $PREFETCH, ack multiple every $ACK_EVERY (msg/s) | ${M[rabbit.consume_ack]} | ${M[fake.consume_ack]} | ${RATIO_ACK}× | ≥ 3× | $(verdict "$RATIO_ACK >= 3") |"
echo "| 3. publish with confirms, window $WINDOW (msg/s) | ${M[rabbit.confirms]} | ${M[fake.confirms]} | ${RATIO_CONF}× | fake ≥ 20000 | $(verdict "${M[fake.confirms]} >= 20000") |"
echo "| 4. memory per queued 100-byte message, beyond the body (bytes) | — | $OVERHEAD ($PER_MSG in all; VmRSS $RSS0 → $RSS1 kB for $MEM_N) | — | ≤ 256 | $(verdict "$OVERHEAD <= 256") |"
echo "| … the client's ceiling: $FLOOR_N publishes into a stopped fake's socket buffers (msg/s; median of $REPS) | — | $(med "${FLOOR[*]}") | — | — | report only |"
echo "| broker CPU per round of 5 × $N messages (s) | ${M[rabbit.cpu]} | ${M[fake.cpu]} | ${RATIO_CPU}× | — | report only |"
echo
echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - START)) s; other processes used $OTHERS."
echo "Raw (msg/s, rep by rep):"
for who in fake rabbit; do
    for f in "${FIGS[@]}"; do echo "    $who $f:${VALS[$who.$f]}"; done
    echo "    $who broker CPU s per round:${CPU[$who]}"
done
echo "    ratios publish:${RATIOS[publish]} publish2:${RATIOS[publish2]} consume_noack:${RATIOS[consume_noack]} consume_ack:${RATIOS[consume_ack]} confirms:${RATIOS[confirms]}"
echo "    client ceiling (msg/s): ${FLOOR[*]}"
echo "    fill: $(cat "$TMP/fill.out")"
exit $MISSED

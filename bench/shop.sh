#!/usr/bin/env bash
# bench/shop.sh: the shop benchmark (issue 7). One users and one gateway (USERS_ADDR static,
# no Consul, OTEL_SDK_DISABLED=true), loaded with wrk over HTTP/1.1 keep-alive:
#
#   1. gateway POST /users ({"name","email"} → shop.Users/CreateUser over gRPC → 201)
#                                                                          >= 30,000 req/s
#   2. the anchor, in the same run: gateway GET /healthz (the same HTTP server and loop,
#      no gRPC) — the gateway's ceiling on this machine; the table gives POST ÷ healthz
#   3. idle memory (VmRSS: the target's measure) of users, orders, payments, gateway and
#      greeter, each fresh and idle 3 s, wired as in the shop scenarios: registered with
#      `faultline fake consul` (checks every 100 ms), watching their dependencies there,
#      tracing on (OTLP to a small HTTP sink), orders and payments connected to
#      `faultline fake amqp`                                                 < 5 MiB each
#
# plus the CPU time per POST of the gateway and of users, VmRSS after the load, how much of
# the idle VmRSS is anonymous (RssAnon: the rest is shared libraries' pages), and the
# proportional set size (Pss, /proc/PID/smaps_rollup: shared pages divided among the
# processes mapping them). Each
# repetition starts a fresh users and gateway (users keeps at most 100,000 users in memory
# and answers RESOURCE_EXHAUSTED past that, so a measurement must stay under it: DURATION
# is 2 s by default) and measures both endpoints, the order swapped each time; the table
# gives medians and the median of the per-repetition ratios. Every answer must be 2xx (wrk
# reports the others; the script dies on any). Everything listens on 127.0.0.1 on ports the
# kernel picks; every process it starts is stopped by its PID with SIGTERM.
#
#   bench/shop.sh [BUILD_DIR]      (default: build-bench, else build)
#
# Environment: REPS (default 5), DURATION (wrk seconds per measurement, default 2),
# CONNS (wrk connections, default 32; wrk runs one thread). Exit status: 0 all targets met,
# 1 a target missed, 2 the benchmark could not run.
set -u

die() {
    echo "shop.sh: $*" >&2
    exit 2
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-}
if [ -z "$BUILD" ]; then
    if [ -x "$ROOT/build-bench/bin/gateway" ]; then BUILD=$ROOT/build-bench; else BUILD=$ROOT/build; fi
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build dir ${1:-}"
REPS=${REPS:-5}
DURATION=${DURATION:-2}
CONNS=${CONNS:-32}

for f in users orders payments gateway greeter faultline; do
    [ -x "$BUILD/bin/$f" ] || die "$BUILD/bin/$f not found: build first (cmake --build $BUILD), or pass the build dir"
done
for t in wrk curl awk sort python3; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install wrk curl python3)"
done

TMP=$(mktemp -d /tmp/faultline-shopbench.XXXXXX) || die "cannot make a temp dir"
PIDS=()
# stop PID...: SIGTERM, then wait (bounded: SIGKILL after 5 s); each must exit 0
stop() {
    local pid n
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "$@"; do
        n=0
        while kill -0 "$pid" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] && [ $n -lt 100 ]; do
            sleep 0.05
            n=$((n + 1))
        done
        kill -0 "$pid" 2>/dev/null && [ $n -ge 100 ] && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || echo "shop.sh: pid $pid exited $? after SIGTERM" >&2
    done
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
anon_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
machine_jiffies() { awk '/^cpu / { print $2 + $3 + $4, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

declare -A ADDR PID
# start NAME CMD...: a service that logs "listening on 127.0.0.1:PORT"; ADDR[NAME], PID[NAME].
# WIRING (an array of VAR=value) comes first: section 3 sets Consul and tracing there.
WIRING=(CONSUL_HTTP_ADDR= OTEL_SDK_DISABLED=true)
start() {
    local name=$1 log=$TMP/$1.log
    shift
    env PORT=0 "${WIRING[@]}" INSTANCE_ID="$name" "$@" >"$log" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    for _ in $(seq 100); do
        ADDR[$name]=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$log" 2>/dev/null)
        [ -n "${ADDR[$name]}" ] && return 0
        sleep 0.05
    done
    die "$name did not start: $(tail -3 "$log")"
}

# the POST: one JSON body, the same on every request (users makes a new user each time)
cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"Ada Lovelace","email":"ada@example.com"}'
wrk.headers["Content-Type"] = "application/json"
EOF

# --- 3. idle memory, every service fresh, wired as in the shop scenarios ---------------------
# wait_line FILE SED-EXPR: the first line of FILE that SED-EXPR prints (5 s at most)
wait_line() {
    local v
    for _ in $(seq 100); do
        v=$(sed -n "$2" "$1" 2>/dev/null | head -n1)
        [ -n "$v" ] && { echo "$v"; return 0; }
        sleep 0.05
    done
    return 1
}
"$BUILD/bin/faultline" fake amqp --listen 127.0.0.1:0 >"$TMP/amqp.out" 2>"$TMP/amqp.err" &
AMQP_PID=$!
PIDS+=($!)
"$BUILD/bin/faultline" fake consul --listen 127.0.0.1:0 --quiet >"$TMP/consul.out" 2>"$TMP/consul.err" &
CONSUL_PID=$!
PIDS+=($!)
# the OTLP sink: answers every POST 200 (idle services export little or nothing)
python3 -c '
import http.server, signal, sys
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()' >"$TMP/otlp.out" 2>"$TMP/otlp.err" &
OTLP_PID=$!
PIDS+=($!)
AMQP=$(wait_line "$TMP/amqp.out" 's|^amqp://\(127\.0\.0\.1:[0-9]*\)$|\1|p') || die "the fake broker did not start: $(cat "$TMP/amqp.err")"
CONSUL=$(wait_line "$TMP/consul.out" 's|^node-1 http://\(127\.0\.0\.1:[0-9]*\)$|\1|p') || die "the fake Consul did not start: $(cat "$TMP/consul.err")"
OTLP=$(wait_line "$TMP/otlp.out" 's|^\([0-9][0-9]*\)$|\1|p') || die "the OTLP sink did not start: $(cat "$TMP/otlp.err")"
AMQP_URL="amqp://guest:guest@$AMQP"
WIRING=(CONSUL_HTTP_ADDR="$CONSUL" SVC_CHECK_INTERVAL=100ms OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP")
start users "$BUILD/bin/users"
start orders env AMQP_URL="$AMQP_URL" ORDERS_DB=:memory: "$BUILD/bin/orders"
start payments env AMQP_URL="$AMQP_URL" PAYMENTS_DB=:memory: "$BUILD/bin/payments"
start gateway "$BUILD/bin/gateway"
start greeter "$BUILD/bin/greeter"
curl -fsS -o /dev/null "http://${ADDR[gateway]}/healthz" || die "gateway /healthz does not answer"
sleep 3
declare -A RSS_IDLE ANON_IDLE PSS_IDLE
RSS_OK=1
for s in users orders payments gateway greeter; do
    RSS_IDLE[$s]=$(rss_kib "${PID[$s]}")
    ANON_IDLE[$s]=$(anon_kib "${PID[$s]}")
    PSS_IDLE[$s]=$(pss_kib "${PID[$s]}")
    [ "${RSS_IDLE[$s]}" -lt 5120 ] || RSS_OK=0
done
for s in orders payments; do
    grep -q 'connected to the broker' "$TMP/$s.log" || die "$s did not connect to the fake broker: $(tail -n2 "$TMP/$s.log")"
done
for s in users orders payments gateway; do
    grep -q 'registered with consul' "$TMP/$s.log" || die "$s did not register with the fake Consul: $(tail -n2 "$TMP/$s.log")"
done
grep -q 'calls users through consul' "$TMP/gateway.log" || die "the gateway does not watch users in Consul"
curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"name":"m","email":"m@x"}' \
    "http://${ADDR[gateway]}/users" || die "POST /users through Consul fails after the idle measurement"
stop "${PID[gateway]}" "${PID[users]}" "${PID[orders]}" "${PID[payments]}" "${PID[greeter]}" "$AMQP_PID" "$CONSUL_PID" "$OTLP_PID"
PIDS=()
WIRING=(CONSUL_HTTP_ADDR= OTEL_SDK_DISABLED=true)

# --- 1 and 2: wrk against a fresh users + gateway per repetition ----------------------------
# load PATH [SCRIPT]: one wrk run; prints "REQ_PER_S P50_US P99_US"; dies on errors or non-2xx.
load() {
    local out=$TMP/wrk.out
    if [ $# -gt 1 ]; then
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$2" "http://${ADDR[gateway]}$1" >"$out" 2>&1
    else
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://${ADDR[gateway]}$1" >"$out" 2>&1
    fi || die "wrk failed: $(tail -3 "$out")"
    grep -q 'Non-2xx\|Socket errors' "$out" && die "wrk saw errors or non-2xx answers on $1: $(grep 'Non-2xx\|Socket errors\|requests in' "$out")"
    awk '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
        /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /^Requests\/sec:/ { rps = $2 }
        END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }' "$out"
}

declare -A RPS P50 P99
RATIOS=""
GW_CPU=""
US_CPU=""
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "shop.sh: $(nproc) cores; load average $LOAD_BEFORE; $REPS reps of ${DURATION}s, wrk -t1 -c$CONNS" >&2
read -r BUSY0 TOTAL0 < <(machine_jiffies)
for rep in $(seq "$REPS"); do
    start users "$BUILD/bin/users"
    start gateway env USERS_ADDR="${ADDR[users]}" "$BUILD/bin/gateway"
    curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d '{"name":"warm","email":"w@x"}' "http://${ADDR[gateway]}/users" || die "POST /users fails before the load"
    if [ $((rep % 2)) = 1 ]; then order="post healthz"; else order="healthz post"; fi
    declare -A this
    for what in $order; do
        g0=$(cpu_s "${PID[gateway]}")
        u0=$(cpu_s "${PID[users]}")
        if [ "$what" = post ]; then
            read -r r p5 p9 < <(load /users "$TMP/post.lua") || exit 2
            GW_CPU="$GW_CPU $(awk -v a="$g0" -v b="$(cpu_s "${PID[gateway]}")" -v n="$r" -v d="$DURATION" 'BEGIN { printf "%.2f", (b - a) * 1e6 / (n * d) }')"
            US_CPU="$US_CPU $(awk -v a="$u0" -v b="$(cpu_s "${PID[users]}")" -v n="$r" -v d="$DURATION" 'BEGIN { printf "%.2f", (b - a) * 1e6 / (n * d) }')"
        else
            read -r r p5 p9 < <(load /healthz) || exit 2
        fi
        [ -n "$r" ] || die "no figure for $what"
        RPS[$what]="${RPS[$what]:-} $r"
        P50[$what]="${P50[$what]:-} $p5"
        P99[$what]="${P99[$what]:-} $p9"
        this[$what]=$r
        echo "  rep $rep $what: $r req/s, p50 $p5 us, p99 $p9 us" >&2
    done
    RATIOS="$RATIOS $(awk -v a="${this[post]}" -v b="${this[healthz]}" 'BEGIN { printf "%.3f", a / b }')"
    curl -fsS -o /dev/null "http://${ADDR[gateway]}/users/users.1" || die "GET /users/users.1 fails after the load"
    sleep 1
    RSS_GW_AFTER=$(rss_kib "${PID[gateway]}")
    RSS_US_AFTER=$(rss_kib "${PID[users]}")
    stop "${PID[gateway]}" "${PID[users]}"
    PIDS=()
done
read -r BUSY1 TOTAL1 < <(machine_jiffies)
times >"$TMP/times" # ours, wrk's and curl's CPU: the children this shell waited for
KIDS=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); t += p[1] * 60 + p[2] } print t }' "$TMP/times")
OTHERS=$(awk -v b="$((BUSY1 - BUSY0))" -v t="$((TOTAL1 - TOTAL0))" -v c="$KIDS" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { o = (b / hz - c) / (t / hz); if (o < 0) o = 0; printf "%.0f", 100 * o }')
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

med() { echo "$1" | median; }
r_post=$(med "${RPS[post]}"); r_hz=$(med "${RPS[healthz]}"); ratio=$(med "$RATIOS")
ok_tp=$(awk -v r="$r_post" 'BEGIN { print (r >= 30000) }')
MISSED=0
for v in "$ok_tp" "$RSS_OK"; do [ "$v" = 1 ] || MISSED=1; done
verdict() { if [ "$1" = 1 ]; then echo pass; else echo "**FAIL**"; fi; }

echo
echo "| metric | POST /users (HTTP → gRPC users) | GET /healthz (no gRPC) | POST ÷ healthz | target | result |"
echo "|---|---|---|---|---|---|"
echo "| throughput, wrk -t1 -c$CONNS (req/s) | $r_post | $r_hz | $ratio | POST ≥ 30,000 | $(verdict "$ok_tp") |"
echo "| latency p50 (µs) | $(med "${P50[post]}") | $(med "${P50[healthz]}") | — | — | report only |"
echo "| latency p99 (µs) | $(med "${P99[post]}") | $(med "${P99[healthz]}") | — | — | report only |"
echo "| CPU per POST: gateway / users (µs) | $(med "$GW_CPU") / $(med "$US_CPU") | — | — | — | report only |"
echo
echo "| idle VmRSS (MiB) | users | orders | payments | gateway | greeter | target | result |"
echo "|---|---|---|---|---|---|---|---|"
echo "| fresh, idle 3 s (Consul, tracing) | $(mib "${RSS_IDLE[users]}") | $(mib "${RSS_IDLE[orders]}") | $(mib "${RSS_IDLE[payments]}") | $(mib "${RSS_IDLE[gateway]}") | $(mib "${RSS_IDLE[greeter]}") | < 5 each | $(verdict "$RSS_OK") |"
echo "| … of which anonymous (RssAnon), fresh | $(mib "${ANON_IDLE[users]}") | $(mib "${ANON_IDLE[orders]}") | $(mib "${ANON_IDLE[payments]}") | $(mib "${ANON_IDLE[gateway]}") | $(mib "${ANON_IDLE[greeter]}") | — | report only |"
echo "| … proportional set size (Pss), fresh | $(mib "${PSS_IDLE[users]}") | $(mib "${PSS_IDLE[orders]}") | $(mib "${PSS_IDLE[payments]}") | $(mib "${PSS_IDLE[gateway]}") | $(mib "${PSS_IDLE[greeter]}") | — | report only |"
echo "| users and gateway after the last repetition (no Consul) | $(mib "$RSS_US_AFTER") | — | — | $(mib "$RSS_GW_AFTER") | — | — | report only |"
echo
echo "Medians of $REPS repetitions (wrk -t1 -c$CONNS --latency, ${DURATION} s each, a fresh users" \
    "and gateway per repetition, the two endpoints alternating first); the ratio is the median" \
    "of the per-repetition ratios. Our services, wrk and curl aside, other processes used" \
    "$OTHERS % of the machine ($(nproc) cores) during the load; load average before:" \
    "$LOAD_BEFORE, after: $LOAD_AFTER."
echo "Raw req/s: POST${RPS[post]}; healthz${RPS[healthz]}; ratios$RATIOS."
exit $MISSED

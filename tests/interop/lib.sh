# Shared helpers for the interop tests, sourced by every tests/interop/test_*.sh after the
# integration tests' tests/integration/lib.sh (ok, fail, expect_*, wait_until, it_track,
# it_done...). POSIX sh (dash). What a test starts here is stopped by PID: by the helpers
# below when the test goes well, by it_cleanup (SIGKILL) when it exits early.

# skip WHY: the test cannot run here (a client library is missing); says so and passes.
skip() {
    echo "SKIP: $*"
    exit 0
}

# exited PID: gone, or a zombie waiting for this shell's `wait`.
exited() {
    _st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -z "$_st" ] || [ "$_st" = Z ]
}

# stop_pid PID WHAT: SIGTERM, then (bounded) its exit status must be 0; SIGKILL if it hangs.
stop_pid() {
    kill -TERM "$1" 2>/dev/null
    if wait_until 5 exited "$1"; then
        wait "$1"
        expect_eq "$2: exit status after SIGTERM" "$?" 0
    else
        fail "$2 still runs 5s after SIGTERM"
        kill -KILL "$1" 2>/dev/null
        wait "$1"
    fi
}

# start_fake NODES: a standalone fake Consul with NODES agents on 127.0.0.1 (ports picked by
# the kernel), stdout in $FL_TMP/fake.out, events in $FL_TMP/fake.err. Sets FAKE_PID and
# AGENT1..AGENTn (http://127.0.0.1:PORT) and ADDR1..ADDRn (127.0.0.1:PORT); exits the test
# if the agents do not all print their address within 5 s.
start_fake() {
    "$FL" fake consul --listen 127.0.0.1:0 --nodes "$1" >"$FL_TMP/fake.out" 2>"$FL_TMP/fake.err" &
    FAKE_PID=$!
    it_track "$FAKE_PID"
    _want=$1
    _fake_ready() {
        [ "$(grep -c '^node-[0-9]* http://127\.0\.0\.1:[0-9]*$' "$FL_TMP/fake.out")" -ge "$_want" ]
    }
    if ! wait_until 5 _fake_ready; then
        fail "the fake Consul did not print $_want agent addresses"
        show "$FL_TMP/fake.out"
        show "$FL_TMP/fake.err"
        it_done
    fi
    _i=1
    while [ "$_i" -le "$1" ]; do
        _url=$(sed -n "s|^node-$_i \(http://127\.0\.0\.1:[0-9]*\)$|\1|p" "$FL_TMP/fake.out")
        eval "AGENT$_i=\$_url"
        eval "ADDR$_i=\${_url#http://}"
        _i=$((_i + 1))
    done
    ok "the fake Consul listens: $(tr '\n' ' ' <"$FL_TMP/fake.out")"
}

# stop_fake: SIGTERM, exit 0, and nothing alarming on its stderr.
stop_fake() {
    stop_pid "$FAKE_PID" "the fake Consul"
    expect_no_grep 'Sanitizer|runtime error|ERROR|leak' "$FL_TMP/fake.err"
}

# start_echo NAME VAR=VALUE...: an echo-svc on 127.0.0.1 (a free port) that stays out of
# Consul, with those variables; ECHO_PID and ECHO_ADDR (127.0.0.1:PORT) once it listens.
start_echo() {
    _log="$FL_TMP/$1.log"
    shift
    env PORT=0 ECHO_REGISTER=0 CONSUL_HTTP_ADDR= "$@" "$FL_BIN_DIR/echo-svc" >"$_log" 2>&1 &
    ECHO_PID=$!
    it_track "$ECHO_PID"
    if ! wait_until 5 grep -q 'listening on' "$_log"; then
        fail "echo-svc did not start"
        show "$_log"
        it_done
    fi
    ECHO_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$_log")
}

# start_svc NAME BIN VAR=VALUE...: one of our services (FL_BIN_DIR/BIN) on 127.0.0.1, a free
# port, out of Consul, without tracing, with those variables; its log in $FL_TMP/NAME.log.
# Sets SVC_PID and SVC_ADDR (127.0.0.1:PORT) once it logs "listening on"; exits the test
# if it does not within 5 s.
start_svc() {
    _log="$FL_TMP/$1.log"
    _bin=$2
    shift 2
    env PORT=0 CONSUL_HTTP_ADDR= OTEL_SDK_DISABLED=true "$@" "$FL_BIN_DIR/$_bin" >"$_log" 2>&1 &
    SVC_PID=$!
    it_track "$SVC_PID"
    if ! wait_until 5 grep -q 'listening on' "$_log"; then
        fail "$_bin did not start"
        show "$_log"
        it_done
    fi
    SVC_ADDR=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$_log")
}

# count_checks FILE: adds the "ok: " and "FAIL: " lines a client script printed to this
# test's tally (the script's own lines were already shown).
count_checks() {
    _ok=$(grep -c '^ok: ' "$1")
    _bad=$(grep -c '^FAIL: ' "$1")
    IT_CHECKS=$((IT_CHECKS + _ok + _bad))
    IT_FAILS=$((IT_FAILS + _bad))
}

# --- AMQP: a real RabbitMQ and the fake broker ---------------------------------------------

# port_in_use PORT: some IPv4 or IPv6 socket (any state) has PORT as its local port.
port_in_use() {
    _hex=$(printf '%04X' "$1")
    awk -v p=":$_hex" 'NR > 1 && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# spare_port: a loopback port below the kernel's ephemeral range (so no outgoing connection
# takes it meanwhile) that nothing uses now and that this test has not handed out yet.
spare_port() {
    _n=0
    while [ "$_n" -lt 200 ]; do
        _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
        case " ${SPARE_PORTS:-} " in *" $_p "*) _n=$((_n + 1)) && continue ;; esac
        if ! port_in_use "$_p"; then
            SPARE_PORTS="${SPARE_PORTS:-} $_p"
            echo "$_p"
            return 0
        fi
        _n=$((_n + 1))
    done
    return 1
}

# pids_named NAME: PIDs of the processes whose /proc comm is NAME.
pids_named() {
    awk -v nm="$1" '$0 == nm { split(FILENAME, a, "/"); print a[3] }' /proc/[0-9]*/comm 2>/dev/null
}

# listener_pid PORT NAME: the PID of the process called NAME (its /proc comm) that holds a
# socket listening on 127.0.0.1:PORT; empty if there is none. Found through /proc: the
# listening socket's inode in /proc/net/tcp, then the NAME process with that inode open.
listener_pid() {
    _hex=$(printf '%04X' "$1")
    _inode=$(awk -v a="0100007F:$_hex" '$2 == a && $4 == "0A" { print $10; exit }' /proc/net/tcp)
    [ -n "$_inode" ] || return 0
    for _p in $(pids_named "$2"); do
        for _fd in /proc/"$_p"/fd/*; do
            if [ "$(readlink "$_fd" 2>/dev/null)" = "socket:[$_inode]" ]; then
                echo "$_p"
                return 0
            fi
        done
    done
}

# child_pid PID NAME: a child of PID whose comm is NAME (empty if none).
child_pid() {
    for _p in $(pids_named "$2"); do
        if [ "$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$_p/status" 2>/dev/null)" = "$1" ]; then
            echo "$_p"
            return 0
        fi
    done
}

# rmq_listening: RabbitMQ's AMQP port is open and its boot is over (the listener opens as
# the last boot step, and "completed" is printed once it is done).
rmq_listening() {
    [ -n "$(listener_pid "$RMQ_PORT" beam.smp)" ] &&
        grep -q 'Starting broker\.\.\. completed' "$RMQ_DIR/server.out"
}

rmq_ready_or_gone() {
    [ -n "$RMQ_BEAM_PID" ] || RMQ_BEAM_PID=$(child_pid "$RMQ_PID" beam.smp)
    rmq_listening || exited "$RMQ_PID"
}

# start_rabbitmq: a real RabbitMQ (Debian's rabbitmq-server) of this test's own, as
# DESIGN.md "Dependencies" says: the package's /usr/lib/rabbitmq/bin/rabbitmq-server (not
# the sbin wrapper, which switches user and uses the system state), every path in
# $FL_TMP/rabbitmq, no plugins, AMQP, Erlang distribution and epmd on spare loopback ports
# and a node name of its own, so it touches nothing outside the test. Waits (30 s at most)
# until it accepts AMQP connections. Sets RMQ_URL (amqp://guest:guest@127.0.0.1:PORT),
# RMQ_PORT, RMQ_PID (the script, which stops the VM on SIGTERM and exits 0), RMQ_BEAM_PID,
# RMQ_EPMD_PID and RMQ_START_MS (how long startup took). Returns 1 if it does not start.
# RMQ_EXTRA_CONF, if set, is added to its rabbitmq.conf (to see a check fail against a
# broker that behaves differently, e.g. "frame_max = 8192").
start_rabbitmq() {
    RMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
    RMQ_DIR="$FL_TMP/rabbitmq"
    RMQ_BEAM_PID=""
    RMQ_EPMD_PID=""
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log" || return 1
    RMQ_PORT=$(spare_port) && RMQ_DIST_PORT=$(spare_port) && RMQ_EPMD_PORT=$(spare_port) || {
        fail "no spare loopback port for RabbitMQ"
        return 1
    }
    echo '[].' >"$RMQ_DIR/enabled_plugins"
    cat >"$RMQ_DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$RMQ_PORT
log.file.level = info
log.console = false
${RMQ_EXTRA_CONF:-}
CONF
    _t0=$(now_ms)
    # The distribution listener binds 127.0.0.1 only (inet_dist_use_interface); epmd binds
    # ERL_EPMD_ADDRESS (plus ::1, which it always adds). It runs in $RMQ_DIR, and a VM that
    # fails to boot writes its erl_crash.dump there, not into the caller's folder.
    env HOME="$RMQ_DIR/home" \
        RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia" \
        RABBITMQ_LOG_BASE="$RMQ_DIR/log" \
        RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$RMQ_PORT" \
        RABBITMQ_DIST_PORT="$RMQ_DIST_PORT" \
        RABBITMQ_NODENAME="fl$$-$RMQ_PORT@localhost" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        ERL_EPMD_PORT="$RMQ_EPMD_PORT" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        ERL_CRASH_DUMP="$RMQ_DIR/erl_crash.dump" \
        sh -c 'cd "$1" && exec "$2"' sh "$RMQ_DIR" "$RMQ_SERVER" >"$RMQ_DIR/server.out" 2>&1 </dev/null &
    RMQ_PID=$!
    it_track "$RMQ_PID"
    wait_until 60 rmq_ready_or_gone
    [ -n "$RMQ_BEAM_PID" ] && it_track "$RMQ_BEAM_PID"
    RMQ_EPMD_PID=$(listener_pid "$RMQ_EPMD_PORT" epmd)
    [ -n "$RMQ_EPMD_PID" ] && it_track "$RMQ_EPMD_PID"
    if ! rmq_listening; then
        fail "RabbitMQ does not accept AMQP on 127.0.0.1:$RMQ_PORT after 60 s"
        show "$RMQ_DIR/server.out"
        show "$(ls "$RMQ_DIR"/log/*.log 2>/dev/null | head -n 1)" 60
        stop_rabbitmq
        return 1
    fi
    RMQ_START_MS=$(($(now_ms) - _t0))
    RMQ_URL="amqp://guest:guest@127.0.0.1:$RMQ_PORT"
    ok "RabbitMQ $(rmq_version) listens on 127.0.0.1:$RMQ_PORT after $RMQ_START_MS ms (pid $RMQ_PID, VM $RMQ_BEAM_PID, epmd ${RMQ_EPMD_PID:-?} on $RMQ_EPMD_PORT)"
}

rmq_version() {
    dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '(version unknown)'
}

# gone PID: no such process, or a zombie (one that is not our child is reaped by init).
gone() {
    exited "$1"
}

# stop_rabbitmq: SIGTERM to the script (it stops the VM cleanly and exits 0; 20 s at most),
# then the epmd the VM started, by the PID found at start. Both must be gone afterwards.
stop_rabbitmq() {
    [ -n "${RMQ_PID:-}" ] || return 0
    kill -TERM "$RMQ_PID" 2>/dev/null
    if wait_until 20 exited "$RMQ_PID"; then
        wait "$RMQ_PID"
        expect_eq "RabbitMQ: exit status after SIGTERM" "$?" 0
    else
        fail "RabbitMQ still runs 20 s after SIGTERM"
        kill -KILL "$RMQ_PID" 2>/dev/null
        wait "$RMQ_PID"
    fi
    if [ -n "$RMQ_BEAM_PID" ] && ! wait_until 5 gone "$RMQ_BEAM_PID"; then
        fail "RabbitMQ's VM (pid $RMQ_BEAM_PID) outlived its script"
        kill -KILL "$RMQ_BEAM_PID" 2>/dev/null
    fi
    if [ -n "$RMQ_EPMD_PID" ]; then
        kill -TERM "$RMQ_EPMD_PID" 2>/dev/null
        if ! wait_until 5 gone "$RMQ_EPMD_PID"; then
            fail "epmd (pid $RMQ_EPMD_PID) still runs 5 s after SIGTERM"
            kill -KILL "$RMQ_EPMD_PID" 2>/dev/null
        fi
    fi
    _left=$(listener_pid "$RMQ_EPMD_PORT" epmd)$(listener_pid "$RMQ_PORT" beam.smp)
    expect_eq "RabbitMQ and its epmd are gone (listeners left)" "$_left" ""
    RMQ_PID=""
}

# start_fake_amqp [DATA_DIR]: the standalone fake broker on 127.0.0.1 (a port picked by the
# kernel), optionally keeping durable state in DATA_DIR. Its contract: it prints exactly one
# line, amqp://127.0.0.1:PORT, on stdout once it listens; event lines go to stderr; SIGTERM
# makes it exit 0; guest/guest and the vhost "/" work by default. Stdout in
# $FL_TMP/fake_amqp.out, stderr in $FL_TMP/fake_amqp.err. Sets FAKE_AMQP_PID and
# FAKE_AMQP_URL (amqp://guest:guest@127.0.0.1:PORT; no path, so the vhost is "/": with a
# trailing slash librabbitmq asks for the vhost ""). Returns 1 if it does not print its
# address within 5 s.
start_fake_amqp() {
    if [ $# -gt 0 ]; then
        "$FL" fake amqp --listen 127.0.0.1:0 --data "$1" >"$FL_TMP/fake_amqp.out" 2>"$FL_TMP/fake_amqp.err" &
    else
        "$FL" fake amqp --listen 127.0.0.1:0 >"$FL_TMP/fake_amqp.out" 2>"$FL_TMP/fake_amqp.err" &
    fi
    FAKE_AMQP_PID=$!
    it_track "$FAKE_AMQP_PID"
    _fake_amqp_up() {
        grep -q '^amqp://127\.0\.0\.1:[0-9]*$' "$FL_TMP/fake_amqp.out" || exited "$FAKE_AMQP_PID"
    }
    wait_until 5 _fake_amqp_up
    _addr=$(sed -n 's|^amqp://\(127\.0\.0\.1:[0-9]*\)$|\1|p' "$FL_TMP/fake_amqp.out")
    if [ -z "$_addr" ] || [ "$(wc -l <"$FL_TMP/fake_amqp.out")" -ne 1 ]; then
        fail "the fake broker did not print exactly one line amqp://127.0.0.1:PORT"
        show "$FL_TMP/fake_amqp.out"
        show "$FL_TMP/fake_amqp.err"
        kill -KILL "$FAKE_AMQP_PID" 2>/dev/null
        wait "$FAKE_AMQP_PID" 2>/dev/null
        FAKE_AMQP_PID=""
        return 1
    fi
    FAKE_AMQP_URL="amqp://guest:guest@$_addr"
    ok "the fake broker listens: $(cat "$FL_TMP/fake_amqp.out")"
}

# stop_fake_amqp: SIGTERM, exit 0, and nothing alarming on its stderr.
stop_fake_amqp() {
    [ -n "${FAKE_AMQP_PID:-}" ] || return 0
    stop_pid "$FAKE_AMQP_PID" "the fake broker"
    # reply names such as FRAME_ERROR are the broker's events, not its faults
    expect_no_grep 'Sanitizer|runtime error|LeakSanitizer|internal error' "$FL_TMP/fake_amqp.err"
    FAKE_AMQP_PID=""
}

# --- AMQP client transcripts ------------------------------------------------------------------
# Each client script (amqp_pika.py, amqp_node.js, amqp_tools.sh, amqp_go.sh) takes a broker
# URL and prints a normalized transcript; the same script against RabbitMQ and against the
# fake must print the same. tests/interop/amqp_golden/CLIENT.txt is RabbitMQ's transcript.

AMQP_CLIENTS="pika node tools go"
AMQP_GOLDEN="$FL_SOURCE_DIR/tests/interop/amqp_golden"

# amqp_client_missing CLIENT: why CLIENT cannot run here (empty when it can).
amqp_client_missing() {
    case $1 in
    pika) /usr/bin/python3 -c 'import pika' 2>/dev/null || echo "python3-pika is not installed for /usr/bin/python3" ;;
    node)
        command -v node >/dev/null 2>&1 || echo "node is not installed"
        [ -f "$FL_SOURCE_DIR/tests/interop/node_modules/amqplib/package.json" ] ||
            echo "amqplib is missing from tests/interop/node_modules (make deps runs npm ci)"
        ;;
    tools) command -v amqp-publish >/dev/null 2>&1 || echo "amqp-tools is not installed" ;;
    go)
        command -v go >/dev/null 2>&1 || echo "go is not installed"
        [ -d /usr/share/gocode/src/github.com/rabbitmq/amqp091-go ] ||
            echo "golang-github-rabbitmq-amqp091-go-dev is not installed"
        ;;
    esac
}

# amqp_go_build: builds the seed's Go program (GOPATH mode, Debian's amqp091-go) into
# $FL_TMP/seedamqp, its build cache kept next to the bin folder so later runs are quick.
amqp_go_build() {
    mkdir -p "$FL_BIN_DIR/../gocache"
    _t0=$(now_ms)
    if (cd "$FL_SOURCE_DIR/tests/interop/go/seedamqp" &&
        env GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="$FL_BIN_DIR/../gocache" \
            timeout -k 5 240 go build -o "$FL_TMP/seedamqp" .) >"$FL_TMP/go-build.log" 2>&1; then
        ok "built the seed's Go send/receive program in $(($(now_ms) - _t0)) ms"
        return 0
    fi
    fail "go build of tests/interop/go/seedamqp failed"
    show "$FL_TMP/go-build.log"
    return 1
}

# amqp_client CLIENT URL OUT: runs one client script against URL (bounded), its transcript
# in OUT and its stderr in OUT.err; sets RC.
amqp_client() {
    _d="$FL_SOURCE_DIR/tests/interop"
    case $1 in
    pika) timeout -k 5 120 /usr/bin/python3 "$_d/amqp_pika.py" "$2" >"$3" 2>"$3.err" ;;
    node) timeout -k 5 90 node "$_d/amqp_node.js" "$2" >"$3" 2>"$3.err" ;;
    tools) timeout -k 5 90 sh "$_d/amqp_tools.sh" "$2" >"$3" 2>"$3.err" ;;
    go) timeout -k 5 60 sh "$_d/amqp_go.sh" "$2" "$FL_TMP/seedamqp" >"$3" 2>"$3.err" ;;
    esac
    RC=$?
}

# expect_same_transcript WHAT GOT WANT: GOT and WANT are equal; the diff when not.
expect_same_transcript() {
    if cmp -s "$2" "$3"; then
        ok "$1: the transcripts are the same ($(wc -l <"$3") lines)"
    else
        fail "$1: the transcripts differ (- $(basename "$3"), + $(basename "$2")):"
        diff -u "$3" "$2" | head -n 80 | sed 's/^/  | /'
    fi
}

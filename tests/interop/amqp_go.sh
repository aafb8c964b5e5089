#!/bin/sh
# AMQP 0-9-1 interop and differential client: the seed's Go send/receive program
# (tests/interop/go/seedamqp, built with Debian's github.com/rabbitmq/amqp091-go).
#
# Usage: amqp_go.sh AMQP_URL SEEDAMQP_BINARY
#
# Two sends, then a receiver that must log both, then a third send it must log too, as the
# seed's tutorial runs them. The receiver runs until stopped (the seed waits for ^C): it is
# stopped by its PID once it has logged three messages, or after 10 s. Prints the programs'
# log lines without their timestamps, one per line, in order; the same against a real
# RabbitMQ and the fake broker (tests/interop/test_amqp_diff.sh).
set -u
URL=${1:?usage: amqp_go.sh AMQP_URL SEEDAMQP_BINARY}
BIN=${2:?usage: amqp_go.sh AMQP_URL SEEDAMQP_BINARY}
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

# the log package's "2006/01/02 15:04:05 " prefix is dropped
strip() {
    sed 's|^[0-9]\{4\}/[0-9]\{2\}/[0-9]\{2\} [0-9:]\{8\} ||'
}

# received N: the receiver has logged N messages (bounded by the caller)
received() {
    [ "$(grep -c 'Received a message' "$LOG")" -ge "$1" ]
}

wait_received() {
    n=0
    while ! received "$1" && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
}

for i in 1 2; do
    AMQP_URL=$URL timeout -k 2 10 "$BIN" send 2>&1 | strip | sed "s/^/send $i: /"
done
AMQP_URL=$URL "$BIN" receive >"$LOG" 2>&1 &
rpid=$!
wait_received 2
AMQP_URL=$URL timeout -k 2 10 "$BIN" send 2>&1 | strip | sed "s/^/send 3: /"
wait_received 3
running=no
kill -0 "$rpid" 2>/dev/null && running=yes
kill -TERM "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
strip <"$LOG" | sed 's/^/receive: /'
echo "receive: still running when stopped: $running"

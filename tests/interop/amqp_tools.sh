#!/bin/sh
# AMQP 0-9-1 interop and differential client: librabbitmq's command-line tools (Debian's
# amqp-tools: amqp-declare-queue, amqp-publish, amqp-get, amqp-consume, amqp-delete-queue).
#
# Usage: amqp_tools.sh AMQP_URL [PREFIX]
#
# A round trip as a shell user makes one: declare a durable and a server-named queue, publish
# (default exchange, amq.direct, amq.fanout, persistent, content type, headers, a 1 MiB body
# read from stdin), get until empty, consume a counted number of messages with and without
# acks and with a prefetch, and the tools' reports of broker errors (a missing queue, a
# missing exchange, an unknown vhost, a wrong password). Prints a normalized transcript on
# stdout, one line per result, with each tool's exit status; against a real RabbitMQ and
# against the fake broker it must be the same (tests/interop/test_amqp_diff.sh). Queue names
# start with PREFIX (default "fltl-"; it must occur in no other text), left out of the
# transcript; amq.gen-... names become amq.gen-*. Every tool runs under `timeout`.
set -u
URL=${1:?usage: amqp_tools.sh AMQP_URL [PREFIX]}
P=${2:-fltl-}
T=10 # seconds any one tool may take

norm() {
    sed -e "s/amq\.gen-[A-Za-z0-9_-]*/amq.gen-*/g" -e "s/$P//g" -e "s|$URL|URL|g"
}

# step LABEL CMD...: runs CMD bounded; prints its stdout (normalized, one line each), its
# stderr and its exit status.
step() {
    _label=$1
    shift
    _out=$(timeout -k 2 "$T" "$@" 2>/tmp/amqp_tools.$$.err)
    _rc=$?
    [ -z "$_out" ] || printf "%s\n" "$_out" | norm | sed "s|^|$_label: |"
    norm </tmp/amqp_tools.$$.err | sed "s|^|$_label (stderr): |"
    echo "$_label: exit $_rc"
}
trap 'rm -f /tmp/amqp_tools.$$.err' EXIT

echo "== declare"
step "declare durable" amqp-declare-queue --url "$URL" -q "${P}work" -d
step "declare again" amqp-declare-queue --url "$URL" -q "${P}work" -d
step "declare as transient" amqp-declare-queue --url "$URL" -q "${P}work"

echo "== publish and get"
step "publish default" amqp-publish --url "$URL" -r "${P}work" -b "hello one"
step "publish persistent, typed, headers" amqp-publish --url "$URL" -r "${P}work" -p \
    -C application/json -E utf-8 -H "trace: abc" -H "kind: order" -b '{"n":2}'
step "publish empty body" amqp-publish --url "$URL" -r "${P}work" -b ""
head -c 1048576 /dev/zero | tr '\0' 'z' >"/tmp/amqp_tools.$$.big"
step "publish 1 MiB from stdin" sh -c 'amqp-publish --url "$1" -r "$2" <"$3"' sh "$URL" "${P}work" "/tmp/amqp_tools.$$.big"
rm -f "/tmp/amqp_tools.$$.big"
step "get 1" amqp-get --url "$URL" -q "${P}work"
step "get 2" amqp-get --url "$URL" -q "${P}work"
step "get 3 (empty body)" amqp-get --url "$URL" -q "${P}work"
step "get 4 (1 MiB, length)" sh -c 'amqp-get --url "$1" -q "$2" | wc -c' sh "$URL" "${P}work"
step "get from an empty queue" amqp-get --url "$URL" -q "${P}work"

echo "== consume"
for i in 1 2 3 4 5; do
    amqp-publish --url "$URL" -r "${P}work" -b "c$i" || echo "publish c$i failed"
done
# each message body on a line of its own; -c stops after that many
step "consume 2" amqp-consume --url "$URL" -q "${P}work" -c 2 -- sh -c 'cat; echo'
step "consume 2 prefetch 1" amqp-consume --url "$URL" -q "${P}work" -c 2 -p 1 -- sh -c 'cat; echo'
# (no-ack last: without acks the broker pushes everything at once, prefetch or not)
step "consume the last, no-ack" amqp-consume --url "$URL" -q "${P}work" -c 1 -A -- sh -c 'cat; echo'
step "get after consuming all" amqp-get --url "$URL" -q "${P}work"
# a consumer whose command fails: the message is not acked, so it goes back
amqp-publish --url "$URL" -r "${P}work" -b "comes back" || echo "publish failed"
step "consume with a failing command" amqp-consume --url "$URL" -q "${P}work" -c 1 -- sh -c 'cat; echo; exit 3'
step "get after the failed command" amqp-get --url "$URL" -q "${P}work"

echo "== exchanges"
# amqp-consume -e: a server-named exclusive queue bound to the exchange. It says nothing
# once it is bound, so the publisher repeats (every 0.2 s, 10 s at most) until the consumer
# has had its one message and exited; publishes before the binding or after the exit are
# unroutable and dropped.
timeout -k 2 "$T" amqp-consume --url "$URL" -e amq.direct -r "${P}rk" -c 1 -- sh -c 'cat; echo' \
    >"/tmp/amqp_tools.$$.cons" 2>&1 &
cpid=$!
n=0
published=0
while [ "$n" -lt 50 ] && kill -0 "$cpid" 2>/dev/null; do
    timeout -k 2 "$T" amqp-publish --url "$URL" -e amq.direct -r "${P}rk" -b "via amq.direct" &&
        published=1
    sleep 0.2
    n=$((n + 1))
done
echo "publish to amq.direct: published $published"
wait "$cpid"
rc=$?
norm <"/tmp/amqp_tools.$$.cons" | sed 's/^/consume from amq.direct: /'
echo "consume from amq.direct: exit $rc"
rm -f "/tmp/amqp_tools.$$.cons"
step "publish to a missing exchange" amqp-publish --url "$URL" -e "${P}missing" -r x -b "lost"

echo "== errors"
step "get from a missing queue" amqp-get --url "$URL" -q "${P}missing"
step "consume from a missing queue" amqp-consume --url "$URL" -q "${P}missing" -c 1 -- cat
hostport=${URL#amqp://}
hostport=${hostport#*@}
hostport=${hostport%%/*}
step "wrong password" amqp-get --url "amqp://guest:wrong@$hostport" -q "${P}work"
step "unknown vhost" amqp-get --url "amqp://guest:guest@$hostport/nope" -q "${P}work"
step "empty vhost (trailing slash)" amqp-get --url "amqp://guest:guest@$hostport/" -q "${P}work"

echo "== delete"
step "delete" amqp-delete-queue --url "$URL" -q "${P}work"
step "delete again" amqp-delete-queue --url "$URL" -q "${P}work"
echo "== end"

# The fake broker with more queued than a connection buffers: 20,000 100-byte messages (about
# 3.6 MB of deliveries, over the 1 MiB at which the broker stops delivering to a connection
# until it drains) must all reach a no-ack consumer and then an acking one (python3-pika on
# `faultline fake amqp`). Before the fix, deliveries stopped for good when a direct write
# drained a full connection, as loopback usually lets it.
IT_LIMIT=${IT_LIMIT:-60}
. "$(dirname "$0")/lib.sh"
it_init

[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pika' 2>/dev/null ||
    { fail "python3-pika is missing (make deps installs it)"; it_done; }

"$FL" fake amqp --listen 127.0.0.1:0 --quiet >"$FL_TMP/fake.out" 2>"$FL_TMP/fake.err" &
FAKE=$!
it_track "$FAKE"
wait_until 10 grep -q '^amqp://' "$FL_TMP/fake.out" || fail "the fake did not print its URL"
URL=$(head -n 1 "$FL_TMP/fake.out")

cat >"$FL_TMP/backlog.py" <<'PY'
import sys, time
import pika

N = 20000
url, no_ack = sys.argv[1], sys.argv[2] == "no-ack"
conn = pika.BlockingConnection(pika.URLParameters(url))
ch = conn.channel()
ch.queue_declare("backlog")
for _ in range(N):
    ch.basic_publish("", "backlog", b"x" * 100)
while ch.queue_declare("backlog", passive=True).method.message_count < N:
    time.sleep(0.01)
got = 0
ch.basic_qos(prefetch_count=1000)
for method, _, body in ch.consume("backlog", auto_ack=no_ack, inactivity_timeout=5):
    if method is None:
        break
    got += 1
    if not no_ack and got % 100 == 0:
        ch.basic_ack(method.delivery_tag, multiple=True)
    if got == N:
        break
print("consumed", got)
PY

for mode in no-ack ack; do
    run /usr/bin/python3 "$FL_TMP/backlog.py" "$URL" "$mode"
    expect_eq "$mode: exit status" "$RC" 0
    expect_fgrep "consumed 20000" "$OUT"
done

kill "$FAKE"
wait "$FAKE"
expect_eq "the fake's exit status after SIGTERM" "$?" 0
it_done

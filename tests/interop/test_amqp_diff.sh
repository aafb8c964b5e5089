# Differential test of the fake AMQP broker against a real RabbitMQ (Debian's
# rabbitmq-server, started here on spare loopback ports and stopped by PID): every client
# script (amqp_pika.py, amqp_node.js, amqp_tools.sh, amqp_go.sh; see lib.sh) runs against
# RabbitMQ, then against `faultline fake amqp`, and the two transcripts must be identical
# (replies, close codes and texts, delivery tags, redelivered flags, bodies, properties,
# ordering). RabbitMQ's transcripts must also still equal tests/interop/amqp_golden/*.txt,
# which test_amqp_fake.sh holds the fake to when RabbitMQ is not started; when RabbitMQ's
# behaviour changes (a new Debian version), the diff shows what to re-record there. A
# client whose library is missing is skipped; without rabbitmq-server the test says SKIP.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || skip "rabbitmq-server is not installed (make deps installs it)"

clients=""
for c in $AMQP_CLIENTS; do
    why=$(amqp_client_missing "$c")
    if [ -n "$why" ]; then
        echo "NOTE: client $c skipped: $why"
    elif [ "$c" = go ] && ! amqp_go_build; then
        :
    else
        clients="$clients $c"
    fi
done
[ -n "$clients" ] || skip "no AMQP client library is installed"

# RabbitMQ first, then it is stopped before the fake starts (one broker at a time)
if start_rabbitmq; then
    for c in $clients; do
        t0=$(now_ms)
        amqp_client "$c" "$RMQ_URL" "$FL_TMP/rabbitmq.$c.txt"
        expect_eq "$c against RabbitMQ: exit status ($(($(now_ms) - t0)) ms)" "$RC" 0
        [ "$RC" -eq 0 ] || show "$FL_TMP/rabbitmq.$c.txt.err"
        expect_same_transcript "$c: RabbitMQ now vs amqp_golden/$c.txt" \
            "$FL_TMP/rabbitmq.$c.txt" "$AMQP_GOLDEN/$c.txt"
    done
    stop_rabbitmq
else
    it_done
fi

if ! start_fake_amqp; then
    fail "no fake broker to compare RabbitMQ with"
    it_done
fi
for c in $clients; do
    t0=$(now_ms)
    amqp_client "$c" "$FAKE_AMQP_URL" "$FL_TMP/fake.$c.txt"
    echo "NOTE: $c against the fake: exit status $RC in $(($(now_ms) - t0)) ms"
    expect_same_transcript "$c: fake vs RabbitMQ" "$FL_TMP/fake.$c.txt" "$FL_TMP/rabbitmq.$c.txt"
done
stop_fake_amqp
it_done

# The fake AMQP broker alone (no RabbitMQ: quick) against RabbitMQ's recorded transcripts:
# every client script (amqp_pika.py, amqp_node.js, amqp_tools.sh, amqp_go.sh; see lib.sh)
# runs against `faultline fake amqp` and must print exactly tests/interop/amqp_golden/*.txt,
# which are RabbitMQ 3.10's (test_amqp_diff.sh checks they still are). A client whose
# library is missing is skipped.
. "$FL_SOURCE_DIR/tests/integration/lib.sh"
. "$FL_SOURCE_DIR/tests/interop/lib.sh"
it_init

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

start_fake_amqp || it_done
for c in $clients; do
    t0=$(now_ms)
    amqp_client "$c" "$FAKE_AMQP_URL" "$FL_TMP/fake.$c.txt"
    expect_eq "$c against the fake: exit status ($(($(now_ms) - t0)) ms)" "$RC" 0
    [ "$RC" -eq 0 ] || show "$FL_TMP/fake.$c.txt.err"
    expect_same_transcript "$c: fake vs amqp_golden/$c.txt" "$FL_TMP/fake.$c.txt" "$AMQP_GOLDEN/$c.txt"
done
stop_fake_amqp
it_done

# A small AMQP service for the broker scenarios, on python3-pika: it reads AMQP_URL as the
# wiring contract hands it (the instance's link to the broker) and logs one line per event.
#   AMQP_ROLE=producer  publishes AMQP_COUNT persistent messages "m<i>" to the durable queue
#                       AMQP_QUEUE with publisher confirms, AMQP_RATE per second; a message
#                       counts ("confirmed i") once the broker acks it; reconnects on loss and
#                       republishes what was not confirmed.
#   AMQP_ROLE=consumer  consumes AMQP_QUEUE with manual acks (prefetch 10), logs "got <body>
#                       redelivered=<bool>" then acks; reconnects on loss.
# Both log "connected" / "connection lost: ..." and keep going until SIGTERM.
import os, signal, sys, time
import pika

url = os.environ["AMQP_URL"]
role = os.environ.get("AMQP_ROLE", "consumer")
queue = os.environ.get("AMQP_QUEUE", "work")
count = int(os.environ.get("AMQP_COUNT", "20"))
rate = float(os.environ.get("AMQP_RATE", "50"))
name = os.environ.get("INSTANCE_ID", role)
stop = False


def log(text):
    sys.stdout.write("%s: %s\n" % (name, text))
    sys.stdout.flush()


def on_term(signum, frame):
    global stop
    stop = True
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, on_term)


def connect():
    params = pika.URLParameters(url)
    params.heartbeat = 5
    params.blocked_connection_timeout = 30
    params.socket_timeout = 2
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    log("connected")
    return conn, ch


def produce():
    i = 1
    while not stop:
        try:
            conn, ch = connect()
            ch.confirm_delivery()
            while i <= count and not stop:
                ch.basic_publish("", queue, ("m%d" % i).encode(),
                                 pika.BasicProperties(delivery_mode=2))
                log("confirmed %d" % i)
                i += 1
                conn.sleep(1.0 / rate)
            log("done")
            while not stop:
                conn.sleep(0.2)
        except KeyboardInterrupt:
            return
        except Exception as e:  # connection lost, broker down: try again
            log("connection lost: %s" % type(e).__name__)
            time.sleep(0.2)


def consume():
    while not stop:
        try:
            conn, ch = connect()
            ch.basic_qos(prefetch_count=10)

            def on_msg(ch, m, p, body):
                log("got %s redelivered=%s" % (body.decode(), m.redelivered))
                ch.basic_ack(m.delivery_tag)

            ch.basic_consume(queue, on_msg)
            ch.start_consuming()
        except KeyboardInterrupt:
            return
        except Exception as e:
            log("connection lost: %s" % type(e).__name__)
            time.sleep(0.2)


try:
    produce() if role == "producer" else consume()
except KeyboardInterrupt:
    pass

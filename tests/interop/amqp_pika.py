#!/usr/bin/python3
"""AMQP 0-9-1 interop and differential client: python3-pika (Debian's, run by /usr/bin/python3).

Usage: amqp_pika.py AMQP_URL [PREFIX]

Drives a broker through pika's BlockingConnection and SelectConnection and prints a
normalized transcript on stdout, one line per observable result: replies and their fields,
channel and connection close codes and texts, delivery tags, redelivered flags, bodies,
properties and header tables, message counts and the order things arrive in. The same
script run against a real RabbitMQ and against faultline's fake broker must print the same
transcript (tests/interop/test_amqp_diff.sh); tests/interop/amqp_golden/pika.txt holds
RabbitMQ's.

What legitimately differs between two brokers is normalized: server-generated names
(amq.gen-..., amq.ctag-...) become placeholders, version strings and the node name are
dropped, timestamps the broker sets (x-death's time) become "<time>". Every queue and
exchange name starts with PREFIX (default "flpk-"; it must occur in no other text), which
the transcript leaves out, so two runs one after the other against one broker do not meet
(runs side by side would: both bind to the amq.* exchanges). Waits are bounded; an
unexpected exception is printed (as "UNEXPECTED ...") and makes the exit status 1, so a
broken broker shows as a diff rather than a hang. Extra arguments after PREFIX name the
sections to run (e.g. raw_crashes, which is not run by default).
"""

import decimal
import hashlib
import re
import socket
import struct
import sys
import time
import urllib.parse
from datetime import datetime, timezone

import pika
import pika.exceptions as pe

URL = sys.argv[1]
P = sys.argv[2] if len(sys.argv) > 2 else "flpk-"
UNEXPECTED = 0


def norm(s):
    s = str(s)
    s = re.sub(r"amq\.gen-[A-Za-z0-9_\-]+", "amq.gen-*", s)
    s = re.sub(r"amq\.ctag-[A-Za-z0-9_\-]+", "amq.ctag-*", s)
    s = re.sub(r"\bctag\d+\.[0-9a-f]{32}\b", "ctag<pika>", s)  # pika names its consumers
    s = re.sub(r"<URLParameters [^>]*>", "<URLParameters>", s)  # holds the port
    return s.replace(P, "")


def say(*parts):
    print(norm(" ".join(str(p) for p in parts)), flush=True)


def params(**kw):
    p = pika.URLParameters(URL)
    p.connection_attempts = 1
    p.socket_timeout = 5
    p.blocked_connection_timeout = 10
    for k, v in kw.items():
        setattr(p, k, v)
    return p


def connect(**kw):
    return pika.BlockingConnection(params(**kw))


def confirmed(c):
    """A channel in confirm mode. RabbitMQ hands a publish to its queue asynchronously, so
    only a confirmed publish is sure to be counted by a queue.declare or basic.get that
    follows it; the transcript must not depend on that race."""
    ch = c.channel()
    ch.confirm_delivery()
    return ch


def show_value(v):
    """A decoded field value with its Python type, tables and arrays recursively."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {show_value(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show_value(x) for x in v) + "]"
    return f"{type(v).__name__}:{v!r}"


def show_props(p, skip_time=False):
    out = []
    for name in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                 "type", "user_id", "app_id", "cluster_id"):
        v = getattr(p, name)
        if v is not None:
            out.append(f"{name}={v!r}")
    if p.headers is not None:
        h = dict(p.headers)
        if skip_time and "x-death" in h:
            h["x-death"] = [{k: ("<time>" if k == "time" else v) for k, v in d.items()}
                            for d in h["x-death"]]
        out.append("headers=" + show_value(h))
    return " ".join(out) if out else "(no properties)"


def show_get(tag, r, skip_time=False, props=False):
    m, p, body = r
    if m is None:
        say(tag, "get-empty")
        return None
    line = (f"get-ok tag={m.delivery_tag} redelivered={m.redelivered} ex={m.exchange!r} "
            f"key={m.routing_key!r} count={m.message_count} body={body!r}")
    say(tag, line)
    if props:
        say(tag, "  props", show_props(p, skip_time))
    return m


def closed(tag, e):
    """How a close by the broker reads in the transcript."""
    if isinstance(e, (pe.ChannelClosedByBroker, pe.ConnectionClosedByBroker)):
        kind = "channel" if isinstance(e, pe.ChannelClosedByBroker) else "connection"
        say(tag, f"{kind} closed {e.reply_code} {e.reply_text}")
    else:
        say(tag, f"{type(e).__name__}: {e}")


def expect_close(tag, fn):
    """Runs fn, which should make the broker close the channel (or connection)."""
    try:
        r = fn()
        say(tag, "no error", "" if r is None else type(r).__name__)
    except (pe.ChannelClosedByBroker, pe.ConnectionClosedByBroker) as e:
        closed(tag, e)


def reopen(c):
    """A new connection if the broker closed c (a connection-level error), else c."""
    say("connection still open", c.is_open)
    return c if c.is_open else connect()


def drain(conn, until, limit=5.0):
    """Processes I/O until until() holds, at most limit seconds. Returns until()."""
    deadline = time.monotonic() + limit
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
    return until()


def settle(conn, seconds=0.3):
    """Processes I/O for a while, so anything the broker would still send arrives."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)


def count(ch, q):
    return ch.queue_declare(q, passive=True).method.message_count


def eventually_count(conn, ch, q, want, limit=5.0):
    """The ready count of q once it reaches want (or whatever it is after limit seconds)."""
    deadline = time.monotonic() + limit
    n = count(ch, q)
    while n != want and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.05)
        n = count(ch, q)
    return n


# --- sections ----------------------------------------------------------------------------


def s_connection():
    """What the broker says about itself, and the tune it negotiates with pika's defaults."""
    c = connect()
    sp = c._impl.server_properties
    for k in sorted(sp):
        v = sp[k]
        if k in ("version", "platform", "cluster_name"):
            v = "<dropped>"
        elif k == "capabilities":
            v = ", ".join(f"{n}={v[n]}" for n in sorted(v))
        elif isinstance(v, bytes):
            v = v.decode()
        say("server-property", k, "=", v)
    pp = c._impl.params
    say("tuned channel_max", pp.channel_max, "frame_max", pp.frame_max, "heartbeat", pp.heartbeat)
    c.close()
    # a client asking for less gets less
    c = connect(channel_max=10, frame_max=8192, heartbeat=5)
    pp = c._impl.params
    say("tuned (asked 10/8192/5) channel_max", pp.channel_max, "frame_max", pp.frame_max,
        "heartbeat", pp.heartbeat)
    ch = confirmed(c)
    ch.queue_declare(P + "small-frames", auto_delete=False)
    body = bytes(i % 251 for i in range(20000))  # three body frames of at most 8184 bytes
    ch.basic_publish("", P + "small-frames", body)
    m, _, got = ch.basic_get(P + "small-frames", auto_ack=True)
    say("frame_max 8192: 20000-byte body back intact", got == body)
    ch.queue_delete(P + "small-frames")
    c.close()


def s_auth():
    u = urllib.parse.urlsplit(URL)
    bad = URL.replace(f"{u.username}:{u.password}@", f"{u.username}:wrong@", 1)
    try:
        pika.BlockingConnection(pika.URLParameters(bad)).close()
        say("wrong password: connected")
    except pe.ProbableAuthenticationError as e:
        say("wrong password: ProbableAuthenticationError", e)
    except pe.AuthenticationError as e:
        say("wrong password: AuthenticationError", e)
    except pe.AMQPConnectionError as e:
        say("wrong password:", type(e).__name__, e)
    host = f"{u.hostname}:{u.port}"
    for vhost in ("nope", ""):
        url = f"amqp://{u.username}:{u.password}@{host}/{urllib.parse.quote(vhost, safe='')}"
        p = pika.URLParameters(url)
        p.virtual_host = vhost
        try:
            pika.BlockingConnection(p).close()
            say(f"vhost {vhost!r}: connected")
        except pe.ProbableAccessDeniedError as e:
            say(f"vhost {vhost!r}: ProbableAccessDeniedError", e)
        except pe.ConnectionClosedByBroker as e:
            say(f"vhost {vhost!r}: connection closed {e.reply_code} {e.reply_text}")
        except pe.AMQPConnectionError as e:
            say(f"vhost {vhost!r}:", type(e).__name__, e)
    # the vhost "/" spelled out
    p = params()
    p.virtual_host = "/"
    c = pika.BlockingConnection(p)
    say("vhost '/': connected", c.is_open)
    c.close()


def s_exchanges():
    c = connect()
    ch = confirmed(c)
    for t in ("direct", "fanout", "topic", "headers"):
        r = ch.exchange_declare(P + "x-" + t, t)
        say("exchange.declare", t, type(r.method).__name__)
    r = ch.exchange_declare(P + "x-direct", "direct", passive=True)
    say("passive declare of an existing exchange", type(r.method).__name__)
    r = ch.exchange_declare("amq.topic", "topic", passive=True)
    say("passive declare of amq.topic", type(r.method).__name__)
    expect_close("passive declare of a missing exchange",
                 lambda: ch.exchange_declare(P + "x-missing", "direct", passive=True))
    ch = confirmed(c)
    expect_close("redeclare x-direct as fanout",
                 lambda: ch.exchange_declare(P + "x-direct", "fanout"))
    ch = confirmed(c)
    expect_close("redeclare x-direct durable",
                 lambda: ch.exchange_declare(P + "x-direct", "direct", durable=True))
    ch = confirmed(c)
    expect_close("declare amq.custom", lambda: ch.exchange_declare("amq.custom", "direct"))
    ch = confirmed(c)
    expect_close("declare of an unknown type",
                 lambda: ch.exchange_declare(P + "x-weird", "no-such-type"))
    c = reopen(c)
    ch = confirmed(c)
    expect_close("declare amq.direct as fanout",
                 lambda: ch.exchange_declare("amq.direct", "fanout"))
    ch = confirmed(c)
    expect_close("delete amq.direct", lambda: ch.exchange_delete("amq.direct"))
    ch = confirmed(c)
    r = ch.exchange_delete(P + "x-missing")
    say("delete of a missing exchange", type(r.method).__name__)
    # if-unused
    ch.queue_declare(P + "xq", auto_delete=False)
    ch.queue_bind(P + "xq", P + "x-fanout")
    expect_close("delete x-fanout if-unused while bound",
                 lambda: ch.exchange_delete(P + "x-fanout", if_unused=True))
    ch = confirmed(c)
    r = ch.exchange_delete(P + "x-fanout")
    say("delete x-fanout", type(r.method).__name__)
    for t in ("direct", "topic", "headers"):
        ch.exchange_delete(P + "x-" + t)
    ch.queue_delete(P + "xq")
    c.close()


def s_routing():
    c = connect()
    ch = confirmed(c)
    ex = {t: P + "r-" + t for t in ("direct", "fanout", "topic", "headers", "e2e")}
    for t in ("direct", "fanout", "topic", "headers"):
        ch.exchange_declare(ex[t], t)
    ch.exchange_declare(ex["e2e"], "fanout")
    queues = {}

    def q(name):
        queues[name] = P + "r." + name
        ch.queue_declare(queues[name])
        ch.queue_purge(queues[name])
        return queues[name]

    ch.queue_bind(q("d-red"), ex["direct"], "red")
    ch.queue_bind(q("d-red2"), ex["direct"], "red")
    ch.queue_bind(queues["d-red2"], ex["direct"], "blue")  # two bindings, one queue
    ch.queue_bind(q("f1"), ex["fanout"], "ignored")
    ch.queue_bind(q("f2"), ex["fanout"])
    for pat in ("a.*", "a.#", "#", "*.b", "a.*.c", "#.c", "a.b", "*", "a.#.c", "#.#"):
        ch.queue_bind(q("t:" + pat), ex["topic"], pat)
    ch.queue_bind(q("h-all"), ex["headers"], arguments={"x-match": "all", "k": "v", "n": 1})
    ch.queue_bind(q("h-any"), ex["headers"], arguments={"x-match": "any", "k": "v", "n": 1})
    ch.queue_bind(q("h-default"), ex["headers"], arguments={"k": "v"})
    ch.queue_bind(q("h-none"), ex["headers"], arguments={"x-match": "all"})
    # exchange to exchange: topic -> fanout -> queue
    ch.exchange_bind(ex["e2e"], ex["topic"], "e2e.#")
    ch.queue_bind(q("e2e"), ex["e2e"])
    ch.queue_bind(q("amq"), "amq.direct", "k")
    ch.queue_bind(queues["amq"], "amq.fanout")
    ch.queue_bind(queues["amq"], "amq.topic", "k.#")
    ch.queue_bind(queues["amq"], "amq.match", arguments={"x-match": "any", "h": "1"})
    ch.queue_bind(queues["amq"], "amq.headers", arguments={"h": "2"})

    for key in ("red", "blue", "green"):
        ch.basic_publish(ex["direct"], key, "direct " + key)
    ch.basic_publish(ex["fanout"], "whatever", "fanout 1")
    for key in ("a", "a.b", "a.b.c", "a.x.y.c", "b", "x.b", "", "c", "a.c", "e2e.one", "a..c"):
        ch.basic_publish(ex["topic"], key, "topic " + key)
    for hs in ({"k": "v", "n": 1}, {"k": "v"}, {"n": 1}, {"k": "w"}, {"k": "v", "n": 1, "z": 0},
               {}, None, {"n": "1"}):
        ch.basic_publish(ex["headers"], "", "headers " + repr(hs),
                         pika.BasicProperties(headers=hs))
    ch.basic_publish("amq.direct", "k", "amq.direct k")
    ch.basic_publish("amq.fanout", "", "amq.fanout")
    ch.basic_publish("amq.topic", "k.z", "amq.topic k.z")
    ch.basic_publish("amq.match", "", "amq.match h=1", pika.BasicProperties(headers={"h": "1"}))
    ch.basic_publish("amq.headers", "", "amq.headers h=2", pika.BasicProperties(headers={"h": "2"}))
    ch.basic_publish("", queues["f1"], "default exchange to f1")
    ch.basic_publish("", P + "r.none", "default exchange to a missing queue")
    for name in sorted(queues):
        bodies = []
        while True:
            m, _, body = ch.basic_get(queues[name], auto_ack=True)
            if m is None:
                break
            bodies.append(body.decode())
        say(f"queue {name}: {bodies}")
    # unbind, then nothing arrives
    ch.queue_unbind(queues["d-red"], ex["direct"], "red")
    ch.exchange_unbind(ex["e2e"], ex["topic"], "e2e.#")
    ch.queue_unbind(queues["h-all"], ex["headers"], arguments={"x-match": "all", "k": "v", "n": 1})
    ch.basic_publish(ex["direct"], "red", "after unbind")
    ch.basic_publish(ex["topic"], "e2e.two", "after exchange unbind")
    ch.basic_publish(ex["headers"], "", "after unbind", pika.BasicProperties(headers={"k": "v", "n": 1}))
    for name in ("d-red", "d-red2", "e2e", "h-all", "h-any"):
        say(f"after unbind, queue {name} holds", count(ch, queues[name]))
    r = ch.queue_unbind(queues["d-red"], ex["direct"], "never-bound")
    say("unbind of a binding that does not exist", type(r.method).__name__)
    expect_close("bind to a missing exchange",
                 lambda: ch.queue_bind(queues["d-red"], P + "r-missing", "k"))
    ch = confirmed(c)
    expect_close("bind a missing queue",
                 lambda: ch.queue_bind(P + "r.missing", ex["direct"], "k"))
    ch = confirmed(c)
    expect_close("exchange bind from a missing exchange",
                 lambda: ch.exchange_bind(ex["e2e"], P + "r-missing", "k"))
    ch = confirmed(c)
    expect_close("bind to the default exchange",
                 lambda: ch.queue_bind(queues["d-red"], "", "k"))
    ch = confirmed(c)
    for name in queues.values():
        ch.queue_delete(name)
    for name in ex.values():
        ch.exchange_delete(name)
    c.close()


def s_queues():
    c = connect()
    ch = confirmed(c)
    for name, kw in (("durable", dict(durable=True)), ("plain", {}),
                     ("exclusive", dict(exclusive=True)), ("autodelete", dict(auto_delete=True))):
        r = ch.queue_declare(P + "q." + name, **kw)
        m = r.method
        say("queue.declare", name, "->", m.queue, m.message_count, m.consumer_count)
    r = ch.queue_declare("", exclusive=True)
    gen = r.method.queue
    say("server-named queue", r.method.queue, "matches amq.gen-<22 chars>",
        re.fullmatch(r"amq\.gen-[A-Za-z0-9_\-]{22}", gen) is not None)
    ch.basic_publish("", gen, "to the server-named queue")
    say("server-named queue holds", count(ch, gen))
    r = ch.queue_declare(P + "q.durable", durable=True, passive=True)
    say("passive declare of q.durable", r.method.queue, r.method.message_count)
    expect_close("passive declare of a missing queue",
                 lambda: ch.queue_declare(P + "q.missing", passive=True))
    ch = confirmed(c)
    expect_close("redeclare q.durable transient", lambda: ch.queue_declare(P + "q.durable"))
    ch = confirmed(c)
    expect_close("redeclare q.plain with x-message-ttl",
                 lambda: ch.queue_declare(P + "q.plain", arguments={"x-message-ttl": 1000}))
    ch = confirmed(c)
    expect_close("declare amq.q", lambda: ch.queue_declare("amq.q"))
    ch = confirmed(c)
    expect_close("x-message-ttl as a string",
                 lambda: ch.queue_declare(P + "q.badttl", arguments={"x-message-ttl": "soon"}))
    ch = confirmed(c)
    expect_close("x-message-ttl negative",
                 lambda: ch.queue_declare(P + "q.badttl", arguments={"x-message-ttl": -1}))
    ch = confirmed(c)
    expect_close("x-max-length as a string",
                 lambda: ch.queue_declare(P + "q.badlen", arguments={"x-max-length": "two"}))
    ch = confirmed(c)
    expect_close("x-expires 0", lambda: ch.queue_declare(P + "q.badexp", arguments={"x-expires": 0}))
    ch = confirmed(c)
    # purge and delete with counts
    for i in range(3):
        ch.basic_publish("", P + "q.plain", f"m{i}")
    r = ch.queue_purge(P + "q.plain")
    say("purge q.plain ->", r.method.message_count)
    r = ch.queue_purge(P + "q.plain")
    say("purge q.plain again ->", r.method.message_count)
    expect_close("purge of a missing queue", lambda: ch.queue_purge(P + "q.missing"))
    ch = confirmed(c)
    ch.basic_publish("", P + "q.plain", "x")
    expect_close("delete q.plain if-empty", lambda: ch.queue_delete(P + "q.plain", if_empty=True))
    ch = confirmed(c)
    tag = ch.basic_consume(P + "q.durable", lambda *a: None)
    other = confirmed(c)
    expect_close("delete q.durable if-unused with a consumer",
                 lambda: other.queue_delete(P + "q.durable", if_unused=True))
    ch.basic_cancel(tag)
    r = ch.queue_delete(P + "q.plain")
    say("delete q.plain ->", r.method.message_count)
    r = ch.queue_delete(P + "q.missing")
    say("delete of a missing queue ->", type(r.method).__name__, r.method.message_count)
    r = ch.queue_delete(P + "q.durable", if_unused=True, if_empty=True)
    say("delete q.durable if-unused if-empty ->", r.method.message_count)

    # exclusive: another connection is locked out, and it goes with its connection
    c2 = connect()
    ch2 = confirmed(c2)
    expect_close("declare another connection's exclusive queue",
                 lambda: ch2.queue_declare(P + "q.exclusive", exclusive=True))
    ch2 = confirmed(c2)
    expect_close("passive declare of another connection's exclusive queue",
                 lambda: ch2.queue_declare(P + "q.exclusive", passive=True))
    ch2 = confirmed(c2)
    expect_close("consume from another connection's exclusive queue",
                 lambda: ch2.basic_consume(P + "q.exclusive", lambda *a: None))
    ch2 = confirmed(c2)
    expect_close("publish-and-get on another connection's exclusive queue",
                 lambda: ch2.basic_get(P + "q.exclusive"))
    ch2 = confirmed(c2)
    expect_close("delete another connection's exclusive queue",
                 lambda: ch2.queue_delete(P + "q.exclusive"))
    ch2 = confirmed(c2)
    # auto-delete: goes when its last consumer does
    tag = ch.basic_consume(P + "q.autodelete", lambda *a: None)
    ch.basic_cancel(tag)
    expect_close("passive declare of q.autodelete after its consumer left",
                 lambda: ch2.queue_declare(P + "q.autodelete", passive=True))
    c.close()
    ch2 = confirmed(c2)
    expect_close("passive declare of q.exclusive after its connection closed",
                 lambda: ch2.queue_declare(P + "q.exclusive", passive=True))
    c2.close()


def s_ttl_dlx():
    c = connect()
    ch = confirmed(c)
    dlx = P + "dlx"
    ch.exchange_declare(dlx, "direct")
    ch.queue_declare(P + "dl.rejected")
    ch.queue_bind(P + "dl.rejected", dlx, "rejected")
    ch.queue_declare(P + "dl.expired")
    ch.queue_bind(P + "dl.expired", dlx, P + "work.ttl")  # no x-dead-letter-routing-key: the original
    ch.queue_declare(P + "dl.maxlen")
    ch.queue_bind(P + "dl.maxlen", dlx, "maxlen")
    ch.queue_declare(P + "work.reject", arguments={
        "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "rejected"})
    ch.queue_declare(P + "work.ttl", arguments={"x-message-ttl": 200, "x-dead-letter-exchange": dlx})
    ch.queue_declare(P + "work.maxlen", arguments={
        "x-max-length": 2, "x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "maxlen"})
    ch.queue_declare(P + "work.plainttl", arguments={"x-message-ttl": 100})

    ch.basic_publish("", P + "work.reject", "reject me", pika.BasicProperties(headers={"a": 1}))
    m = show_get("work.reject", ch.basic_get(P + "work.reject"))
    ch.basic_reject(m.delivery_tag, requeue=False)
    say("dl.rejected count", eventually_count(c, ch, P + "dl.rejected", 1))
    show_get("dl.rejected", ch.basic_get(P + "dl.rejected", auto_ack=True), skip_time=True, props=True)

    ch.basic_publish("", P + "work.reject", "nack me")
    m = show_get("work.reject", ch.basic_get(P + "work.reject"))
    ch.basic_nack(m.delivery_tag, requeue=False)
    say("dl.rejected count", eventually_count(c, ch, P + "dl.rejected", 1))
    show_get("dl.rejected", ch.basic_get(P + "dl.rejected", auto_ack=True), skip_time=True, props=True)

    ch.basic_publish("", P + "work.ttl", "expire me")
    say("dl.expired count", eventually_count(c, ch, P + "dl.expired", 1))
    say("work.ttl count", count(ch, P + "work.ttl"))
    show_get("dl.expired", ch.basic_get(P + "dl.expired", auto_ack=True), skip_time=True, props=True)

    # per-message expiration on a queue without ttl: dead-lettered too
    ch.basic_publish("", P + "work.reject", "expiration 50",
                     pika.BasicProperties(expiration="50"))
    say("dl.rejected count (per-message expiration)", eventually_count(c, ch, P + "dl.rejected", 1))
    show_get("dl.rejected", ch.basic_get(P + "dl.rejected", auto_ack=True), skip_time=True, props=True)

    for i in range(1, 5):
        ch.basic_publish("", P + "work.maxlen", f"len {i}")
    say("work.maxlen count", count(ch, P + "work.maxlen"))
    say("dl.maxlen count", eventually_count(c, ch, P + "dl.maxlen", 2))
    for q in ("work.maxlen", "work.maxlen", "dl.maxlen", "dl.maxlen"):
        show_get(q, ch.basic_get(P + q, auto_ack=True), skip_time=True, props=(q == "dl.maxlen"))

    ch.basic_publish("", P + "work.plainttl", "gone")
    say("work.plainttl count after ttl", eventually_count(c, ch, P + "work.plainttl", 0))
    show_get("work.plainttl", ch.basic_get(P + "work.plainttl", auto_ack=True))

    # x-expires: the unused queue is deleted
    # (a passive declare counts as a use and restarts the timer, so it is probed just twice)
    ch.queue_declare(P + "q.expires", arguments={"x-expires": 300})
    c.process_data_events(time_limit=0.1)
    r = ch.queue_declare(P + "q.expires", passive=True)
    say("q.expires after 0.1 s:", type(r.method).__name__)
    settle(c, 1.0)
    expect_close("q.expires 1 s later", lambda: ch.queue_declare(P + "q.expires", passive=True))
    ch = confirmed(c)

    for q in ("dl.rejected", "dl.expired", "dl.maxlen", "work.reject", "work.ttl", "work.maxlen",
              "work.plainttl"):
        ch.queue_delete(P + q)
    ch.exchange_delete(dlx)
    c.close()


def s_ack():
    c = connect()
    ch = confirmed(c)
    q = P + "acks"
    ch.queue_declare(q)
    for i in range(1, 6):
        ch.basic_publish("", q, f"m{i}")
    for _ in range(5):
        show_get("get", ch.basic_get(q))
    ch.basic_nack(3, multiple=True, requeue=True)  # m1..m3 back, in order
    ch.basic_reject(4, requeue=True)
    ch.basic_ack(5)
    # (acks and requeues reach the queue asynchronously too: counts are awaited, bounded)
    say("after nack multiple, reject, ack: ready", eventually_count(c, ch, q, 4))
    tags = []
    for _ in range(5):
        m = show_get("get", ch.basic_get(q))
        if m:
            tags.append(m.delivery_tag)
    ch.basic_ack(tags[1])
    ch.basic_nack(tags[3], multiple=True, requeue=False)  # drops the rest but the last
    ch.basic_ack(0, multiple=True)  # everything still unacked
    say("after ack 0 multiple: ready", eventually_count(c, ch, q, 0))
    expect_close("ack of an acked tag", lambda: (ch.basic_ack(tags[1]), count(ch, q))[1])
    ch = confirmed(c)
    expect_close("ack of a tag never delivered", lambda: (ch.basic_ack(99), count(ch, q))[1])
    ch = confirmed(c)
    expect_close("reject of a tag never delivered", lambda: (ch.basic_reject(7), count(ch, q))[1])
    ch = confirmed(c)
    expect_close("nack multiple of a tag never delivered",
                 lambda: (ch.basic_nack(7, multiple=True), count(ch, q))[1])
    ch = confirmed(c)
    # basic.recover: unacked messages come back redelivered
    for i in range(1, 4):
        ch.basic_publish("", q, f"r{i}")
    for _ in range(3):
        show_get("get", ch.basic_get(q))
    ch.basic_recover(requeue=True)
    say("after recover: ready", eventually_count(c, ch, q, 3))
    for _ in range(4):
        show_get("get", ch.basic_get(q))
    # unacked messages return to the queue when their channel closes
    ch.close()
    ch = confirmed(c)
    say("after the channel closed: ready", eventually_count(c, ch, q, 3))
    for _ in range(4):
        show_get("get", ch.basic_get(q, auto_ack=True))
    # ... and when their connection closes
    ch.basic_publish("", q, "held by a closed connection")
    c2 = connect()
    show_get("c2 get", confirmed(c2).basic_get(q))
    c2.close()
    say("after the other connection closed: ready", eventually_count(c, ch, q, 1))
    show_get("get", ch.basic_get(q, auto_ack=True))
    ch.queue_delete(q)
    c.close()


def s_consume():
    c = connect()
    ch = confirmed(c)
    q = P + "consume"
    ch.queue_declare(q)
    for i in range(1, 6):
        ch.basic_publish("", q, f"c{i}")
    ch.basic_qos(prefetch_count=2)
    got = []

    def on_msg(chan, m, props, body):
        got.append((m.delivery_tag, m.redelivered, body.decode(), m.consumer_tag))

    tag = ch.basic_consume(q, on_msg)
    say("consumer tag", tag)
    drain(c, lambda: len(got) >= 2)
    settle(c)
    say("prefetch 2: delivered", [g[:3] for g in got])
    ch.basic_ack(got[1][0], multiple=True)
    drain(c, lambda: len(got) >= 4)
    settle(c)
    say("after ack multiple: delivered", [g[:3] for g in got])
    say("consumer tag on deliveries", sorted({g[3] for g in got}))
    r = ch.basic_cancel(tag)
    say("cancel ->", r)
    ch.basic_publish("", q, "c6")
    settle(c)
    say("after cancel: delivered", len(got), "ready", count(ch, q))
    ch.close()  # c3 and c4 were unacked
    ch = confirmed(c)
    show_get("after close", ch.basic_get(q, auto_ack=True))
    show_get("after close", ch.basic_get(q, auto_ack=True))
    # a named consumer, no-ack, and a second consumer with the same tag on another channel
    got.clear()
    ch.basic_consume(q, on_msg, auto_ack=True, consumer_tag="mine")
    drain(c, lambda: len(got) >= 2)
    settle(c)
    say("no-ack consumer 'mine': delivered", got)
    ch2 = confirmed(c)
    r = ch2.basic_consume(q, on_msg, consumer_tag="mine")
    say("same tag on another channel ->", r)
    ch2.basic_cancel("mine")
    ch.basic_cancel("mine")
    # exclusive consumer
    tag = ch.basic_consume(q, on_msg, exclusive=True)
    ch3 = confirmed(c)
    expect_close("second consumer on an exclusively consumed queue",
                 lambda: ch3.basic_consume(q, on_msg))
    ch.basic_cancel(tag)
    tag = ch.basic_consume(q, on_msg)
    ch3 = confirmed(c)
    expect_close("exclusive consumer on a queue with a consumer",
                 lambda: ch3.basic_consume(q, on_msg, exclusive=True))
    ch.basic_cancel(tag)
    expect_close("consume from a missing queue", lambda: ch.basic_consume(P + "nope", on_msg))
    # the broker cancels a consumer whose queue is deleted
    ch = confirmed(c)
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    ch.queue_declare(P + "doomed")
    ctag = ch.basic_consume(P + "doomed", on_msg, consumer_tag="watcher")
    confirmed(c).queue_delete(P + "doomed")
    drain(c, lambda: cancelled)
    say("server-sent basic.cancel for", cancelled, "channel open", ch.is_open)
    # global prefetch and prefetch_size
    r = ch.basic_qos(prefetch_count=3, global_qos=True)
    say("qos global ->", type(r).__name__ if r is not None else None)
    expect_close("qos prefetch_size 1", lambda: ch.basic_qos(prefetch_size=1))
    c = reopen(c)
    ch = confirmed(c)
    ch.queue_delete(q)
    c.close()


def s_blocking_consume():
    """The generator API: inactivity timeout, requeue and redelivered on the next pass."""
    c = connect()
    ch = confirmed(c)
    q = P + "gen"
    ch.queue_declare(q)
    for i in range(1, 4):
        ch.basic_publish("", q, f"g{i}")
    seen = []
    for m, props, body in ch.consume(q, inactivity_timeout=0.5):
        if m is None:
            break
        seen.append((m.delivery_tag, m.redelivered, body.decode()))
        if body == b"g2" and not m.redelivered:
            ch.basic_nack(m.delivery_tag, requeue=True)
        else:
            ch.basic_ack(m.delivery_tag)
        if len(seen) > 10:
            break
    say("consume generator saw", seen)
    r = ch.cancel()
    say("cancel -> requeued", r)
    ch.queue_delete(q)
    c.close()


def s_confirms():
    c = connect()
    ch = c.channel()
    q = P + "confirm"
    ch.queue_declare(q)
    ch.exchange_declare(P + "lonely", "direct")
    ch.confirm_delivery()
    for i in range(3):
        ch.basic_publish("", q, f"p{i}")
        say("confirmed publish", i)
    try:
        ch.basic_publish(P + "lonely", "nowhere", "unroutable", mandatory=True)
        say("mandatory unroutable: no error")
    except pe.UnroutableError as e:
        for rm in e.messages:
            say("mandatory unroutable: UnroutableError", rm.method.reply_code,
                rm.method.reply_text, rm.method.exchange, rm.method.routing_key, rm.body)
    ch.basic_publish(P + "lonely", "nowhere", "unroutable, not mandatory")
    say("non-mandatory unroutable: confirmed")
    ch.basic_publish("", q, "mandatory routable", mandatory=True)
    say("mandatory routable: confirmed")
    say("queue holds", count(ch, q))
    expect_close("publish to a missing exchange (confirm mode)",
                 lambda: ch.basic_publish(P + "missing", "k", "x"))
    ch = c.channel()
    ch.tx_select()
    expect_close("confirm.select on a tx channel", ch.confirm_delivery)
    ch = c.channel()
    ch.confirm_delivery()
    expect_close("tx.select on a confirm channel", ch.tx_select)
    ch = c.channel()
    # without confirms, a publish to a missing exchange shows on the next synchronous call
    ch.basic_publish(P + "missing", "k", "x")
    expect_close("publish to a missing exchange, then a declare", lambda: count(ch, q))
    ch = c.channel()
    ch.queue_delete(q)
    ch.exchange_delete(P + "lonely")
    c.close()


def s_tx():
    c = connect()
    ch = c.channel()
    q = P + "tx"
    ch.queue_declare(q)
    expect_close("tx.commit without tx.select", ch.tx_commit)
    ch = c.channel()
    expect_close("tx.rollback without tx.select", ch.tx_rollback)
    ch = c.channel()
    r = ch.tx_select()
    say("tx.select ->", type(r.method).__name__)
    ch.basic_publish("", q, "t1")
    ch.basic_publish("", q, "t2")
    say("before commit: ready", count(ch, q))
    ch.tx_rollback()
    say("after rollback: ready", count(ch, q))
    ch.basic_publish("", q, "t3")
    ch.basic_publish("", q, "t4")
    r = ch.tx_commit()
    say("tx.commit ->", type(r.method).__name__, "ready", count(ch, q))
    show_get("get", ch.basic_get(q))
    ch.basic_ack(1)
    ch.tx_rollback()  # the ack is discarded: t3 stays unacked
    say("after rolled-back ack: ready", count(ch, q))
    ch.basic_ack(1)
    ch.tx_commit()
    show_get("get", ch.basic_get(q))
    ch.basic_reject(2, requeue=True)
    ch.tx_commit()
    show_get("get after committed reject", ch.basic_get(q))
    ch.tx_commit()
    ch.close()
    ch = c.channel()
    show_get("get after close", ch.basic_get(q, auto_ack=True))
    ch.queue_delete(q)
    c.close()


def s_bodies():
    c = connect()
    ch = confirmed(c)
    q = P + "bodies"
    ch.queue_declare(q)
    fm = c._impl.params.frame_max
    for n in (0, 1, fm - 9, fm - 8, fm - 7, 2 * (fm - 8), 2 * (fm - 8) + 1, 1 << 20, 3 << 20):
        body = bytes((i * 7 + n) % 256 for i in range(n))
        ch.basic_publish("", q, body)
        m, _, got = ch.basic_get(q, auto_ack=True)
        say(f"body of frame_max{n - fm:+d} bytes" if abs(n - fm) < 20 else f"body of {n} bytes",
            "back:", len(got), hashlib.sha256(got).hexdigest()[:16] == hashlib.sha256(body).hexdigest()[:16])
    ch.queue_delete(q)
    c.close()


def s_properties():
    c = connect()
    ch = confirmed(c)
    q = P + "props"
    ch.queue_declare(q)
    headers = {
        "str": "text", "utf8": "žluťoučký", "bytes": b"\x00\x01\xff", "int": 7, "neg": -7,
        "long": 1 << 40, "bool-t": True, "bool-f": False, "none": None,
        "decimal": decimal.Decimal("3.14"), "decimal-int": decimal.Decimal(42),
        "timestamp": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "table": {"inner": {"deep": 1}, "s": "x"}, "array": [1, "two", [3], {"four": 4}, None],
        "empty-table": {}, "empty-array": [], "big-neg": -(1 << 40),
    }
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="gzip", headers=headers,
        delivery_mode=2, priority=5, correlation_id="corr-1", reply_to="amq.rabbitmq.reply-to.x",
        expiration="60000", message_id="msg-1", timestamp=1700000000, type="order.created",
        user_id="guest", app_id="faultline", cluster_id="c1")
    ch.basic_publish("", q, b"{}", props)
    show_get("all properties", ch.basic_get(q, auto_ack=True), props=True)
    ch.basic_publish("", q, b"none")
    show_get("no properties", ch.basic_get(q, auto_ack=True), props=True)
    ch.basic_publish("", q, b"empty headers", pika.BasicProperties(headers={}))
    show_get("empty headers", ch.basic_get(q, auto_ack=True), props=True)
    expect_close("user_id of another user",
                 lambda: (ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="bob")),
                          count(ch, q))[1])
    ch = confirmed(c)
    ch.queue_delete(q)
    c.close()


def s_channels():
    c = connect()
    ch = c.channel()
    say("first channel number", ch.channel_number)
    ch.close()
    say("closed channel is_closed", ch.is_closed)
    ch = c.channel(channel_number=7)
    say("explicit channel 7 open", ch.is_open)
    r = ch.flow(True)
    say("channel.flow active=True ->", r)
    # channel.flow active=false: RabbitMQ refuses it
    expect_close("channel.flow active=False", lambda: ch.flow(False))
    try:
        c.channel().queue_declare(P + "chan")
        c.channel().queue_delete(P + "chan")
    except pe.AMQPError as e:
        say("after flow(False):", type(e).__name__, e)
    if c.is_open:
        c.close()


def s_select_connection():
    """The async adapter: confirms with basic.return before basic.ack, in arrival order."""
    events = []
    state = {"conn": None, "tags": 0, "returns": {}, "acked": set(), "order": []}
    q = P + "sel"
    ex = P + "sel-x"
    timer = {}

    def stop(why):
        events.append("stop: " + why)
        conn = state["conn"]
        if conn.is_open:
            conn.close()

    def on_open(conn):
        conn.channel(on_open_callback=on_channel)

    def on_channel(ch):
        state["ch"] = ch
        ch.add_on_return_callback(on_return)
        ch.exchange_declare(ex, "direct", callback=lambda _: ch.queue_declare(q, callback=on_q))

    def on_q(frame):
        ch = state["ch"]
        ch.queue_bind(q, ex, "to-q", callback=lambda _: ch.confirm_delivery(on_ack, callback=on_confirm))

    def on_confirm(frame):
        ch = state["ch"]
        plan = [("to-q", False), ("nowhere", True), ("to-q", True), ("nowhere", False),
                ("nowhere", True), ("to-q", False)]
        for key, mandatory in plan:
            state["tags"] += 1
            ch.basic_publish(ex, key, f"s{state['tags']} {key} mandatory={mandatory}",
                             mandatory=mandatory)

    def on_return(ch, m, props, body):
        n = int(body.split()[0][1:].decode())
        state["returns"][n] = len(state["order"])
        state["order"].append(("return", n, m.reply_code, m.reply_text, m.routing_key))

    def on_ack(frame):
        m = frame.method
        kind = type(m).__name__
        upto = [t for t in range(1, m.delivery_tag + 1) if t not in state["acked"]] \
            if m.multiple else [m.delivery_tag]
        for t in upto:
            state["acked"].add(t)
            state["order"].append((kind, t))
        if len(state["acked"]) == state["tags"] and state["tags"]:
            ch = state["ch"]
            ch.queue_delete(q, callback=lambda _: ch.exchange_delete(ex, callback=lambda _: stop("done")))

    def on_close(conn, reason):
        conn.ioloop.stop()

    conn = pika.SelectConnection(params(), on_open_callback=on_open,
                                 on_open_error_callback=lambda c, e: (events.append(f"open error {e}"), c.ioloop.stop()),
                                 on_close_callback=on_close)
    state["conn"] = conn
    conn.ioloop.call_later(10, lambda: stop("timeout"))
    conn.ioloop.start()
    for n in range(1, state["tags"] + 1):
        evs = [e for e in state["order"] if e[1] == n]
        say(f"select: message {n}:", "; ".join(" ".join(str(x) for x in e if x != n) for e in evs))
    bad = [n for n, i in state["returns"].items()
           if any(e[1] == n and e[0] != "return" and state["order"].index(e) < i for e in state["order"])]
    say("select: a confirm came before its basic.return for", bad)
    for e in events:
        say("select:", e)


# --- below the client libraries: raw frames ------------------------------------------------


def shortstr(v):
    v = v.encode() if isinstance(v, str) else v
    return bytes([len(v)]) + v


def longstr_enc(v):
    v = v.encode() if isinstance(v, str) else v
    return struct.pack(">I", len(v)) + v


def table_enc(items):
    """items: (name, type code, encoded value bytes)."""
    body = b"".join(shortstr(k) + t.encode() + v for k, t, v in items)
    return struct.pack(">I", len(body)) + body


class Raw:
    """One AMQP connection driven frame by frame, for what client libraries cannot send."""

    def __init__(self, header=b"AMQP\x00\x00\x09\x01"):
        u = urllib.parse.urlsplit(URL)
        self.user, self.password = u.username, u.password
        self.s = socket.create_connection((u.hostname, u.port or 5672), timeout=5)
        self.buf = b""
        self.timed_out = False
        if header:
            self.s.sendall(header)

    def recv(self):
        try:
            c = self.s.recv(65536)
        except ConnectionResetError:
            return None
        except socket.timeout:
            self.timed_out = True
            return None
        return c or None

    def need(self, n):
        while len(self.buf) < n:
            c = self.recv()
            if c is None:
                return False
            self.buf += c
        return True

    def frame(self):
        """(type, channel, payload), or None once the broker closed the socket."""
        if not self.need(7):
            return None
        ftype, chan, size = struct.unpack(">BHI", self.buf[:7])
        if not self.need(7 + size + 1):
            return None
        payload, end = self.buf[7:7 + size], self.buf[7 + size]
        self.buf = self.buf[8 + size:]
        assert end == 0xCE, "frame end"
        return ftype, chan, payload

    def method_frame(self):
        """The next method frame as (channel, class, method, arguments), heartbeats skipped."""
        while True:
            f = self.frame()
            if f is None:
                return None
            if f[0] == 1:
                cls, meth = struct.unpack(">HH", f[2][:4])
                return f[1], cls, meth, f[2][4:]

    def send(self, ftype, chan, payload):
        self.s.sendall(struct.pack(">BHI", ftype, chan, len(payload)) + payload + b"\xce")

    def method(self, chan, cls, meth, args=b""):
        self.send(1, chan, struct.pack(">HH", cls, meth) + args)

    def handshake(self, mech="PLAIN", user=None, password=None, channel_max=2047, frame_max=131072,
                  heartbeat=0, vhost="/"):
        """Start, start-ok, tune, tune-ok, open. Returns the broker's tune, or a close text."""
        user = self.user if user is None else user
        password = self.password if password is None else password
        m = self.method_frame()
        if mech == "PLAIN":
            resp = b"\x00" + user.encode() + b"\x00" + password.encode()
        else:
            resp = table_enc([("LOGIN", "S", longstr_enc(user)),
                              ("PASSWORD", "S", longstr_enc(password))])[4:]
        props = table_enc([("product", "S", longstr_enc("faultline-raw")),
                           ("capabilities", "F", table_enc([("authentication_failure_close", "t", b"\x01")]))])
        self.method(0, 10, 11, props + shortstr(mech) + longstr_enc(resp) + shortstr("en_US"))
        m = self.method_frame()
        if m is None or (m[1], m[2]) != (10, 30):
            return "no tune: " + self.closing(m)
        tune = struct.unpack(">HIH", m[3][:8])
        self.method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat))
        self.method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00")
        m = self.method_frame()
        if m is None or (m[1], m[2]) != (10, 41):
            return "no open-ok: " + self.closing(m)
        return tune

    def closing(self, m):
        """m (a close from the broker, answered with close-ok) and what follows it."""
        if m is None:
            return "timed out" if self.timed_out else "socket closed, no connection.close"
        text = describe(m)
        if (m[1], m[2]) == (10, 50):
            self.method(0, 10, 51)
            text += "; then " + self.after_close()
        return text

    def after_close(self, limit=5.0):
        """Whether the broker closes the socket (within limit seconds) once the close is done."""
        self.s.settimeout(limit)
        t0 = time.monotonic()
        while True:
            f = self.frame()
            if f is None:
                break
            if f[0] != 8 or time.monotonic() - t0 > limit:
                return "frame " + repr(f[:2])
        return f"no socket close for {limit:g} s" if self.timed_out else "socket closed"

    def outcome(self, limit=5.0):
        """What the broker does next: the close it sends (answered with close-ok) and whether
        the socket then closes, or that it closed the socket without a word."""
        self.s.settimeout(limit)
        return self.closing(self.method_frame())

    def close(self):
        self.s.close()


def heartbeat_case():
    """The broker sends heartbeats at the negotiated rate and drops a silent client."""
    r = Raw()
    r.handshake(heartbeat=1)
    r.s.settimeout(8)
    t0 = time.monotonic()
    kinds = []
    f = None
    while time.monotonic() - t0 < 8:
        f = r.frame()
        if f is None:
            break
        kinds.append(str(f[0]) if f[0] != 1 else describe((f[1],) + struct.unpack(">HH", f[2][:4]) + (f[2][4:],)))
    gone = time.monotonic() - t0
    r.close()
    return (f"frames seen {sorted(set(kinds))} heartbeats >= 1: {kinds.count('8') >= 1} "
            f"dropped within 2-6 s: {f is None and 2 <= gone <= 6}")


def parallel(fns):
    """Runs fns side by side (each opens its own connections); their results, in order."""
    import threading
    out = [None] * len(fns)

    def run(i):
        try:
            out[i] = fns[i]()
        except Exception as e:
            out[i] = f"UNEXPECTED {type(e).__name__} {e}"

    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def field_round_trip(items):
    """Publishes a message whose headers are table items through amq.headers to a queue
    bound with x-match any on "match", gets it back and says what happened."""
    headers = table_enc(items + [("match", "S", longstr_enc("yes"))])
    r = Raw()
    r.handshake()
    r.method(1, 20, 10, shortstr(""))
    r.method_frame()
    q = P + "raw-types"
    r.method(1, 50, 10, b"\x00\x00" + shortstr(q) + b"\x00" + table_enc([]))
    r.method_frame()
    r.method(1, 50, 20, b"\x00\x00" + shortstr(q) + shortstr("amq.headers") + shortstr("") + b"\x00" +
             table_enc([("x-match", "S", longstr_enc("any")), ("match", "S", longstr_enc("yes"))]))
    r.method_frame()
    r.method(1, 60, 40, b"\x00\x00" + shortstr("amq.headers") + shortstr("") + b"\x00")
    r.send(2, 1, struct.pack(">HHQH", 60, 0, 4, 1 << 13) + headers)
    r.send(3, 1, b"body")
    r.method(1, 60, 70, b"\x00\x00" + shortstr(q) + b"\x01")
    m = r.method_frame()
    if m is None or (m[1], m[2]) != (60, 71):
        out = r.closing(m)
        r.close()
        r = Raw()
        r.handshake()
        r.method(1, 20, 10, shortstr(""))
        r.method_frame()
    else:
        f = r.frame()
        same = f[2][14:] == headers
        out = "routed, headers back " + ("byte for byte" if same else "CHANGED: " + f[2][14:].hex())
        r.frame()
    r.method(1, 50, 40, b"\x00\x00" + shortstr(q) + b"\x00")
    r.method_frame()
    r.close()
    return out


def describe(m):
    if m is None:
        return "socket closed"
    chan, cls, meth, args = m
    if (cls, meth) in ((10, 50), (20, 40)):
        code = struct.unpack(">H", args[:2])[0]
        text = args[3:3 + args[2]].decode()
        fcls, fmeth = struct.unpack(">HH", args[3 + args[2]:7 + args[2]])
        what = "connection.close" if cls == 10 else f"channel.close (channel {chan})"
        return f"{what} {code} {text!r} (failing method {fcls}.{fmeth})"
    return f"method {cls}.{meth} on channel {chan}"


def s_raw():
    """Below the client libraries: protocol headers, connection.start byte for byte, tune,
    AMQPLAIN, malformed and unexpected frames, heartbeats."""
    for name, hdr in (("AMQP 0-9", b"AMQP\x01\x01\x00\x09"), ("AMQP 1.0", b"AMQP\x00\x01\x00\x00"),
                      ("AMQP 0-8", b"AMQP\x01\x01\x08\x00"), ("AMQP 0-10", b"AMQP\x01\x01\x00\x0a"),
                      ("TLS-AMQP", b"AMQP\x02\x00\x09\x01"), ("HTTP", b"GET / HTTP/1.1\r\n\r\n")):
        r = Raw(hdr)
        r.s.settimeout(2)
        if r.need(1) and r.buf[:1] == b"\x01":
            f = r.frame()
            say(f"raw: header {name} -> method frame {struct.unpack('>HH', f[2][:4])}"
                f" version {f[2][4]}-{f[2][5]}")
        else:
            r.need(8)
            got = r.buf
            r.recv()
            say(f"raw: header {name} -> {got!r}", "then", "nothing for 2 s" if r.timed_out else "closed")
        r.close()

    r = Raw()
    ftype, chan, payload = r.frame()
    cls, meth = struct.unpack(">HH", payload[:4])
    say("raw: first frame type", ftype, "channel", chan, "method", f"{cls}.{meth}")
    table, off = decode_table(payload, 6)
    mech, off = longstr(payload, off)
    loc, off = longstr(payload, off)
    # (RabbitMQ lists its mechanisms in an order that changes between boots: sorted here)
    say("raw: connection.start version", payload[4], payload[5],
        "mechanisms (sorted)", repr(" ".join(sorted(mech.split()))),
        "locales", repr(loc), "trailing bytes", len(payload) - off)
    for line in show_table(table, drop=("version", "platform", "cluster_name")):
        say("raw: server-properties", line)
    r.close()

    for label, kw in (("PLAIN defaults", {}), ("AMQPLAIN", dict(mech="AMQPLAIN")),
                      ("channel_max 5 frame_max 4096 heartbeat 7",
                       dict(channel_max=5, frame_max=4096, heartbeat=7))):
        r = Raw()
        say(f"raw: {label}: tune (channel_max, frame_max, heartbeat) =", r.handshake(**kw))
        r.method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0))
        # (the client closes the socket after close-ok; RabbitMQ waits for it to)
        say(f"raw: {label}: our connection.close ->", describe(r.method_frame()))
        r.close()

    # the handshake going wrong
    cases = [
        ("wrong password (AMQPLAIN)", dict(mech="AMQPLAIN", password="nope")),
        ("unknown mechanism", dict(mech="EXTERNAL")),
        ("tune-ok frame_max above the broker's", dict(frame_max=1 << 20)),
        ("tune-ok frame_max below 4096", dict(frame_max=1024)),
        ("tune-ok channel_max above the broker's", dict(channel_max=4000)),
        ("tune-ok channel_max 0 (no limit)", dict(channel_max=0)),
        ("unknown vhost", dict(vhost="nowhere")),
    ]
    def handshake_case(kw):
        r = Raw()
        t = r.handshake(**kw)
        out = t if isinstance(t, str) else f"open, tune {t}; then {r.outcome(1)}"
        r.close()
        return out

    # (RabbitMQ closes the socket 3 s after most of these: they run side by side)
    for (label, _), out in zip(cases, parallel([lambda kw=kw: handshake_case(kw) for _, kw in cases])):
        say(f"raw: {label}:", out)

    # after a good handshake: one bad thing each
    later = []

    def bad(label, act, limit=5.0, fatal=False):
        def run():
            r = Raw()
            r.handshake()
            act(r)
            out = r.outcome(limit)
            r.close()
            return out
        if fatal:
            # RabbitMQ reads nothing more after a fatal frame error (not even close-ok) and
            # closes the socket 3 s later: these run side by side, below
            later.append((label, run))
        else:
            say(f"raw: {label}: ->", run())

    chan_open = lambda r, c=1: r.method(c, 20, 10, shortstr(""))
    bad("method on a channel never opened", lambda r: r.method(3, 50, 10, b"\x00\x00" + shortstr("q") + b"\x00" + table_enc([])))
    bad("channel.open twice", lambda r: (chan_open(r), r.method_frame(), chan_open(r)))
    bad("channel number above channel_max", lambda r: chan_open(r, 3000))
    bad("unknown frame type 9", lambda r: r.send(9, 0, b"x"))
    bad("bad frame end", lambda r: r.s.sendall(struct.pack(">BHI", 8, 0, 0) + b"\x00"), fatal=True)
    bad("frame larger than frame_max", lambda r: r.send(1, 0, b"\x00" * 200000), fatal=True)
    bad("declared frame size of 2 GiB", lambda r: r.s.sendall(struct.pack(">BHI", 1, 1, 1 << 31)), fatal=True)
    bad("heartbeat on channel 1", lambda r: (chan_open(r), r.method_frame(), r.send(8, 1, b"")))
    bad("content header without basic.publish",
        lambda r: (chan_open(r), r.method_frame(), r.send(2, 1, struct.pack(">HHQH", 60, 0, 1, 0))))
    bad("body frame without a header",
        lambda r: (chan_open(r), r.method_frame(), r.send(3, 1, b"x")))
    bad("method where a body was due",
        lambda r: (chan_open(r), r.method_frame(),
                   r.method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("x") + b"\x00"),
                   r.send(2, 1, struct.pack(">HHQH", 60, 0, 5, 0)),
                   r.method(1, 60, 10, struct.pack(">IH", 0, 1) + b"\x00")))
    bad("truncated queue.declare arguments",
        lambda r: (chan_open(r), r.method_frame(), r.method(1, 50, 10, b"\x00\x00\x05ab")))
    bad("method on channel 0 other than connection.*",
        lambda r: r.method(0, 50, 10, b"\x00\x00" + shortstr(P + "raw") + b"\x00" + table_enc([])))
    results = parallel([fn for _, fn in later] + [heartbeat_case])
    for (label, _), out in zip(later, results):
        say(f"raw: {label}: ->", out)
    say("raw: heartbeat 1, silent client:", results[-1])

    # field types through the broker: a header table with one field of each type code,
    # published through amq.headers (so the broker decodes the table), read back byte for byte
    types = [("b", b"\xfe"), ("B", b"\xfe"), ("s", b"\xff\xfe"), ("u", b"\xff\xfe"),
             ("I", b"\xff\xff\xff\xfe"), ("i", b"\xff\xff\xff\xfe"), ("l", struct.pack(">q", -2)),
             ("L", struct.pack(">Q", 2)), ("f", struct.pack(">f", 1.5)), ("d", struct.pack(">d", -2.25)),
             ("D", b"\x02\x00\x00\x01\x3a"), ("S", longstr_enc("žluť")), ("x", longstr_enc(b"\x00\xff")),
             ("t", b"\x01"), ("T", struct.pack(">Q", 1700000000)), ("V", b""),
             ("A", longstr_enc(b"I\x00\x00\x00\x01S\x00\x00\x00\x01x")),
             ("F", table_enc([("n", "t", b"\x00")]))]
    for code, value in types:
        say(f"raw: header field of type {code!r}:", field_round_trip([("k", code, value)]))
    say("raw: header table with all of them:",
        field_round_trip([("k" + c, c, v) for c, v in types]))



def longstr(b, off):
    n = struct.unpack_from(">I", b, off)[0]
    return b[off + 4:off + 4 + n].decode(), off + 4 + n


def decode_table(b, off):
    n = struct.unpack_from(">I", b, off)[0]
    off += 4
    end = off + n
    out = []
    while off < end:
        k = b[off + 1:off + 1 + b[off]].decode()
        off += 1 + b[off]
        v, off = decode_value(b, off)
        out.append((k, v))
    return out, end


def decode_value(b, off):
    """The few field types connection.start uses; anything else is reported as such."""
    t = chr(b[off])
    off += 1
    if t == "S":
        v, off = longstr(b, off)
        return ("S", v), off
    if t == "F":
        v, off = decode_table(b, off)
        return ("F", v), off
    if t == "t":
        return ("t", bool(b[off])), off + 1
    raise ValueError(f"field type {t!r} in connection.start")


def show_table(table, drop=(), indent=""):
    """One line per field, in the order sent, with its type code."""
    for k, (t, v) in table:
        if k in drop:
            yield f"{indent}{k} {t} <dropped>"
        elif t == "F":
            yield f"{indent}{k} F"
            yield from show_table(v, (), indent + "  ")
        else:
            yield f"{indent}{k} {t} {v!r}"


def s_raw_crashes():
    """Where RabbitMQ 3.10's connection process crashes and drops the socket without a
    connection.close (not in the default run: a fake may answer better; see amqp_observed.md)."""
    def bad(label, act):
        r = Raw()
        r.handshake()
        act(r)
        say(f"raw: {label}: ->", r.outcome(3))
        r.close()

    chan_open = lambda r: (r.method(1, 20, 10, shortstr("")), r.method_frame())
    bad("unknown class 99", lambda r: (chan_open(r), r.method(1, 99, 10)))
    bad("unknown method queue.99", lambda r: (chan_open(r), r.method(1, 50, 99)))
    bad("unknown field type in queue.declare arguments",
        lambda r: (chan_open(r), r.method(1, 50, 10, b"\x00\x00" + shortstr(P + "raw") + b"\x00" +
                                          table_enc([("k", "Q", b"\x00")]))))
    bad("malformed array in headers routed by amq.headers",
        lambda r: (chan_open(r),
                   r.method(1, 60, 40, b"\x00\x00" + shortstr("amq.headers") + shortstr("") + b"\x00"),
                   r.send(2, 1, struct.pack(">HHQH", 60, 0, 1, 1 << 13) +
                          table_enc([("a", "A", longstr_enc(b"Sx"))])),
                   r.send(3, 1, b"x")))
    bad("body longer than its header said",
        lambda r: (chan_open(r),
                   r.method(1, 60, 40, b"\x00\x00" + shortstr("") + shortstr("x") + b"\x00"),
                   r.send(2, 1, struct.pack(">HHQH", 60, 0, 2, 0)), r.send(3, 1, b"xyz")))


SECTIONS = [s_connection, s_raw, s_auth, s_exchanges, s_routing, s_queues, s_ttl_dlx, s_ack,
            s_consume, s_blocking_consume, s_confirms, s_tx, s_bodies, s_properties, s_channels,
            s_select_connection]


def main():
    global UNEXPECTED
    only = sys.argv[3:] if len(sys.argv) > 3 else None
    for fn in SECTIONS + ([s_raw_crashes] if only and "raw_crashes" in only else []):
        name = fn.__name__[2:]
        if only and name not in only:
            continue
        say("==", name)
        t0 = time.monotonic()
        try:
            fn()
        except Exception as e:  # a broken broker must show in the transcript, not stop it
            UNEXPECTED += 1
            say("UNEXPECTED", type(e).__name__, e)
        print(f"amqp_pika.py: {name} took {time.monotonic() - t0:.1f} s", file=sys.stderr)
    say("== end")
    return 1 if UNEXPECTED else 0


if __name__ == "__main__":
    sys.exit(main())

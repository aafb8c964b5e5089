"""Checks the spans otlp_receiver.js decoded (test_otlp_spans.sh): one trace per request.

    python3 otlp_check.py SPANS_FILE REQUESTS_FILE DEAD_ADDR
    python3 otlp_check.py --orders SPANS_FILE REQUESTS_FILE

REQUESTS_FILE has one line per gateway request: the trace id and the span id of the
traceparent curl sent. For each request, in its trace and nothing else:
  - one gateway SERVER span "POST /users", child of curl's span, service.name "gateway";
  - one CLIENT span per attempt (service.name "gateway", "shop.Users/CreateUser"), each a
    child of that SERVER span; attempt k (k >= 1) carries http.request.resend_count = k;
  - one users SERVER span, service.name "users", child of the last CLIENT span.
Also: no span lies outside the requests' traces, and some request was retried (its first
attempt went to DEAD_ADDR, which refuses connections, and its second elsewhere).
With --orders (POST /orders through the gateway, the order then paid over the broker), each
request's trace is the whole flow, every span the child of the one before it: gateway
SERVER "POST /orders" (child of curl's span) → gateway CLIENT shop.Orders/CreateOrder →
orders SERVER → orders PRODUCER "shop publish" (order.created) → payments CONSUMER →
payments PRODUCER (payment.completed) → orders CONSUMER; the trace context crossed the
broker in the messages' headers.
Prints "ok: ..." / "FAIL: ..." lines; exits 1 if any check failed.
"""
import collections
import json
import sys

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # opentelemetry.proto.trace.v1.Span.SpanKind

fails = 0


def check(cond, what):
    global fails
    if cond:
        print("ok: " + what)
    else:
        fails += 1
        print("FAIL: " + what)
    return cond


def main():
    spans_file, requests_file, dead = sys.argv[1:4]
    spans = [json.loads(l) for l in open(spans_file) if l.strip()]
    requests = [l.split() for l in open(requests_file) if l.strip()]
    check(len(spans) > 0, "the receiver decoded %d spans" % len(spans))
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["traceId"]].append(s)
    wanted = {t for t, _ in requests}
    stray = [s for s in spans if s["traceId"] not in wanted]
    check(not stray, "every span belongs to a request's trace (%d outside: %s)"
          % (len(stray), ", ".join("%s %s in %s" % (s["service"], s["name"], s["traceId"])
                                   for s in stray[:4])))
    retried = 0
    for trace, parent in requests:
        t = by_trace.get(trace, [])
        gw = [s for s in t if s["kind"] == SERVER and s["parentSpanId"] == parent]
        if not check(len(gw) == 1 and gw[0]["service"] == "gateway"
                     and gw[0]["name"] == "POST /users",
                     "trace %s: one gateway SERVER span POST /users, child of curl's %s (%s)"
                     % (trace, parent, [(s["service"], s["name"]) for s in gw])):
            continue
        clients = [s for s in t if s["kind"] == CLIENT]
        clients.sort(key=lambda s: s["attributes"].get("http.request.resend_count", 0))
        resends = [s["attributes"].get("http.request.resend_count", 0) for s in clients]
        check(clients and all(s["parentSpanId"] == gw[0]["spanId"] for s in clients)
              and all(s["service"] == "gateway" and s["name"] == "shop.Users/CreateUser"
                      for s in clients)
              and resends == list(range(len(clients))),
              "trace %s: %d gateway CLIENT spans shop.Users/CreateUser, children of its SERVER "
              "span, resend counts %s" % (trace, len(clients), resends))
        users = [s for s in t if s["kind"] == SERVER and s is not gw[0]]
        check(len(users) == 1 and clients and users[0]["service"] == "users"
              and users[0]["name"] == "shop.Users/CreateUser"
              and users[0]["parentSpanId"] == clients[-1]["spanId"],
              "trace %s: one users SERVER span, child of the last CLIENT span (%s)"
              % (trace, [(s["service"], s["parentSpanId"]) for s in users]))
        check(len(t) == 2 + len(clients), "trace %s: %d spans, no others" % (trace, len(t)))
        if len(clients) == 2:
            retried += 1
            check(clients[0]["attributes"].get("server.address") == dead
                  and clients[1]["attributes"].get("server.address") != dead,
                  "trace %s: the first attempt went to the dead %s, the retry to %s"
                  % (trace, dead, clients[1]["attributes"].get("server.address")))
    check(retried > 0, "%d requests were retried once (two CLIENT spans)" % retried)
    return 1 if fails else 0


ORDER_FLOW = [  # (service, kind, routing key of a message span or None), parent first
    ("gateway", SERVER, None),
    ("gateway", CLIENT, None),
    ("orders", SERVER, None),
    ("orders", PRODUCER, "order.created"),
    ("payments", CONSUMER, "order.created"),
    ("payments", PRODUCER, "payment.completed"),
    ("orders", CONSUMER, "payment.completed"),
]


def main_orders():
    spans_file, requests_file = sys.argv[2:4]
    spans = [json.loads(l) for l in open(spans_file) if l.strip()]
    requests = [l.split() for l in open(requests_file) if l.strip()]
    check(len(spans) > 0, "the receiver decoded %d spans" % len(spans))
    by_trace = collections.defaultdict(list)
    for s in spans:
        by_trace[s["traceId"]].append(s)
    for trace, parent in requests:
        t = by_trace.get(trace, [])
        chain, want_parent = [], parent
        for service, kind, key in ORDER_FLOW:
            found = [s for s in t if s["parentSpanId"] == want_parent and s["kind"] == kind
                     and s["service"] == service
                     and (key is None or s["attributes"].get(
                         "messaging.rabbitmq.destination.routing_key") == key)]
            if len(found) != 1:
                break
            chain.append(found[0])
            want_parent = found[0]["spanId"]
        check(len(chain) == len(ORDER_FLOW),
              "trace %s: gateway SERVER → CLIENT → orders SERVER → PRODUCER order.created → "
              "payments CONSUMER → PRODUCER payment.completed → orders CONSUMER, each the child "
              "of the one before (found %s; the trace has %s)"
              % (trace, " → ".join("%s %s" % (s["service"], s["name"]) for s in chain),
                 sorted((s["service"], s["kind"], s["name"]) for s in t)))
        if chain:
            check(chain[0]["name"] == "POST /orders",
                  "trace %s: the gateway's span is POST /orders (%s)" % (trace, chain[0]["name"]))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main_orders() if sys.argv[1:2] == ["--orders"] else main())

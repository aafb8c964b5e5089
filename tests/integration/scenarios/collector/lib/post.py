"""Posts OTLP payloads to the collector ($OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces) and prints
one line per post: "<label> <status> <body as hex>". Payloads are built by hand (protobuf wire
format), so nothing beyond the standard library is needed."""
import gzip
import json
import os
import struct
import sys
import urllib.error
import urllib.request

URL = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/traces"


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, data):
    return varint(field << 3 | 2) + varint(len(data)) + data


def fixed64(field, v):
    return varint(field << 3 | 1) + struct.pack("<Q", v)


def kv(key, s):
    return ld(1, key.encode()) + ld(2, ld(1, s.encode()))


def span(trace, sid, parent, name, kind, t0, t1):
    b = ld(1, bytes.fromhex(trace)) + ld(2, bytes.fromhex(sid))
    if parent:
        b += ld(4, bytes.fromhex(parent))
    b += ld(5, name.encode()) + varint(6 << 3) + varint(kind)
    b += fixed64(7, t0) + fixed64(8, t1)
    b += ld(9, ld(1, b"peer") + ld(2, varint(3 << 3) + varint(7)))
    return b


def request(spans, service="script"):
    res = ld(1, ld(1, kv("service.name", service)) + ld(1, kv("service.instance.id", service + "-x")))
    return ld(1, res + ld(2, b"".join(ld(2, s) for s in spans)))


def post(label, body, ctype="application/x-protobuf", enc=None):
    req = urllib.request.Request(URL, data=body, method="POST")
    req.add_header("Content-Type", ctype)
    if enc:
        req.add_header("Content-Encoding", enc)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            status, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    print(label, status, data.hex(), flush=True)


now = int(sys.argv[1]) if len(sys.argv) > 1 else 0
T = "0af7651916cd43dd8448eb211c80319c"
P = "b7ad6b7169203331"
C = "00f067aa0ba902b7"
ok = request([span(T, P, None, "root", 2, now, now + 5000000),
              span(T, C, P, "child", 3, now + 1000000, now + 2000000)])
post("pb", ok)
post("gzip", gzip.compress(request([span("1" * 32, "2" * 16, None, "zipped", 1, now, now + 1)])),
     enc="gzip")
post("partial", request([span("3" * 32, "4" * 16, None, "good", 2, now, now + 1),
                         span("00" * 16, "5" * 16, None, "zero trace id", 2, now, now + 1)]))
post("json", json.dumps({"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jsonsvc"}}]},
    "scopeSpans": [{"spans": [{
        "traceId": "6" * 32, "spanId": "7" * 16, "name": "from json", "kind": 5,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 3000),
        "attributes": [{"key": "n", "value": {"intValue": "42"}}],
        "status": {"code": 2, "message": "boom"}}]}]}]}).encode(), ctype="application/json")
post("garbage", b"\xff\xff\xff\xff")
post("truncated", ok[:-3])
post("badjson", b"{", ctype="application/json")
post("badgzip", b"\x1f\x8bnot really", enc="gzip")
post("badtype", ok, ctype="text/plain")
post("empty", b"")
print("done", flush=True)

# Checks a faultline JSON report: valid JSON, valid against docs/report.schema.json (with
# Debian's python3-jsonschema), and, with "rich", what test_json.c's run (rich.h) must read
# back as: verdicts, paired fault intervals, samples, spans and the escaped log bytes.
# Usage: json_check.py SCHEMA REPORT [rich]. Exits non-zero on any mismatch.
import json
import sys

import jsonschema


def check(cond, what):
    if not cond:
        sys.exit("json_check: " + what)


schema_path, path = sys.argv[1], sys.argv[2]
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
with open(path, "rb") as f:
    raw = f.read()
try:
    text = raw.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("json_check: not UTF-8: %s" % e)
doc = json.loads(text)
errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
check(not errors, "schema: " + "; ".join("%s at %s" % (e.message, list(e.path)) for e in errors[:5]))

if len(sys.argv) > 3 and sys.argv[3] == "rich":
    check(doc["version"] == 1 and doc["seed"] == 42 and doc["faultline"] == "9.8.7", "header")
    check(doc["counts"] == {"scenarios": 3, "passed": 1, "failed": 1, "errors": 0, "skipped": 1},
          "counts %r" % doc["counts"])
    quiet, fail, skip = doc["scenarios"]
    check([s["verdict"] for s in doc["scenarios"]] == ["pass", "fail", "skip"], "run order")
    check(fail["message"] == "error rate below 1%: 0.2 & <rising>", "message %r" % fail["message"])
    check(fail["started"] == "2024-05-01T12:34:56.000Z", "started %r" % fail["started"])
    ev = fail["events"][fail["failure_event"]]
    check(ev["kind"] == "assert" and not ev["ok"] and ev["t"] == 5.0, "failure event %r" % ev)
    states = [(e["subject"], e["state"]) for e in fail["events"] if e["kind"] == "process"]
    check(("users-1", "paused") in states and ("users-2", "down") in states, "states %r" % states)
    faults = {f["id"]: f for f in fail["faults"]}
    check(sorted(faults) == [1, 2, 3, 4, 5], "fault ids %r" % sorted(faults))
    lat = faults[1]
    check((lat["on"], lat["off"], lat["fired"], lat["instant"]) == (1.0, 4.0, True, False),
          "latency interval %r" % lat)
    check(lat["counts"]["chunks"] == 10 and lat["counts"]["bytes"] == 1000, "latency counts")
    check(faults[2]["instant"] and faults[2]["off"] is None, "crash is an instant")
    check(faults[4]["off"] is None and faults[4]["fired"] is None, "consul down left on")
    check(faults[5]["fired"] is False and faults[5]["end_text"] == "healed partition",
          "partition never fired %r" % faults[5])
    series = fail["series"]
    check(len(series) == 1 and series[0]["name"] == "gateway" and len(series[0]["samples"]) == 7,
          "series")
    s2 = series[0]["samples"][2]
    check((s2["t"], s2["sent"], s2["ok"], s2["errors"], s2["p50_ms"], s2["max_ms"]) ==
          (2.0, 100, 80, 20, 110, 880), "sample 2 %r" % s2)
    spans = fail["spans"]
    check(len(spans) == 11, "%d spans" % len(spans))
    retry = [s for s in spans if s["span_id"] == "a000000000000003"][0]
    check(retry["attempt"] == 2 and retry["attributes"] == {"retry.count": "1"} and
          retry["parent_id"] == "a000000000000001" and retry["kind"] == "client" and
          retry["status"] == "error" and retry["status_message"] == "UNAVAILABLE: <down> \x1b[1m",
          "retried span %r" % retry)
    check(abs(retry["start"] - 2.15) < 1e-6 and abs(retry["duration"] - 0.1) < 1e-6, "span times")
    log = fail["logs"][0]["text"]
    for want in ["ansi \x1b[31mred\x1b[0m \x1b]0;title\x07\n", "bad byte \\xff here",
                 "overlong \\xc0\\xaf slash", "surrogate \\xed\\xa0\\x80 lone",
                 "nonchar \ufffe fffe", "c1 \x9b csi, del \x7f", "crlf line\r\n",
                 "utf8 h\u00e9llo \u2713 \U0001f4a5\n", "<script>alert(1)</script> bidi[\u202e]"]:
        check(want in log, "log lacks %r" % want)
    check(skip["message"] == "not today" and skip["events"] == [], "skipped")
    gw = [l for l in fail["logs"] if l["instance"] == "gateway-1"][0]
    check(gw["failure_line"] == 50 and gw["text"].split("\n")[50] == "gw 051", "failure_line")
    check(fail["logs"][0]["failure_line"] is None, "no mark, no failure_line")
    check(fail["topology"].startswith("gateway (needs users)"), "topology")
    check(quiet["failure_event"] is None, "no failure event when passed")

# The real binary writing all three reports (--junit, --html, --json) for a run with faults,
# a failure, a skip and a service printing hostile bytes; report paths checked before anything
# runs; --shard splitting a suite deterministically and merge-junit joining the shards; the
# console's live status line on a terminal (through script(1)) and plain lines otherwise.
. "$(dirname "$0")/lib.sh"
it_init

R="$FL_TMP/r"
mkdir -p "$R"
SCHEMA="$FL_SOURCE_DIR/docs/report.schema.json"
XSD="$FL_SOURCE_DIR/tests/unit/reports/junit.xsd"
JXSD="$FL_SOURCE_DIR/tests/unit/reports/junit-jenkins.xsd"

expect_exit 1 "$FL" run --junit "$R/junit.xml" --html "$R/report.html" --json "$R/report.json" reports/
cp "$OUT" "$FL_TMP/run.out"
expect_summary "1 passed, 1 failed, 0 errors, 1 skipped"
for f in junit.xml report.html report.json; do
    [ -s "$R/$f" ] && ok "$f written" || fail "$f missing"
done

# No raw NUL, ESC, DEL or 0xFF byte reaches any report or the console.
for f in "$R/junit.xml" "$R/report.html" "$R/report.json" "$FL_TMP/run.out"; do
    raw=$(tr -cd '\000\033\177\377' <"$f" | wc -c | tr -d ' ')
    expect_eq "raw NUL/ESC/DEL/0xFF bytes in $(basename "$f")" "$raw" 0
done

# HTML: the parts a reader needs, the hostile log escaped (markup and a bidi override).
H="$R/report.html"
expect_fgrep '<table id="summary">' "$H"
expect_fgrep '<g class="lane" data-instance="echo-1">' "$H"
expect_fgrep '<g class="lane" data-instance="client-1">' "$H"
expect_fgrep '<rect class="fault"' "$H"
expect_fgrep '<line class="instant"' "$H"
expect_fgrep '<circle class="assert fail"' "$H"
expect_fgrep '<circle class="assert ok"' "$H"
expect_fgrep '<table class="faults">' "$H"
expect_fgrep 'the scenario failed here' "$H"
expect_fgrep 'tag[&lt;script&gt;alert(1)&lt;/script&gt;] bidi[\xe2\x80\xae]' "$H"
expect_no_fgrep '<script>alert' "$H"
expect_no_grep '(href|src|action)="?[a-z]+:' "$H" # text may quote URLs; nothing links out

if xmllint --noout --schema "$XSD" "$R/junit.xml" 2>"$FL_TMP/xmllint.err" &&
    xmllint --noout --schema "$JXSD" "$R/junit.xml" 2>>"$FL_TMP/xmllint.err"; then
    ok "junit.xml valid against junit.xsd and junit-jenkins.xsd"
else
    fail "junit.xml invalid"
    show "$FL_TMP/xmllint.err"
fi

# JSON: valid against the schema; fault intervals, states and bytes as the run had them.
if /usr/bin/python3 - "$SCHEMA" "$R/report.json" "$R/junit.xml" >"$FL_TMP/py.out" 2>&1 <<'EOF'; then
import json, sys
import jsonschema
from junitparser import JUnitXml

schema, path, xml = sys.argv[1:4]
problems = []
def check(cond, what):
    if not cond:
        problems.append(what)

doc = json.load(open(path, encoding="utf-8"))
errs = list(jsonschema.Draft202012Validator(json.load(open(schema))).iter_errors(doc))
check(not errs, "schema: %s" % [e.message for e in errs[:3]])
sc = {s["name"]: s for s in doc["scenarios"]}
copes = sc["faults come and go, and the client copes"]
f = {x["text"]: x for x in copes["faults"]}
lat = f.get("latency{ms=50}")
check(lat and lat["off"] is not None and lat["off"] > lat["on"] and lat["fired"] is True,
      "latency interval %r" % lat)
check(lat and lat["end_text"].startswith("removed latency{ms=50}: applied to"), "removed text")
pause = f.get("pause")
check(pause and pause["subject"] == "echo-2" and pause["off"] is not None, "pause %r" % pause)
check(f.get("crash", {}).get("instant") is True, "crash instant")
down = f.get("down")
check(down and down["subject"] == "consul" and down["off"] is not None, "consul down %r" % down)
part = f.get("partition")
check(part and part["off"] is not None and part["end_text"].startswith("healed partition"),
      "partition healed %r" % part)
states = {(e["subject"], e.get("state")) for e in copes["events"] if e["kind"] == "process"}
for want in [("echo-2", "paused"), ("echo-1", "down"), ("echo-1", "up"), ("client-1", "starting")]:
    check(want in states, "process state %r in %r" % (want, sorted(states)))
fails = sc["fails while a partition is on <&>"]
check(fails["verdict"] == "fail" and fails["failure_event"] is not None, "failing scenario")
left = [x for x in fails["faults"] if x["text"] == "partition"]
check(left and left[0]["off"] is not None and left[0]["end_text"].startswith("still on at the end"),
      "partition left on closes at teardown %r" % left)
check(fails["topology"].startswith("client (needs echo), echo x2, nasty"), fails["topology"])
nasty = [l for l in fails["logs"] if l["instance"] == "nasty-1"][0]["text"]
check("nul[\x00] esc[\x1b[31m] ff[\\xff]" in nasty, "nasty log %r" % nasty)
check("bidi[\u202e]" in nasty, "bidi kept as a character in JSON %r" % nasty)
check(sc["skipped"]["verdict"] == "skip", "skip")
check(fails["logs"] and all(l["failure_line"] is not None for l in fails["logs"]),
      "failing scenario: every log marked where the failure came %r" %
      [(l["instance"], l["failure_line"]) for l in fails["logs"]])
check(all(l["failure_line"] is None for l in copes["logs"]), "passing scenario: no mark")
cl = [l for l in fails["logs"] if l["instance"] == "client-1"][0]
before = "\n".join(cl["text"].split("\n")[:cl["failure_line"]])
check("stopping on SIGTERM" not in before and "stopping on SIGTERM" in cl["text"],
      "the mark comes before teardown: %r" % cl)

x = JUnitXml.fromfile(xml)
suite = list(x)[0]
props = {p.name: p.value for p in suite.properties()}
check(props.get("topology", "").startswith("client (needs echo), echo x2"), "topology %r" % props)
check(str(doc["seed"]) == props.get("seed"), "seed")
cases = {c.name: c for c in suite}
check(cases["skipped"].is_skipped, "junit skipped")
for p in problems:
    print("reports: " + p)
sys.exit(1 if problems else 0)
EOF
    ok "JSON report valid and as the run was; JUnit properties"
else
    fail "JSON/JUnit checks:"
    sed 's/^/  | /' "$FL_TMP/py.out"
fi

# Bad report paths: exit 2 at once, before any scenario runs.
for args in "--html /nonexistent-fl/r.html" "--json $R" "--junit $R/x.xml --html $R/x.xml" \
    "--html ''"; do
    eval "expect_exit 2 \"\$FL\" run $args reports/"
    expect_no_fgrep "reports/a.lua:" "$OUT"
    expect_grep '^faultline: ' "$ERR"
done

# --shard: the halves partition the suite; same split every time; merge-junit joins them.
S="$FL_TMP/shards"
mkdir -p "$S"
expect_exit 2 "$FL" run --shard 0/2 verdicts/basic.lua
expect_exit 2 "$FL" run --shard 3/2 verdicts/basic.lua
expect_exit 2 "$FL" run --shard 1/x verdicts/basic.lua
expect_exit 1 "$FL" run --junit "$S/all.xml" verdicts/basic.lua
expect_exit 1 "$FL" run --shard 1/2 --junit "$S/1.xml" verdicts/basic.lua
expect_fgrep "shard 1/2: " "$OUT"
run "$FL" run --shard 2/2 --junit "$S/2.xml" verdicts/basic.lua
run "$FL" run --shard 1/2 --junit "$S/1b.xml" verdicts/basic.lua
names() { grep -o '<testcase classname="[^"]*" name="[^"]*"' "$1" | sort; }
names "$S/1.xml" >"$S/n1"
names "$S/2.xml" >"$S/n2"
names "$S/1b.xml" >"$S/n1b"
names "$S/all.xml" >"$S/nall"
expect_eq "shard 1 is the same twice" "$(cat "$S/n1")" "$(cat "$S/n1b")"
expect_eq "shards 1 and 2 share no scenario" "$(comm -12 "$S/n1" "$S/n2" | wc -l | tr -d ' ')" 0
expect_eq "shards 1 and 2 are the whole suite" "$(sort "$S/n1" "$S/n2")" "$(cat "$S/nall")"
n1=$(wc -l <"$S/n1")
n2=$(wc -l <"$S/n2")
expect_eq "shards differ by at most one scenario" "$(((n1 - n2) * (n1 - n2) <= 1))" 1
expect_exit 0 "$FL" merge-junit "$S/merged.xml" "$S/1.xml" "$S/2.xml"
expect_eq "merged has every scenario" "$(names "$S/merged.xml")" "$(cat "$S/nall")"
total() { sed -n 's/.*<testsuites name="faultline" tests="\([0-9]*\)" failures="\([0-9]*\)" errors="\([0-9]*\)".*/\1 \2 \3/p' "$1"; }
expect_eq "merged counts" "$(total "$S/merged.xml")" "$(total "$S/all.xml")"
if xmllint --noout --schema "$XSD" "$S/merged.xml" 2>"$FL_TMP/xmllint.err" &&
    xmllint --noout --schema "$JXSD" "$S/merged.xml" 2>>"$FL_TMP/xmllint.err"; then
    ok "merged.xml valid against junit.xsd and junit-jenkins.xsd"
else
    fail "merged.xml invalid"
    show "$FL_TMP/xmllint.err"
fi
expect_exit 2 "$FL" merge-junit "$S/m.xml" "$R/report.json"
expect_fgrep "report.json: not a faultline JUnit file" "$ERR"
expect_exit 2 "$FL" merge-junit "$S/m.xml" "$S/missing.xml"
expect_exit 2 "$FL" merge-junit "$S/m.xml"

# Console: plain lines when not a terminal; on one (script(1) gives a pty), a live status line
# redrawn in place with the faults on; colour only there, and never with NO_COLOR.
expect_no_grep "$(printf '\r')" "$FL_TMP/run.out"
if command -v script >/dev/null 2>&1; then
    T="$FL_TMP/tty"
    mkdir -p "$T"
    timeout -k 5 "$IT_LIMIT" script -qefc "'$FL' run --filter 'copes' reports/" "$T/typescript" \
        >"$T/out" 2>&1 </dev/null
    expect_fgrep "$(printf '\r\033[33m\342\226\266 reports/a.lua: faults come and go')" "$T/out"
    expect_fgrep "$(printf '\033[K')" "$T/out"
    expect_fgrep "$(printf '\033[32m')" "$T/out"
    timeout -k 5 "$IT_LIMIT" env NO_COLOR=1 script -qefc "'$FL' run --filter 'copes' reports/" \
        "$T/typescript2" >"$T/out2" 2>&1 </dev/null
    expect_fgrep "$(printf '\r\342\226\266 reports/a.lua')" "$T/out2"
    expect_no_grep "$(printf '\033')\\[[0-9;]*m" "$T/out2"
    timeout -k 5 "$IT_LIMIT" script -qefc "'$FL' run --quiet --filter 'copes' reports/" \
        "$T/typescript3" >"$T/out3" 2>&1 </dev/null
    expect_no_fgrep "$(printf '\342\226\266')" "$T/out3"
else
    echo "note: script(1) not found, terminal checks skipped"
fi

it_done

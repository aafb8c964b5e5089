# --junit on a real run: pass, fail, error (Lua and usage) and skip across two files, with a
# service that prints bytes a report must escape. The file must be well-formed, valid
# against tests/unit/reports/junit.xsd, and read right by junitparser (what CI tools use).
. "$(dirname "$0")/lib.sh"
it_init

XML="$FL_TMP/junit.xml"
expect_exit 2 "$FL" run --junit "$XML" junit/
[ -s "$XML" ] && ok "the report was written" || fail "no report at $XML"
seed=$(sed -n '1s/.*seed \([0-9][0-9]*\).*/\1/p' "$OUT")
expect_summary "3 passed, 1 failed, 2 errors, 1 skipped"

# No raw NUL, ESC or 0xFF byte reaches the report or the console.
for f in "$XML" "$OUT"; do
    raw=$(tr -cd '\000\033\377' <"$f" | wc -c | tr -d ' ')
    expect_eq "raw NUL/ESC/0xFF bytes in $(basename "$f")" "$raw" 0
done

if xmllint --noout "$XML" 2>"$FL_TMP/xmllint.err"; then
    ok "xmllint: well-formed"
else
    fail "xmllint: not well-formed"
    show "$FL_TMP/xmllint.err"
fi
XSD="$FL_SOURCE_DIR/tests/unit/reports/junit.xsd"
if [ -f "$XSD" ]; then
    if xmllint --noout --schema "$XSD" "$XML" 2>"$FL_TMP/xmllint.err"; then
        ok "xmllint: valid against junit.xsd"
    else
        fail "xmllint: invalid against junit.xsd"
        show "$FL_TMP/xmllint.err"
    fi
else
    echo "note: $XSD not found, schema check skipped"
fi
if xmllint --noout --schema "$FL_SOURCE_DIR/tests/unit/reports/junit-jenkins.xsd" "$XML" \
    2>"$FL_TMP/xmllint.err"; then
    ok "xmllint: valid against junit-jenkins.xsd (Jenkins' junit-10 structure)"
else
    fail "xmllint: invalid against junit-jenkins.xsd"
    show "$FL_TMP/xmllint.err"
fi

if /usr/bin/python3 - "$XML" "$seed" >"$FL_TMP/py.out" 2>&1 <<'EOF'; then
# Reads the report as CI tools do (junitparser) and checks what they would show.
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

path, seed = sys.argv[1], sys.argv[2]
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


xml = JUnitXml.fromfile(path)
counts = (xml.tests, xml.failures, xml.errors, sum(s.skipped for s in xml))
check(counts == (7, 1, 2, 1), "root counts (tests, failures, errors, skipped) %r" % (counts,))
suites = list(xml)
check([s.name for s in suites] == ["junit/a.lua", "junit/b.lua"],
      "suite names %r" % [s.name for s in suites])
a, b = suites
check((a.tests, a.failures, a.errors, a.skipped) == (3, 1, 0, 1), "junit/a.lua counts")
check((b.tests, b.failures, b.errors, b.skipped) == (4, 0, 2, 0), "junit/b.lua counts")
for s in suites:
    props = {p.name: p.value for p in s.properties()}
    check(props.get("seed") == seed, "%s: seed property %r, printed %r" % (s.name, props, seed))
    for c in s:
        check(c.classname == s.name, "classname %r in suite %r" % (c.classname, s.name))

NASTY_NAME = "nasty name ]]> & <tag> \"q\" 'a' \\x1b[31m"
check([c.name for c in a] == ["passes", "fails", "skipped"], "a names %r" % [c.name for c in a])
check([c.name for c in b] == ["lua error", "usage error", NASTY_NAME, "passes too"],
      "b names %r" % [c.name for c in b])
passes, fails, skipped = list(a)
lua, usage, nasty, passes_too = list(b)

check(passes.is_passed and passes_too.is_passed and nasty.is_passed, "passing cases")
check("note a note with ]]> and <&> and \\x1b[1m (junit/a.lua:" in (passes.system_out or ""),
      "the note in system-out: %r" % passes.system_out)
LOG = "nasty: nul[\\x00] esc[\\x1b[31m] ff[\\xff] cdata[]]>] xml[<&\"'>] end\n"
for c in (passes, fails):
    check(LOG in (c.system_err or ""), "%s: escaped service log in system-err: %r"
          % (c.name, c.system_err))

check(len(fails.result) == 1 and isinstance(fails.result[0], Failure), "fails: one <failure>")
if fails.result:
    f = fails.result[0]
    check(f.message == "one equals two & <ok> ]]>", "failure message %r" % f.message)
    check(f.type == "assertion", "failure type %r" % f.type)
    check("at junit/a.lua:24" in (f.text or ""), "failure text names file:line: %r" % f.text)

check(len(lua.result) == 1 and isinstance(lua.result[0], Error), "lua error: one <error>")
if lua.result:
    e = lua.result[0]
    check(e.type == "lua", "lua error type %r" % e.type)
    check("attempt to index a nil value (local 'cfg')" in (e.message or ""), "lua message %r" % e.message)
    check("stack traceback:" in (e.text or "") and "junit/b.lua:4: in " in e.text,
          "lua traceback %r" % e.text)
check(len(usage.result) == 1 and isinstance(usage.result[0], Error), "usage: one <error>")
if usage.result:
    check(usage.result[0].type == "usage", "usage error type %r" % usage.result[0].type)
    check("did you mean 'crash'" in (usage.result[0].message or ""), "usage message")
check(len(skipped.result) == 1 and isinstance(skipped.result[0], Skipped), "skipped")
if skipped.result:
    check(skipped.result[0].message == "not today", "skip message %r" % skipped.result[0].message)

for p in problems:
    print("junitparser: " + p)
sys.exit(1 if problems else 0)
EOF
    ok "junitparser reads the report as expected"
else
    fail "junitparser checks:"
    sed 's/^/  | /' "$FL_TMP/py.out"
fi

it_done

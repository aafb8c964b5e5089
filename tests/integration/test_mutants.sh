# faultline run --mutants: scenarios/mutants/ has a toy HTTP service (toy.py) whose
# FAULTLINE_BUG values make it misbehave on purpose, and small suites around it. Checked: a
# caught mutant (by a failed check, and by a Lua error, flagged as such), a surviving mutant
# (exit 1, named), a catches claim that did not hold (flagged, exit 1), a failing baseline
# (exit 1, no mutant run), the harness's FAULTLINE_BUG overriding the topology's, the JUnit
# and JSON reports (valid, one testcase / entry per mutant), the HTML report's table, --filter, --shard refused, and
# bad mutants / catches values as usage errors naming the file and line.
. "$(dirname "$0")/lib.sh"
it_init

MARK=$(new_mark)

# All caught: off-by-one by a failed check, garbage by a Lua error (flagged).
R="$FL_TMP/caught"
mkdir -p "$R"
expect_exit 0 env IT_MARK="$MARK" "$FL" run --mutants --seed 42 --junit "$R/junit.xml" \
    --json "$R/report.json" mutants/caught
expect_fgrep 'mutant mode: 2 mutants (off-by-one, garbage); the baseline first' "$OUT"
expect_summary "2 passed, 0 failed, 0 errors, 0 skipped"
expect_grep '^  off-by-one  caught by mutants/caught/sums\.lua: the sums are right$' "$OUT"
expect_grep "^  garbage     caught by mutants/caught/sums\.lua: the count adds up \(caught by an error, not a check: mutants/caught/sums\.lua:[0-9]+: attempt to add a 'string' with a 'number'\)$" "$OUT"
expect_fgrep 'mutants: 2 caught, 0 survived, 0 false claims in ' "$OUT"
# the claimed scenario ran first and caught it: the other one never ran against off-by-one
expect_eq "scenarios run against off-by-one" \
    "$(sed -n '/^mutant off-by-one/,/^$/p' "$OUT" | grep -c '^  \(caught\|passed\)  ')" 1
expect_no_marker "$MARK" 3 "after mutants/caught"

if xmllint --noout --schema "$FL_SOURCE_DIR/tests/unit/reports/junit.xsd" "$R/junit.xml" \
    2>"$FL_TMP/xmllint.err" &&
    xmllint --noout --schema "$FL_SOURCE_DIR/tests/unit/reports/junit-jenkins.xsd" \
        "$R/junit.xml" 2>>"$FL_TMP/xmllint.err"; then
    ok "junit.xml: valid against junit.xsd and junit-jenkins.xsd"
else
    fail "junit.xml: invalid"
    show "$FL_TMP/xmllint.err"
fi

# The weak suite: unchecked survives, "only says hello" claims off-by-one and passes.
W="$FL_TMP/weak"
mkdir -p "$W"
expect_exit 1 env IT_MARK="$MARK" "$FL" run --mutants --seed 42 --junit "$W/junit.xml" \
    --json "$W/report.json" --html "$W/report.html" mutants/weak
expect_grep '^  off-by-one  caught by mutants/weak/sums\.lua: the sums are right$' "$OUT"
expect_grep '^  unchecked   SURVIVED: 2 scenarios passed with it$' "$OUT"
expect_grep '^  passed  mutants/weak/sums\.lua: only says hello \([0-9.]+s\): claims to catch off-by-one but passed$' "$OUT"
expect_grep '^  mutants/weak/sums\.lua: only says hello: claims to catch off-by-one but passed$' "$OUT"
expect_fgrep 'mutants: 1 caught, 1 survived, 1 false claim in ' "$OUT"
expect_no_marker "$MARK" 3 "after mutants/weak"
expect_grep '<tr><td><code>unchecked</code></td><td><span class="v v-fail">SURVIVED</span>' "$W/report.html"
expect_grep '<p class="fail-mark">mutants/weak/sums\.lua: only says hello: claims to catch <code>off-by-one</code> but passed</p>' "$W/report.html"

if /usr/bin/python3 - "$FL_SOURCE_DIR/docs/report.schema.json" "$R" "$W" >"$FL_TMP/py.out" 2>&1 <<'PY'; then
# The reports as CI tools and scripts read them.
import json
import sys

import jsonschema
from junitparser import Failure, JUnitXml

schema, caught, weak = sys.argv[1:4]
validator = jsonschema.Draft202012Validator(json.load(open(schema)))
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def mutant_cases(path):
    xml = JUnitXml.fromfile(path)
    suites = [s for s in xml if s.name == "mutants"]
    check(len(suites) == 1, "%s: one testsuite named mutants" % path)
    return {c.name: c for c in suites[0]} if suites else {}, xml


for d in (caught, weak):
    doc = json.load(open(d + "/report.json"))
    for e in validator.iter_errors(doc):
        problems.append("%s/report.json: %s at %s" % (d, e.message, list(e.path)))

cases, xml = mutant_cases(caught + "/junit.xml")
check(sorted(cases) == ["garbage", "off-by-one"], "caught: testcases %r" % sorted(cases))
check(all(c.classname == "mutants" and c.is_passed for c in cases.values()), "caught: all pass")
check((xml.tests, xml.failures) == (4, 0), "caught: root counts %r" % ((xml.tests, xml.failures),))
doc = json.load(open(caught + "/report.json"))
m = {x["name"]: x for x in doc["mutants"]}
check(m["off-by-one"]["caught_by"]["name"] == "the sums are right", "off-by-one caught_by")
check(m["off-by-one"]["by_error"] is False and m["garbage"]["by_error"] is True, "by_error")
check(len(m["off-by-one"]["runs"]) == 1, "off-by-one: one run (the claimed scenario caught it)")
check([s["catches"] for s in doc["scenarios"]] == [["off-by-one"], ["garbage"]],
      "scenario catches %r" % [s["catches"] for s in doc["scenarios"]])

cases, xml = mutant_cases(weak + "/junit.xml")
res = {n: c.result for n, c in cases.items()}
check(all(len(r) == 1 and isinstance(r[0], Failure) for r in res.values()), "weak: both fail")
if all(res.values()):
    check("claims to catch off-by-one but passed" in res["off-by-one"][0].message,
          "off-by-one failure message %r" % res["off-by-one"][0].message)
    check(res["unchecked"][0].message.startswith("survived: 2 scenarios passed"),
          "unchecked failure message %r" % res["unchecked"][0].message)
doc = json.load(open(weak + "/report.json"))
m = {x["name"]: x for x in doc["mutants"]}
check(m["unchecked"]["caught"] is False and m["unchecked"]["caught_by"] is None, "unchecked")
check(m["off-by-one"]["false_claims"] == 1, "off-by-one false_claims")
check([r["claimed"] for r in m["off-by-one"]["runs"]] == [True, False], "claimed run first")
print("\n".join(problems) if problems else "reports ok")
sys.exit(1 if problems else 0)
PY
    ok "reports: $(tail -n 1 "$FL_TMP/py.out")"
else
    fail "reports:"
    show "$FL_TMP/py.out"
fi

# A failing baseline: the mutants are not run, exit 1.
expect_exit 1 env IT_MARK="$MARK" "$FL" run --mutants --seed 42 mutants/broken
expect_summary "1 passed, 1 failed, 0 errors, 0 skipped"
expect_fgrep 'faultline: --mutants: the baseline did not pass, so the mutants were not run' "$ERR"
expect_no_grep '^mutant [a-z-]+ \(|^Mutants' "$OUT"
expect_no_marker "$MARK" 3 "after mutants/broken"

# Without --mutants nothing changes: the weak suite passes.
expect_exit 0 env IT_MARK="$MARK" "$FL" run --seed 42 mutants/weak
expect_no_grep '^mutant|^Mutants' "$OUT"

# --filter narrows the scenarios (and so the mutants' chances): off-by-one now survives.
expect_exit 1 env IT_MARK="$MARK" "$FL" run --mutants --seed 42 --filter 'count' mutants/caught
expect_grep '^  off-by-one  SURVIVED: 1 scenario passed with it$' "$OUT"
expect_grep '^  garbage     caught by mutants/caught/sums\.lua: the count adds up' "$OUT"

# --mutants=LIST runs only those mutants; a name no topology declares is refused.
expect_exit 0 env IT_MARK="$MARK" "$FL" run --mutants=garbage --seed 42 mutants/caught
expect_fgrep 'mutants: 1 caught, 0 survived, 0 false claims in ' "$OUT"
expect_no_grep '^mutant off-by-one' "$OUT"
expect_exit 2 "$FL" run --mutants=garbage,nope mutants/caught
expect_fgrep "faultline: --mutants=garbage,nope: no topology of the selected scenarios declares 'nope' (they declare: off-by-one, garbage)" "$ERR"

# Refused: --shard, and files that declare no mutants.
expect_exit 2 "$FL" run --mutants --shard 1/2 mutants/caught
expect_fgrep 'faultline: --mutants cannot be split with --shard' "$ERR"
expect_exit 2 "$FL" run --mutants mutants/none
expect_fgrep 'faultline: --mutants: no topology of the selected scenarios declares mutants' "$ERR"

# Bad values (also in test_bad_input.sh): usage errors naming the file and line, --mutants
# or not.
for f in bad/mutants_*.lua bad/catches_*.lua; do
    line=$(grep -n -- '-- @error$' "$f" | cut -d: -f1)
    expect_exit 2 "$FL" run --mutants "$f"
    expect_grep "^faultline: $f:$line: .*(mutants|catches)" "$ERR"
done
expect_no_marker "$MARK" 3 "at the end"
it_done

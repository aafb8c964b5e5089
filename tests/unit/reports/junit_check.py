# Reads the JUnit XML that test_junit.c wrote from fixture.h's run with junitparser (the
# library GitHub and GitLab tooling build on) and checks what a CI reader would see: suites,
# counts, cases, results, properties, and the escaped logs. Exits non-zero on any mismatch.
# With --soak FILE: the JUnit of rich.h's soak, whose event log is cut in <system-out>.
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

CRASH = "scenarios/shop/crash.lua"
PART = "scenarios/shop/partition.lua"
UTF8 = "h\u00e9llo \u2713 \U0001f4a5"
NASTY_NAME = "nasty \\x1b[31m name ]]> & <tag> \"q\" 'a'\ttab\nnewline"


def check(cond, what):
    if not cond:
        sys.exit("junit_check: " + what)


if sys.argv[1] == "--soak":  # rich.h's 30-minute soak: its event log cut in system-out
    xml = JUnitXml.fromfile(sys.argv[2])
    check((xml.tests, xml.failures, xml.errors) == (1, 1, 0), "soak counts")
    case = list(list(xml)[0])[0]
    check(case.name == "soak" and isinstance(case.result[0], Failure), "soak case")
    out = case.system_out
    check(out.startswith("+0.100s process users-1: started\n"), "soak head %r" % out[:80])
    check(out.endswith("order 1799.9 is paid (scenarios/shop/retries.lua:40)\n"), "soak tail")
    check("+1700.000s assert FAILED: order 1700.0 is paid" in out, "soak failure")
    check(out.count(" events elided, from +") == 2, "soak elided lines")
    check(len(out) < 128 * 1024, "soak system-out %d bytes" % len(out))
    sys.exit(0)

xml = JUnitXml.fromfile(sys.argv[1])
check(xml.name == "faultline", "root name %r" % xml.name)
check((xml.tests, xml.failures, xml.errors) == (7, 1, 2),
      "root counts %r" % ((xml.tests, xml.failures, xml.errors),))
check(sum(s.skipped for s in xml) == 1, "skipped, summed over the suites")
check(abs(xml.time - 34.5) < 1e-9, "root time %r" % xml.time)

suites = list(xml)
check([s.name for s in suites] == [CRASH, PART], "suite names %r" % [s.name for s in suites])
crash, part = suites
check((crash.tests, crash.failures, crash.errors, crash.skipped) == (4, 1, 0, 0), "crash counts")
check((part.tests, part.failures, part.errors, part.skipped) == (3, 0, 2, 1), "partition counts")
check(abs(crash.time - (1.234 + 7.5 + 0.0 + 1.0)) < 1e-9, "crash time %r" % crash.time)
check(crash.timestamp == "2024-05-01T12:34:56", "timestamp %r" % crash.timestamp)
check(crash.hostname, "hostname")
props = {p.name: p.value for p in crash.properties()}
check(props == {"seed": "1234", "faultline.version": "9.8.7"}, "properties %r" % props)

cases = list(crash)
check([c.name for c in cases] ==
      ["a crashed replica is hidden by retries", "clients see no errors", NASTY_NAME,
       "comes back later"], "crash case names %r" % [c.name for c in cases])
check(all(c.classname == CRASH for c in cases), "crash classnames")
check([c.name for c in part] == ["lua error", "bad argument", "skipped one"], "partition names")
check(all(c.classname == PART for c in part), "partition classnames")

passed, failed, nasty, later = cases
check(passed.is_passed and passed.time == 1.234, "pass case")
check("+1.000s fault users-1: crash (SIGKILL) (%s:7)\n" % CRASH in passed.system_out,
      "pass system-out %r" % passed.system_out)

check(len(failed.result) == 1 and isinstance(failed.result[0], Failure), "failure element")
f = failed.result[0]
check(f.message == "clients saw almost no errors: error_rate 0.2 >= 0.01 & <ok>",
      "failure message %r" % f.message)
check(f.type == "assertion", "failure type")
check(("at %s:12\n" % CRASH) in f.text, "failure where")
check(("+5.000s assert FAILED: clients saw almost no errors (%s:12)\n" % CRASH) in f.text,
      "failing event in failure body")
check("+4.000s process users-1: exited (signal 9)\n" in f.text, "event before the failure")
check("early note 1" not in f.text, "more than 10 events in the failure body")
check("second failure after" not in f.text, "event after the failure in the failure body")
check("second failure after" in failed.system_out, "system-out has every event")

err = failed.system_err
for want in ["== users-1 ==\n", "== users-2 (older output dropped) ==\n", "line 20\n",
             "ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\n", "bad byte \\xff here",
             "cdata ]]> end", "overlong \\xc0\\xaf slash", "surrogate \\xed\\xa0\\x80 lone",
             "truncated \\xe2\\x9c\n", "nonchar \\xef\\xbf\\xbe fffe",
             "c1 \\xc2\\x9b csi, del \\x7f", "crlf line\r\n", "utf8 " + UTF8 + "\n",
             "last words\n"]:
    check(want in err, "system-err lacks %r in %r" % (want, err))

check(nasty.is_passed, "nasty-named case passes")
check("+0.000s note sub\\x1bject: text \\x01 %s (w\\xffhere)\n" % UTF8 in nasty.system_out,
      "nasty system-out %r" % nasty.system_out)
check(later.system_out is None and later.system_err is None, "empty case has no output")

lua, usage, skipped = list(part)
check(isinstance(lua.result[0], Error) and lua.result[0].type == "lua", "lua error")
check(lua.result[0].message == "attempt to index a nil value (field 'x')", "lua message")
check("stack traceback:\n\t%s:20: in function <%s:18>" % (PART, PART) in lua.result[0].text,
      "traceback %r" % lua.result[0].text)
check(isinstance(usage.result[0], Error) and usage.result[0].type == "usage", "usage error")
check(isinstance(skipped.result[0], Skipped) and skipped.is_skipped, "skipped")

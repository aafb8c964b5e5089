/* Unit tests for reports/junit.c. The fixture's run (fixture.h) is written to a temp file and
 * read back by real consumers: xmllint (well-formedness), xmllint against our JUnit schema
 * (tests/unit/reports/junit.xsd) and junitparser (tests/unit/reports/junit_check.py, run by
 * Debian's /usr/bin/python3). Negative controls show each of those checks can fail. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "rich.h"
#include "tools.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "reports/report.h"

static int xmllint(const char *path, int quiet)
{
    char *argv[] = {"xmllint", "--noout", (char *)path, NULL};
    return run_tool(argv, quiet);
}

static int xmllint_schema(const char *path, int quiet)
{
    char xsd[4096];
    snprintf(xsd, sizeof xsd, "%s/tests/unit/reports/junit.xsd", source_dir());
    char *argv[] = {"xmllint", "--noout", "--schema", xsd, (char *)path, NULL};
    return run_tool(argv, quiet);
}

static int xmllint_jenkins(const char *path, int quiet)
{
    char xsd[4096];
    snprintf(xsd, sizeof xsd, "%s/tests/unit/reports/junit-jenkins.xsd", source_dir());
    char *argv[] = {"xmllint", "--noout", "--schema", xsd, (char *)path, NULL};
    return run_tool(argv, quiet);
}

/* junit_check.py on path: the checks of fixture.h's run, or with soak those of rich.h's soak */
static int junitparser_check(const char *path, int soak, int quiet)
{
    char script[4096];
    snprintf(script, sizeof script, "%s/tests/unit/reports/junit_check.py", source_dir());
    char *argv[] = {"/usr/bin/python3", script, (char *)path, NULL, NULL};
    if (soak) {
        argv[2] = "--soak";
        argv[3] = (char *)path;
    }
    return run_tool(argv, quiet);
}

static int junitparser(const char *path, int quiet)
{
    return junitparser_check(path, 0, quiet);
}

static char *render(const fl_run_result_t *run)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_junit_write_buf(run, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    return b.data;
}

START_TEST(consumers_accept_the_report)
{
    fl_run_result_t run;
    tmp_t t;
    fx_build(&run);
    tmp_open(&t, "junit.xml");
    ck_assert_int_eq(fl_junit_write(&run, t.path), 0);
    ck_assert_int_eq(xmllint(t.path, 0), 0);
    ck_assert_int_eq(xmllint_schema(t.path, 0), 0);
    ck_assert_int_eq(xmllint_jenkins(t.path, 0), 0);
    ck_assert_int_eq(junitparser(t.path, 0), 0);
    tmp_close(&t);
    fl_run_result_free(&run);
}
END_TEST

/* Each consumer check can fail: a raw control byte, a testcase without classname, and a wrong
 * failure message are each rejected. */
START_TEST(consumers_reject_broken_reports)
{
    fl_run_result_t run;
    tmp_t t;
    fx_build(&run);
    char *doc = render(&run);
    tmp_open(&t, "broken.xml");

    write_file(t.path, "<a>\x01</a>", 8);
    ck_assert_int_ne(xmllint(t.path, 1), 0);

    char *attr = strstr(doc, " classname=");
    ck_assert_ptr_nonnull(attr);
    memcpy(attr, " klassname=", 11);
    write_file(t.path, doc, strlen(doc));
    ck_assert_int_eq(xmllint(t.path, 1), 0);
    ck_assert_int_ne(xmllint_schema(t.path, 1), 0);
    memcpy(attr, " classname=", 11);

    char *root = strstr(doc, "<testsuites name=\"faultline\" tests=");
    ck_assert_ptr_nonnull(root);
    memcpy(root + 12, "skipped=\"0\"     ", 16); /* name="faultline" out, skipped in */
    write_file(t.path, doc, strlen(doc));
    ck_assert_int_eq(xmllint_schema(t.path, 1), 0);
    ck_assert_int_ne(xmllint_jenkins(t.path, 1), 0);
    memcpy(root + 12, "name=\"faultline\"", 16);

    char *msg = strstr(doc, "clients saw almost no errors: error_rate 0.2");
    ck_assert_ptr_nonnull(msg);
    msg[0] = 'C';
    write_file(t.path, doc, strlen(doc));
    ck_assert_int_eq(xmllint_schema(t.path, 1), 0);
    ck_assert_int_ne(junitparser(t.path, 1), 0);

    tmp_close(&t);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(structure_and_counts)
{
    fl_run_result_t run;
    fx_build(&run);
    char *doc = render(&run);
    ck_assert_msg(strncmp(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", 39) == 0, "%s", doc);
    ck_assert_ptr_nonnull(strstr(doc, "<testsuites name=\"faultline\" tests=\"7\" failures=\"1\" "
                                      "errors=\"2\" time=\"34.500\">\n"));
    ck_assert_ptr_nonnull(strstr(doc, "<testsuite name=\"" FX_CRASH "\" tests=\"4\" failures=\"1\" "
                                      "errors=\"0\" skipped=\"0\" time=\"9.734\" "
                                      "timestamp=\"2024-05-01T12:34:56\" hostname=\""));
    ck_assert_ptr_nonnull(strstr(doc, "<testsuite name=\"" FX_PART "\" tests=\"3\" failures=\"0\" "
                                      "errors=\"2\" skipped=\"1\" time=\"2.250\""));
    ck_assert_ptr_nonnull(strstr(doc, "<property name=\"seed\" value=\"1234\"/>"));
    ck_assert_ptr_nonnull(strstr(doc, "<property name=\"faultline.version\" value=\"9.8.7\"/>"));
    /* the first file's suite holds its scenario that came after the second file's */
    char *crash = strstr(doc, "<testsuite name=\"" FX_CRASH "\"");
    char *part = strstr(doc, "<testsuite name=\"" FX_PART "\"");
    char *later = strstr(doc, "name=\"comes back later\"");
    ck_assert_ptr_nonnull(later);
    ck_assert(crash < later && later < part);
    ck_assert_ptr_nonnull(strstr(doc, " id=\"0\">"));
    ck_assert_ptr_nonnull(strstr(doc, " id=\"1\">"));
    ck_assert_ptr_nonnull(strstr(doc, "<failure message=\"clients saw almost no errors: error_rate "
                                      "0.2 &gt;= 0.01 &amp; &lt;ok&gt;\" type=\"assertion\">"));
    ck_assert_ptr_nonnull(strstr(doc, "<error message=\"attempt to index a nil value (field "
                                      "&apos;x&apos;)\" type=\"lua\">"));
    ck_assert_ptr_nonnull(strstr(doc, " type=\"usage\">"));
    ck_assert_ptr_nonnull(strstr(doc, "<skipped/>"));
    ck_assert_ptr_nonnull(strstr(doc, "<testcase classname=\"" FX_CRASH
                                      "\" name=\"comes back later\" time=\"1.000\"/>"));
    ck_assert_ptr_nonnull(strstr(doc, "name=\"nasty \\x1b[31m name ]]&gt; &amp; &lt;tag&gt; "
                                      "&quot;q&quot; &apos;a&apos;&#9;tab&#10;newline\" "
                                      "time=\"0.000\""));
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* Whatever the logs held, the document has no raw control byte but \n and \t, no raw ]]>, and
 * valid UTF-8 from the logs survives byte for byte. */
START_TEST(untrusted_bytes)
{
    fl_run_result_t run;
    fx_build(&run);
    char *doc = render(&run);
    for (const unsigned char *p = (const unsigned char *)doc; *p; p++) {
        ck_assert_msg(*p >= 0x20 || *p == '\n' || *p == '\t', "raw byte 0x%02x at %td", *p,
                      (const char *)p - doc);
        ck_assert_msg(*p != 0x7f && *p != 0xff && *p != 0xc0, "raw byte 0x%02x", *p);
    }
    ck_assert_ptr_null(strstr(doc, "]]>"));
    ck_assert_ptr_nonnull(strstr(doc, "utf8 " FX_UTF8 "\n"));
    ck_assert_ptr_nonnull(strstr(doc, "text \\x01 " FX_UTF8 " (w\\xffhere)\n"));
    ck_assert_ptr_nonnull(strstr(doc, "cdata ]]&gt; end\n"));
    ck_assert_ptr_nonnull(strstr(doc, "overlong \\xc0\\xaf slash\n"));
    ck_assert_ptr_nonnull(strstr(doc, "surrogate \\xed\\xa0\\x80 lone\n"));
    ck_assert_ptr_nonnull(strstr(doc, "crlf line&#13;\n"));
    ck_assert_ptr_nonnull(strstr(doc, "ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\n"));
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(empty_run)
{
    fl_run_result_t run = {0};
    tmp_t t;
    tmp_open(&t, "empty.xml");
    ck_assert_int_eq(fl_junit_write(&run, t.path), 0);
    ck_assert_int_eq(xmllint_schema(t.path, 0), 0);
    tmp_close(&t);
    char *doc = render(&run);
    ck_assert_str_eq(doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                          "<testsuites name=\"faultline\" tests=\"0\" failures=\"0\" errors=\"0\" "
                          "time=\"0.000\">\n"
                          "</testsuites>\n");
    free(doc);
}
END_TEST

/* NaN and negative times (a clock gone wrong) still give valid decimals; a NULL message
 * gets a fallback; write_buf appends to what is already in the buffer. */
START_TEST(odd_values)
{
    fl_run_result_t run = {0};
    run.seconds = NAN;
    fl_scenario_result_t *r = fx_scenario(&run, "f.lua", "s", FL_VERDICT_FAIL, -3);
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_puts(&b, "prefix|"), 0);
    ck_assert_int_eq(fl_junit_write_buf(&run, &b), 0);
    ck_assert(strncmp(b.data, "prefix|<?xml ", 13) == 0);
    ck_assert_ptr_nonnull(strstr(b.data, "errors=\"0\" time=\"0.000\">"));
    ck_assert_ptr_nonnull(strstr(b.data, "skipped=\"0\" time=\"0.000\" timestamp="));
    ck_assert_ptr_nonnull(strstr(b.data, "name=\"s\" time=\"0.000\">"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "<failure message=\"scenario failed\" type=\"assertion\">"));
    ck_assert_ptr_nonnull(strstr(b.data, "value=\"" FL_VERSION "\"/>"));
    (void)r;
    fl_buf_free(&b);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(write_error_keeps_errno)
{
    fl_run_result_t run;
    fx_build(&run);
    errno = 0;
    ck_assert_int_eq(fl_junit_write(&run, "/nonexistent-fl-dir/junit.xml"), FL_EIO);
    ck_assert_int_eq(errno, ENOENT);
    fl_run_result_free(&run);
}
END_TEST

/* A 30-minute soak's event log is cut in <system-out>: head, tail and the failure kept, a
 * line counting what was left out, and the file still valid for every consumer. */
START_TEST(soak_system_out_is_capped)
{
    fl_run_result_t run;
    rx_build_soak(&run);
    const fl_scenario_result_t *r = &run.scenarios[0];
    char *doc = render(&run);
    const char *out = strstr(doc, "<system-out>"), *end = out ? strstr(out, "</system-out>") : NULL;
    ck_assert_ptr_nonnull(end);
    ck_assert_msg(end - out < 128 * 1024, "the soak's system-out is %zu bytes",
                  (size_t)(end - out));
    /* every event is either a line or counted in an elided line */
    size_t lines = 0, elided = 0, gaps = 0;
    for (const char *p = out + strlen("<system-out>"); p < end; p = strchr(p, '\n') + 1) {
        size_t k = 0;
        if (*p == '+')
            lines++;
        else if (sscanf(p, "... %zu events elided", &k) == 1 && k > 0)
            elided += k, gaps++;
        else
            ck_abort_msg("unexpected line in system-out: %.60s", p);
    }
    ck_assert_uint_eq(lines + elided, r->nevents);
    ck_assert_uint_eq(gaps, 2); /* before and after the failure's window */
    ck_assert_uint_eq(lines, 200 + 600 + 100);
    ck_assert_ptr_nonnull(strstr(out, "+0.100s process users-1: started\n"));
    ck_assert_ptr_nonnull(strstr(out, "assert FAILED: order 1700.0 is paid"));
    ck_assert_ptr_nonnull(strstr(out, "order 1799.9 is paid (" RX_FILE ":40)\n</system-out>"));
    ck_assert_ptr_nonnull(strstr(out, "events elided, from +"));
    tmp_t t;
    tmp_open(&t, "soak.xml");
    ck_assert_int_eq(fl_junit_write(&run, t.path), 0);
    ck_assert_int_eq(xmllint_schema(t.path, 0), 0);
    ck_assert_int_eq(xmllint_jenkins(t.path, 0), 0);
    ck_assert_int_eq(junitparser_check(t.path, 1, 0), 0);
    tmp_close(&t);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* Two shard files, one scenario file in both: one document, suites merged, counts summed. */
START_TEST(merge_shards)
{
    fl_run_result_t a, b;
    tmp_t t;
    char pa[160], pb[160], out[160];
    fx_build(&a);
    rx_build(&b);
    tmp_open(&t, "a.xml");
    tmp_file(&t, "b.xml", pb, sizeof pb);
    tmp_file(&t, "merged.xml", out, sizeof out);
    snprintf(pa, sizeof pa, "%s", t.path);
    ck_assert_int_eq(fl_junit_write(&a, pa), 0);
    ck_assert_int_eq(fl_junit_write(&b, pb), 0);
    char *in[] = {pa, pb};
    char err[256];
    ck_assert_int_eq(fl_junit_merge(out, in, 2, err, sizeof err), 0);
    ck_assert_int_eq(xmllint_schema(out, 0), 0);
    ck_assert_int_eq(xmllint_jenkins(out, 0), 0);
    static const char py[] =
        "import sys\n"
        "from junitparser import JUnitXml\n"
        "x = JUnitXml.fromfile(sys.argv[1])\n"
        "got = [(s.name, s.tests, s.failures, s.errors, s.skipped) for s in x]\n"
        "want = [('" FX_CRASH "', 4, 1, 0, 0), ('" FX_PART "', 4, 0, 2, 2),\n"
        "        ('" RX_FILE "', 2, 1, 0, 0)]\n"
        "assert got == want, got\n"
        "assert (x.tests, x.failures, x.errors) == (10, 2, 2), x.tests\n"
        "assert sum(s.skipped for s in x) == 2\n"
        "part = [s for s in x][1]\n"
        "assert [c.name for c in part] == ['lua error', 'bad argument', 'skipped one',\n"
        "                                 'skipped one'], [c.name for c in part]\n"
        "assert abs(part.time - 2.25) < 1e-9, part.time\n"
        "props = {p.name: p.value for p in part.properties()}\n"
        "assert props['seed'] == '1234', props\n";
    char *argv[] = {"/usr/bin/python3", "-c", (char *)py, out, NULL};
    ck_assert_int_eq(run_tool(argv, 0), 0);

    /* bad inputs: not ours, missing, truncated */
    write_file(pb, "{\"json\": true}", strlen("{\"json\": true}"));
    ck_assert_int_eq(fl_junit_merge(out, in, 2, err, sizeof err), FL_ESYNTAX);
    ck_assert_ptr_nonnull(strstr(err, "b.xml: not a faultline JUnit file"));
    const char *cut = "<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"x\">";
    write_file(pb, cut, strlen(cut));
    ck_assert_int_eq(fl_junit_merge(out, in, 2, err, sizeof err), FL_ESYNTAX);
    unlink(pb);
    ck_assert_int_eq(fl_junit_merge(out, in, 2, err, sizeof err), FL_EIO);
    ck_assert_ptr_nonnull(strstr(err, "b.xml: cannot read: No such file or directory"));
    tmp_close(&t);
    fl_run_result_free(&a);
    fl_run_result_free(&b);
}
END_TEST

/* The failure lists the scenario's faults, whether each fired, and which were on. */
START_TEST(failure_lists_faults)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run);
    char *f = strstr(doc, "<failure message=\"error rate below 1%");
    ck_assert_ptr_nonnull(f);
    char *end = strstr(f, "</failure>");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    ck_assert_ptr_nonnull(strstr(
        f, "\nFaults (* = on at the failure):\n"
           "  latency{ms=100} on gateway-1-&gt;users-1 +1.000s to +4.000s: fired (connections 3, "
           "chunks 10, bytes 1000, resets 0, closes 0, refused 0)\n"
           "  crash on users-2 +2.000s\n"
           "  pause on users-1 +2.500s to +3.000s\n"
           "* down on consul +4.500s to the end\n"
           "* partition on gateway-1 &lt;-/-&gt; users +4.600s to +6.000s: never fired"));
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* --mutants: a "mutants" testsuite, one testcase per mutant, a failure for the survivor and
 * for the false claim, still valid for every consumer; the root counts include them. */
START_TEST(mutants_suite)
{
    fl_run_result_t run;
    tmp_t t;
    fx_build(&run);
    fx_add_mutants(&run);
    tmp_open(&t, "mutants.xml");
    ck_assert_int_eq(fl_junit_write(&run, t.path), 0);
    ck_assert_int_eq(xmllint_schema(t.path, 0), 0);
    ck_assert_int_eq(xmllint_jenkins(t.path, 0), 0);
    tmp_close(&t);
    char *doc = render(&run);
    ck_assert_ptr_nonnull(
        strstr(doc, "<testsuites name=\"faultline\" tests=\"10\" failures=\"3\" "));
    ck_assert_ptr_nonnull(strstr(doc, "<testsuite name=\"mutants\" tests=\"3\" failures=\"2\" "
                                      "errors=\"0\" skipped=\"0\""));
    ck_assert_ptr_nonnull(strstr(doc, "<testcase classname=\"mutants\" name=\"no-retry\" "
                                      "time=\"3.000\">\n      <failure message=\""));
    ck_assert_ptr_nonnull(strstr(doc, "claims to catch no-retry but passed\" type=\"mutant\">"));
    ck_assert_ptr_nonnull(strstr(doc, "<testcase classname=\"mutants\" name=\"sticky-lb\" "
                                      "time=\"1.500\">\n      <system-out>caught by "));
    ck_assert_ptr_nonnull(strstr(doc, ": by an error, not a check: attempt to add a nil value"));
    ck_assert_ptr_nonnull(strstr(doc, "<failure message=\"survived: 2 scenarios passed with "
                                      "FAULTLINE_BUG=drop-traceparent\" type=\"mutant\">"));
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

static Suite *junit_suite(void)
{
    Suite *s = suite_create("junit");
    TCase *tc = tcase_create("document");
    tcase_add_test(tc, structure_and_counts);
    tcase_add_test(tc, untrusted_bytes);
    tcase_add_test(tc, empty_run);
    tcase_add_test(tc, odd_values);
    tcase_add_test(tc, write_error_keeps_errno);
    tcase_add_test(tc, failure_lists_faults);
    tcase_add_test(tc, mutants_suite);
    suite_add_tcase(s, tc);
    tc = tcase_create("consumers");
    tcase_add_test(tc, consumers_accept_the_report);
    tcase_add_test(tc, consumers_reject_broken_reports);
    tcase_add_test(tc, merge_shards);
    tcase_add_test(tc, soak_system_out_is_capped);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(junit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for reports/html.c: the page for rich.h's run has every part a reader needs
 * (summary with failures first, the evidence, the timeline's lanes, fault bands and markers,
 * load charts, fault counters, waterfalls, logs), references nothing outside itself, escapes
 * every hostile byte, and stays small for a 30-minute soak. The browser test
 * (tests/integration/test_browser.sh) checks the same page in a real Chromium. */
#include <check.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "reports/report.h"
#include "rich.h"
#include "tools.h"

static char *render(const fl_run_result_t *run, size_t *len)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_html_write_buf(run, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    if (len)
        *len = b.len;
    return b.data;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

#define HAS(doc, s) ck_assert_msg(strstr(doc, s) != NULL, "the page lacks %s", s)
#define HASNT(doc, s) ck_assert_msg(strstr(doc, s) == NULL, "the page has %s", s)

START_TEST(summary_and_order)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    ck_assert(strncmp(doc, "<!DOCTYPE html>\n<html lang=\"en\">", 31) == 0);
    HAS(doc, "<meta charset=\"utf-8\">");
    HAS(doc, "<table id=\"summary\">");
    HAS(doc, "seed <code id=\"seed\">42</code>");
    HAS(doc, "3 scenarios: <b>1 passed</b>, <b>1 failed</b>, <b>0 errors</b>, 1 skipped");
    /* failures first: in the table and in the sections, though the run had it second */
    char *fail_row = strstr(doc, "<tr data-verdict=\"fail\"");
    char *pass_row = strstr(doc, "<tr data-verdict=\"pass\"");
    char *skip_row = strstr(doc, "<tr data-verdict=\"skip\"");
    ck_assert(fail_row && pass_row && skip_row && fail_row < pass_row && pass_row < skip_row);
    char *fail_sec = strstr(doc, "<details class=\"scenario fail\" id=\"s-2\"");
    char *pass_sec = strstr(doc, "<details class=\"scenario pass\" id=\"s-1\"");
    ck_assert(fail_sec && pass_sec && fail_sec < pass_sec);
    HAS(doc, "data-title=\"" RX_FILE ": " RX_FAIL "\" open>"); /* failures unfolded */
    HAS(doc, "<a href=\"#s-2\">" RX_FAIL "</a>");
    HAS(doc, "<td class=\"num\">7.000</td><td class=\"num\">42</td>");
    HAS(doc, "topology: gateway (needs users), users x2; consul: fake; amqp: fake");
    HAS(doc, "skipped: not today");
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(evidence)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    char *ev = strstr(doc, "<div class=\"evidence\">");
    ck_assert_ptr_nonnull(ev);
    HAS(ev,
        "<b>error rate below 1%: 0.2 &amp; &lt;rising&gt;</b><br>at <code>" RX_FILE ":21</code>");
    char *end = strstr(ev, "</div>\n<h3>");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    HAS(ev, "<tr class=\"ev-fail\">"); /* the failed assertion ends the excerpt */
    HASNT(ev, "healed partition");     /* ...nothing after it */
    /* at 5.0s the consul outage and the partition were on; the latency had been removed */
    HAS(ev, "Faults on at that moment: down on consul, partition on gateway-1 &lt;-/-&gt; "
            "users</div>");
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(timeline)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    char *svg = strstr(doc, "<svg class=\"timeline\"");
    ck_assert_ptr_nonnull(svg);
    char *end = strstr(svg, "</svg>");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    /* a lane per instance, in order of appearance, with its states */
    char *u1 = strstr(svg, "<g class=\"lane\" data-instance=\"users-1\">");
    char *u2 = strstr(svg, "<g class=\"lane\" data-instance=\"users-2\">");
    char *g1 = strstr(svg, "<g class=\"lane\" data-instance=\"gateway-1\">");
    ck_assert(u1 && u2 && g1 && u1 < u2 && u2 < g1);
    ck_assert_uint_eq(count(svg, "<g class=\"lane\""), 3);
    HAS(u1, "users-1 paused from 2.500s to 3.000s");
    HAS(u2, "users-2 down from 2.010s to 7.000s");
    HAS(svg, "users-1 up from 3.000s to 7.000s");
    /* fault rows: the intervals (latency, pause, consul down, partition), labelled */
    ck_assert_uint_eq(count(svg, "<rect class=\"fault\""), 4);
    ck_assert_uint_eq(count(svg, "<rect class=\"band\""), 4);
    HAS(svg, ">latency{ms=100} on gateway-1-&gt;users-1</text>");
    HAS(svg, "<title>latency{ms=100} on gateway-1-&gt;users-1 (1.000s to 4.000s, " RX_FILE
             ":9) fired</title>");
    HAS(svg, "<title>down on consul (4.500s to 7.000s, still on at the end");
    HAS(svg,
        "partition on gateway-1 &lt;-/-&gt; users (4.600s to 6.000s, " RX_FILE ":9) never fired");
    /* the crash is an instant */
    ck_assert_uint_eq(count(svg, "<line class=\"instant\""), 1);
    HAS(svg, "<title>crash on users-2 (2.000s");
    /* assertion markers at their instants, red and green */
    ck_assert_uint_eq(count(svg, "<circle class=\"assert ok\""), 1);
    ck_assert_uint_eq(count(svg, "<circle class=\"assert fail\""), 1);
    HAS(svg, "<title>FAILED: error rate below 1%: 0.2 &amp; &lt;rising&gt; (5.000s");
    /* x positions: 5.0s of 7.0s over the plot */
    HAS(svg, "<circle class=\"assert fail\" cx=\"748.6\"");
    HAS(svg, "<line class=\"failure\" x1=\"748.6\" x2=\"748.6\"");
    ck_assert_uint_eq(count(svg, "<line class=\"failure\""), 1);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(charts_faults_waterfalls)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    HAS(doc, "<div class=\"series\" data-series=\"gateway\"><b>gateway</b> <span "
             "class=\"muted\">(7 samples)</span>");
    ck_assert_uint_eq(count(doc, "<svg class=\"chart\""), 3);
    ck_assert_uint_eq(count(doc, "<polyline class=\"l-p99\""), 1);
    ck_assert_uint_eq(count(doc, "<polyline class=\"l-rate\""), 1);
    /* a sample covers [t, t + 1s): its point is drawn at t + 0.5s, not at t */
    HASNT(doc, "<polyline class=\"l-sent\" points=\"150,");
    HAS(doc, "<polyline class=\"l-sent\" points=\"");
    /* the fault counters: fired, never fired, unknown */
    char *t = strstr(doc, "<table class=\"faults\">");
    ck_assert_ptr_nonnull(t);
    HAS(t, "<td>latency{ms=100}</td><td>gateway-1-&gt;users-1</td><td class=\"num\">1.000</td>"
           "<td class=\"num\">4.000</td><td><b>fired</b></td><td>connections 3, chunks 10, "
           "bytes 1000,");
    HAS(t, "<td>partition</td><td>gateway-1 &lt;-/-&gt; users</td><td class=\"num\">4.600</td>"
           "<td class=\"num\">6.000</td><td>never fired</td>");
    HAS(t, "<td>crash</td><td>users-2</td><td class=\"num\">2.000</td><td class=\"num\">"
           "(instant)</td><td class=\"muted\">n/a</td>");
    HAS(t, "<td class=\"num\">end (still on)</td>");
    /* waterfalls: the failed trace first, then the retried one; not the plain one */
    char *err = strstr(doc, "<div class=\"trace\" data-trace=\"" RX_TRACE_ERR "\">");
    char *retry = strstr(doc, "<div class=\"trace\" data-trace=\"" RX_TRACE_RETRY "\">");
    ck_assert(err && retry && err < retry);
    HASNT(doc, "data-trace=\"" RX_TRACE_OK "\""); /* retry.count=0 is no retry */
    char *sib = strstr(doc, "<div class=\"trace\" data-trace=\"" RX_TRACE_SIBLINGS "\">");
    ck_assert(sib && err < sib); /* two CLIENT spans of one call: retried */
    char *sib_end = strstr(sib, "</div>");
    ck_assert_ptr_nonnull(sib_end);
    *sib_end = '\0';
    /* its first attempt failed, the request did not: retried, not failed */
    HAS(sib, "3 spans, 0.200s, retried");
    ck_assert_uint_eq(count(sib, "<rect class=\"span error retry\""), 1);
    ck_assert_uint_eq(count(sib, "<rect class=\"span retry\""), 1);
    *sib_end = '<';
    ck_assert_uint_eq(count(doc, "<svg class=\"waterfall\""), 3);
    HAS(err, "4 spans, 0.300s, failed");
    HAS(err, "<rect class=\"span error retry\"");
    HAS(err, "users.Get [client] error: UNAVAILABLE: &lt;down&gt; \\x1b[1m, 0.100s, attempt 2, "
             "retry.count=1</title>");
    /* the child of the retried attempt is indented under it: depth 2 */
    HAS(err, "<text class=\"lbl\" x=\"20\"");
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* Nothing outside the file: no URL, no external script, style, font or image. */
START_TEST(self_contained)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    HASNT(doc, "http://");
    HASNT(doc, "https://");
    HASNT(doc, " src=");
    HASNT(doc, "@import");
    HASNT(doc, "url(");
    HASNT(doc, "<link");
    HAS(doc, "Content-Security-Policy\" content=\"default-src 'none';");
    ck_assert_uint_eq(count(doc, "<script>"), 1);
    /* readable without scripts: filtering controls start hidden, folding is <details> */
    HAS(doc, "<div id=\"controls\" hidden>");
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(untrusted_bytes)
{
    fl_run_result_t run;
    rx_build(&run);
    size_t len;
    char *doc = render(&run, &len);
    ck_assert_uint_eq(strlen(doc), len); /* no NUL */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)doc[i];
        ck_assert_msg(c >= 0x20 || c == '\n' || c == '\t', "raw byte 0x%02x at %zu", c, i);
        ck_assert_msg(c != 0xff && c != 0x7f, "raw byte 0x%02x at %zu", c, i);
    }
    HASNT(doc, RX_SCRIPT);
    HASNT(doc, "\xe2\x80\xae");
    HAS(doc, "&lt;script&gt;alert(1)&lt;/script&gt; bidi[\\xe2\\x80\\xae]");
    HAS(doc, "ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07");
    HAS(doc, "bad byte \\xff here");
    HAS(doc, "cdata ]]&gt; end");
    HAS(doc, "utf8 " FX_UTF8);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* 30 minutes of faults, assertions, load and spans: well under 5 MB, with the caps said. */
START_TEST(soak_stays_small)
{
    fl_run_result_t run;
    rx_build_soak(&run);
    size_t len;
    char *doc = render(&run, &len);
    ck_assert_msg(len < 1024 * 1024, "the soak page is %zu bytes", len);
    HAS(doc, "(1800 samples, downsampled)");
    HAS(doc, "Event log (");
    HAS(doc, "shown, all in the JSON report");
    HAS(doc, "more faults (table below)");
    HAS(doc, "more failed or retried traces in the JSON report.");
    HAS(doc, "(last lines only; older output was dropped)");
    ck_assert_uint_le(count(doc, "<circle class=\"assert"), 601);
    ck_assert_uint_eq(count(doc, "<circle class=\"assert fail\""), 1);
    /* each chart line has at most 300 points */
    char *p = strstr(doc, "<polyline class=\"l-p50\" points=\"");
    ck_assert_ptr_nonnull(p);
    char *e = strchr(p + 34, '"');
    *e = '\0';
    ck_assert_uint_le(count(p, ","), 300);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(empty_run_and_errors)
{
    fl_run_result_t run = {0};
    char *doc = render(&run, NULL);
    HAS(doc, "0 scenarios: <b>0 passed</b>");
    HAS(doc, "</html>\n");
    free(doc);
    rx_build(&run);
    errno = 0;
    ck_assert_int_eq(fl_html_write(&run, "/nonexistent-fl-dir/r.html"), FL_EIO);
    ck_assert_int_eq(errno, ENOENT);
    tmp_t t;
    tmp_open(&t, "r.html");
    ck_assert_int_eq(fl_html_write(&run, t.path), 0);
    FILE *f = fopen(t.path, "rb");
    ck_assert_ptr_nonnull(f);
    char head[16] = "";
    ck_assert_uint_eq(fread(head, 1, 15, f), 15);
    fclose(f);
    ck_assert_str_eq(head, "<!DOCTYPE html>");
    tmp_close(&t);
    fl_run_result_free(&run);
}
END_TEST

/* A failing scenario's logs show the lines around the failure, marked; others the tail. */
START_TEST(logs_around_the_failure)
{
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    char *gw = strstr(doc, "<div class=\"instance-log\" data-instance=\"gateway-1\">");
    ck_assert_ptr_nonnull(gw);
    char *end = strstr(gw, "</div>");
    *end = '\0';
    HAS(gw, "(the lines around the failure)");
    HAS(gw, "[earlier lines left out]</span>\ngw 011\n");
    HAS(gw, "gw 050\n<b class=\"fail-mark\">&#9472;&#9472; the scenario failed here");
    HAS(gw, "</b>\ngw 051\n");
    HAS(gw, "gw 070\n<span class=\"muted\">[later lines left out]</span></pre>");
    HASNT(gw, "gw 010");
    HASNT(gw, "gw 071");
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

/* A scenario may call os.setlocale: a comma-decimal LC_NUMERIC must not reach the SVG. The
 * locale is compiled into a temp folder (localedef, LOCPATH), as the machine may have none. */
START_TEST(locale_independent)
{
    tmp_t t;
    tmp_open(&t, "de_DE.UTF-8");
    char *argv[] = {"localedef", "-i", "de_DE", "-f", "UTF-8", t.path, NULL};
    if (run_tool(argv, 1) != 0) {
        fprintf(stderr, "note: localedef could not build de_DE.UTF-8; locale test skipped\n");
        tmp_close(&t);
        return;
    }
    ck_assert_int_eq(setenv("LOCPATH", t.dir, 1), 0);
    ck_assert_ptr_nonnull(setlocale(LC_NUMERIC, "de_DE.UTF-8"));
    char probe[16];
    snprintf(probe, sizeof probe, "%g", 12.5);
    ck_assert_str_eq(probe, "12,5"); /* the trap is armed */
    fl_run_result_t run;
    rx_build(&run);
    char *doc = render(&run, NULL);
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    HAS(doc, "<svg class=\"timeline\" viewBox=\"0 0 1000 ");
    HASNT(doc, " y=\"22,");
    HASNT(doc, "height=\"12,");
    char *svg = strstr(doc, "<svg class=\"timeline\"");
    ck_assert_ptr_nonnull(svg);
    char *end = strstr(svg, "</svg>");
    *end = '\0';
    for (char *p = svg; (p = strstr(p, "=\"")); p += 2)
        ck_assert_msg(!(p[2] >= '0' && p[2] <= '9' && strcspn(p + 2, ",\"") < strcspn(p + 2, "\"")),
                      "a comma in a number: %.40s", p);
    free(doc);
    fl_run_result_free(&run);
    tmp_close(&t);
}
END_TEST

static Suite *html_suite(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("page");
    tcase_add_test(tc, summary_and_order);
    tcase_add_test(tc, evidence);
    tcase_add_test(tc, timeline);
    tcase_add_test(tc, charts_faults_waterfalls);
    tcase_add_test(tc, self_contained);
    tcase_add_test(tc, untrusted_bytes);
    tcase_add_test(tc, logs_around_the_failure);
    tcase_add_test(tc, locale_independent);
    tcase_add_test(tc, soak_stays_small);
    tcase_add_test(tc, empty_run_and_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(html_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

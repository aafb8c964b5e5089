/* Unit tests for reports/console.c: the console writer renders into a memory stream, and the
 * tests check exact lines, escaping of untrusted bytes, quiet and verbose modes, colour only
 * when asked for, and the failure details and summary of fixture.h's run. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "rich.h"
#include "reports/report.h"

#define CHECK_MARK "\xe2\x9c\x93"
#define CROSS_MARK "\xe2\x9c\x97"

typedef struct {
    char *data;
    size_t len;
    fl_console_t c;
} screen_t;

static void screen_open(screen_t *s, int color, int quiet, int verbose)
{
    s->data = NULL;
    s->len = 0;
    memset(&s->c, 0, sizeof s->c);
    s->c.out = open_memstream(&s->data, &s->len);
    ck_assert_ptr_nonnull(s->c.out);
    s->c.color = color;
    s->c.quiet = quiet;
    s->c.verbose = verbose;
}

/* Closes the stream and returns what was printed (the caller frees it). */
static char *screen_close(screen_t *s)
{
    ck_assert_int_eq(fclose(s->c.out), 0);
    ck_assert_ptr_nonnull(s->data);
    ck_assert_uint_eq(strlen(s->data), s->len); /* no NUL byte was printed */
    return s->data;
}

/* Nothing a terminal would act on: no control byte but \n and \t, no DEL, no C1, no invalid
 * UTF-8 lead bytes from the fixture. */
static void assert_no_raw_controls(const char *out)
{
    for (const unsigned char *p = (const unsigned char *)out; *p; p++) {
        ck_assert_msg(*p >= 0x20 || *p == '\n' || *p == '\t', "raw byte 0x%02x at %td", *p,
                      (const char *)p - out);
        ck_assert_msg(*p != 0x7f && *p != 0xff && *p != 0xc0, "raw byte 0x%02x", *p);
        ck_assert_msg(!(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f), "raw C1 control");
    }
}

static char *done_lines(fl_run_result_t *run, int color, int quiet)
{
    screen_t s;
    screen_open(&s, color, quiet, 0);
    for (size_t i = 0; i < run->nscenarios; i++)
        fl_console_scenario_done(&s.c, &run->scenarios[i]);
    return screen_close(&s);
}

START_TEST(scenario_lines)
{
    fl_run_result_t run;
    fx_build(&run);
    char *out = done_lines(&run, 0, 0);
    ck_assert_str_eq(
        out, CHECK_MARK
        " " FX_CRASH ": a crashed replica is hidden by retries (1.23s)\n" CROSS_MARK " " FX_CRASH
        ": clients see no errors (7.50s)\n" CHECK_MARK " " FX_CRASH
        ": nasty \\x1b[31m name ]]> & <tag> \"q\" 'a'\\x09tab\\x0anewline (0.00s)\n" CROSS_MARK
        " " FX_PART ": lua error (2.00s)\n" CROSS_MARK " " FX_PART ": bad argument (0.25s)\n"
        "- " FX_PART ": skipped one (0.00s)\n" CHECK_MARK " " FX_CRASH
        ": comes back later (1.00s)\n");
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(quiet_prints_only_failures)
{
    fl_run_result_t run;
    fx_build(&run);
    char *out = done_lines(&run, 0, 1);
    ck_assert_str_eq(out, CROSS_MARK " " FX_CRASH ": clients see no errors (7.50s)\n" CROSS_MARK
                                     " " FX_PART ": lua error (2.00s)\n" CROSS_MARK " " FX_PART
                                     ": bad argument (0.25s)\n");
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(colour_only_when_asked)
{
    fl_run_result_t run;
    fx_build(&run);
    char *plain = done_lines(&run, 0, 0);
    ck_assert_ptr_null(strchr(plain, '\x1b'));
    char *coloured = done_lines(&run, 1, 0);
    ck_assert_ptr_nonnull(
        strstr(coloured, "\x1b[32m" CHECK_MARK "\x1b[0m " FX_CRASH ": a crashed"));
    ck_assert_ptr_nonnull(strstr(coloured, "\x1b[31m" CROSS_MARK "\x1b[0m " FX_CRASH ": clients"));
    ck_assert_ptr_nonnull(strstr(coloured, "\x1b[33m-\x1b[0m " FX_PART ": skipped one"));
    /* the colour is ours: the escape sequence in the scenario name is still escaped */
    ck_assert_ptr_nonnull(strstr(coloured, "nasty \\x1b[31m name"));
    free(plain);
    free(coloured);

    screen_t s;
    screen_open(&s, 0, 0, 1);
    fl_console_summary(&s.c, &run);
    fl_console_event(&s.c, &run.scenarios[1].events[10]);
    char *out = screen_close(&s);
    ck_assert_ptr_null(strchr(out, '\x1b'));
    free(out);

    screen_open(&s, 1, 0, 0);
    fl_console_summary(&s.c, &run);
    out = screen_close(&s);
    ck_assert_ptr_nonnull(strstr(out, "\x1b[31m7 scenarios: "));
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(summary_in_full)
{
    fl_run_result_t run;
    fx_build(&run);
    screen_t s;
    screen_open(&s, 0, 0, 0);
    fl_console_summary(&s.c, &run);
    char *out = screen_close(&s);
    assert_no_raw_controls(out);

    static const char *const want[] = {
        "\nFailures:\n\n" CROSS_MARK " " FX_CRASH ": clients see no errors [fail]\n"
        "    " FX_FAIL_MSG "\n"
        "    at " FX_FAIL_WHERE "\n"
        "    timeline (last 10 of 11 events before the failure):\n"
        "      +0.200s [note] note\n",
        "      +4.000s [process] users-1: exited (signal 9)\n"
        "      +5.000s [assert] FAILED: clients saw almost no errors (" FX_FAIL_WHERE ")\n"
        "    log users-1:\n"
        "      started on 127.1.1.1:4000\n"
        "      ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07\n"
        "      bad byte \\xff here\n"
        "      cdata ]]> end\n"
        "      overlong \\xc0\\xaf slash\n"
        "      surrogate \\xed\\xa0\\x80 lone\n"
        "      truncated \\xe2\\x9c\n"
        "      nonchar "
        "\xef\xbf\xbe"
        " fffe\n"
        "      c1 \\xc2\\x9b csi, del \\x7f\n"
        "      crlf line\\x0d\n"
        "      utf8 " FX_UTF8 "\n"
        "      last words\n"
        "    log users-2 (last 15 of 20 lines, older output dropped):\n"
        "      line 06\n",
        "      line 20\n\n" CROSS_MARK " " FX_PART ": lua error [error]\n"
        "    attempt to index a nil value (field 'x')\n"
        "    at " FX_PART ":20\n"
        "    traceback:\n"
        "      stack traceback:\n"
        "      \t" FX_PART ":20: in function <" FX_PART ":18>\n"
        "    timeline (up to the failure):\n"
        "      +1.500s [process] orders-1: ready\n\n" CROSS_MARK " " FX_PART
        ": bad argument [usage]\n"
        "    bad argument #1 to 'crash' (instance expected, got nil)\n"
        "    at " FX_PART ":31\n"
        "\n7 scenarios: 3 passed, 1 failed, 2 errors, 1 skipped in 34.5s (seed 1234)\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]), "missing:\n%s\nin:\n%s", want[i], out);
    /* the summary line ends the output */
    const char *last = want[sizeof want / sizeof want[0] - 1];
    ck_assert_str_eq(out + strlen(out) - strlen(strstr(last, "\n7 scenarios")),
                     strstr(last, "\n7 scenarios"));
    ck_assert_ptr_null(strstr(out, "early note 1"));         /* more than 10 events back */
    ck_assert_ptr_null(strstr(out, "second failure after")); /* after the failure */
    ck_assert_ptr_null(strstr(out, "line 05"));              /* more than 15 lines back */
    ck_assert_ptr_null(strstr(out, "a crashed replica"));    /* passing scenarios */
    ck_assert_ptr_null(strstr(out, "skipped one"));
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(summary_all_passed)
{
    fl_run_result_t run = {0};
    run.seed = 7;
    run.seconds = 1.04;
    fx_scenario(&run, "a.lua", "one", FL_VERDICT_PASS, 1);
    screen_t s;
    screen_open(&s, 0, 1, 0);
    fl_console_summary(&s.c, &run);
    char *out = screen_close(&s);
    ck_assert_str_eq(out,
                     "\n1 scenario: 1 passed, 0 failed, 0 errors, 0 skipped in 1.0s (seed 7)\n");
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(events_only_when_verbose)
{
    fl_run_result_t run = {0};
    fl_scenario_result_t *r = fx_scenario(&run, "a.lua", "one", FL_VERDICT_PASS, 1);
    fx_event(r, 1.234, FL_EV_PROCESS, 1, "users-1", "", "exited (signal 9)");
    fx_event(r, 2.0, FL_EV_ASSERT, 0, "", "a.lua:3", "x == 1");
    fx_event(r, 0.0, FL_EV_NOTE, 1, NULL, NULL, "hello");
    fx_event(r, 3.5, FL_EV_FAULT, 1, "users-1\n\x1b[2J", "a.lua:\r9", "latency 100ms\n+0.1s fake");

    screen_t s;
    screen_open(&s, 0, 0, 0);
    for (size_t i = 0; i < r->nevents; i++)
        fl_console_event(&s.c, &r->events[i]);
    char *out = screen_close(&s);
    ck_assert_str_eq(out, "");
    free(out);

    screen_open(&s, 0, 0, 1);
    for (size_t i = 0; i < r->nevents; i++)
        fl_console_event(&s.c, &r->events[i]);
    out = screen_close(&s);
    ck_assert_str_eq(out, "  +1.234s [process] users-1: exited (signal 9)\n"
                          "  +2.000s [assert] FAILED: x == 1 (a.lua:3)\n"
                          "  +0.000s [note] hello\n"
                          "  +3.500s [fault] users-1\\x0a\\x1b[2J: latency 100ms\\x0a+0.1s fake "
                          "(a.lua:\\x0d9)\n");
    free(out);

    screen_open(&s, 1, 0, 1);
    fl_console_event(&s.c, &r->events[1]);
    out = screen_close(&s);
    ck_assert_str_eq(out,
                     "  \x1b[2m+2.000s\x1b[0m [assert] \x1b[31mFAILED: x == 1 (a.lua:3)\x1b[0m\n");
    free(out);
    fl_run_result_free(&run);
}
END_TEST

/* A log line of 3000 bytes of two-byte characters is cut on a character boundary, saying how
 * much was left out; an empty log says so. */
START_TEST(long_and_empty_logs)
{
    fl_run_result_t run = {0};
    fl_scenario_result_t *r = fx_scenario(&run, "a.lua", "one", FL_VERDICT_FAIL, 1);
    char line[3002];
    for (int i = 0; i < 1500; i++)
        memcpy(line + 2 * i, "\xc3\xa9", 2);
    line[3000] = '\n';
    line[3001] = '\0';
    fx_log(r, "users-1", line, 0);
    fx_log(r, "users-2", "", 0);
    screen_t s;
    screen_open(&s, 0, 0, 0);
    fl_console_summary(&s.c, &run);
    char *out = screen_close(&s);
    ck_assert_ptr_null(strstr(out, "\\x")); /* not cut inside a character */
    ck_assert_ptr_nonnull(strstr(out, "\xc3\xa9 [2000 more bytes]\n"));
    ck_assert_ptr_nonnull(strstr(out, "    log users-2 (empty)\n"));
    ck_assert_ptr_nonnull(strstr(out, CROSS_MARK " a.lua: one [fail]\n    log users-1:\n      "));
    free(out);
    fl_run_result_free(&run);
}
END_TEST

/* The live status line: drawn in place, says the phase and the faults on, cut to the width,
 * erased before any other line; nothing at all unless live. */
START_TEST(live_status_line)
{
    fl_run_result_t run;
    rx_build(&run);
    fl_scenario_result_t *r = &run.scenarios[1];
    screen_t s;
    screen_open(&s, 0, 0, 0);
    fl_console_progress(&s.c, r, 12.34, 200);
    ck_assert_int_eq(s.c.status_len, 0);
    char *out = screen_close(&s);
    ck_assert_str_eq(out, "");
    free(out);

    screen_open(&s, 0, 0, 0);
    s.c.live = 1;
    size_t n = r->nevents;
    r->nevents = 19; /* up to the consul outage and the partition */
    fl_console_progress(&s.c, r, 12.34, 200);
    ck_assert_int_gt(s.c.status_len, 0);
    r->nevents = n;
    fl_console_scenario_done(&s.c, r);
    ck_assert_int_eq(s.c.status_len, 0);
    out = screen_close(&s);
    ck_assert_str_eq(out, "\r\xe2\x96\xb6 " RX_FILE ": " RX_FAIL
                          "  12.3s  scenario  faults: down on consul, partition on "
                          "gateway-1 <-/-> users\x1b[K\r\x1b[K" CROSS_MARK " " RX_FILE ": " RX_FAIL
                          " (7.00s)\n");
    free(out);

    /* cut to the terminal's width (one column spare), on a character boundary */
    screen_open(&s, 1, 0, 0);
    s.c.live = 1;
    fl_console_progress(&s.c, &run.scenarios[0], 1.0, 30);
    fl_console_progress_clear(&s.c);
    out = screen_close(&s);
    ck_assert_str_eq(out, "\r\x1b[2m\xe2\x96\xb6 " RX_FILE "\xe2\x80\xa6\x1b[0m\x1b[K"
                          "\r\x1b[K");
    free(out);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(summary_names_faults_on)
{
    fl_run_result_t run;
    rx_build(&run);
    screen_t s;
    screen_open(&s, 0, 0, 0);
    fl_console_summary(&s.c, &run);
    char *out = screen_close(&s);
    ck_assert_ptr_nonnull(strstr(out, "      +5.000s [assert] FAILED: error rate below 1%: 0.2 & "
                                      "<rising> (" RX_FILE ":21)\n"
                                      "    faults on at the failure: down on consul, partition on "
                                      "gateway-1 <-/-> users (never fired)\n"));
    free(out);
    fl_run_result_free(&run);
}
END_TEST

static Suite *console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *tc = tcase_create("progress");
    tcase_add_test(tc, scenario_lines);
    tcase_add_test(tc, quiet_prints_only_failures);
    tcase_add_test(tc, colour_only_when_asked);
    tcase_add_test(tc, events_only_when_verbose);
    tcase_add_test(tc, live_status_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("summary");
    tcase_add_test(tc, summary_in_full);
    tcase_add_test(tc, summary_all_passed);
    tcase_add_test(tc, summary_names_faults_on);
    tcase_add_test(tc, long_and_empty_logs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(console_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

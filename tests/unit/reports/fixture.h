/* A run result for the report tests: seven scenarios in two files (pass, fail, error, usage,
 * skip; the first file comes back after the second, to check grouping by first appearance),
 * with events at fixed times and instance logs full of bytes a terminal or an XML parser
 * would choke on. Only timeline.h's API and plain field writes build it, as the harness does. */
#ifndef FL_TEST_REPORTS_FIXTURE_H
#define FL_TEST_REPORTS_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/timeline.h"

#define FX_CRASH "scenarios/shop/crash.lua"
#define FX_PART "scenarios/shop/partition.lua"
#define FX_NASTY_NAME "nasty \x1b[31m name ]]> & <tag> \"q\" 'a'\ttab\nnewline"
#define FX_FAIL_MSG "clients saw almost no errors: error_rate 0.2 >= 0.01 & <ok>"
#define FX_FAIL_WHERE FX_CRASH ":12"
#define FX_UTF8 "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x92\xa5" /* héllo ✓ 💥 */

/* Every byte sequence the escapers must neutralise, one per line, and valid UTF-8 to keep. */
#define FX_NASTY_LOG                                                                               \
    "started on 127.1.1.1:4000\n"                                                                  \
    "ansi \x1b[31mred\x1b[0m \x1b]0;title\x07\n"                                                   \
    "bad byte \xff here\n"                                                                         \
    "cdata ]]> end\n"                                                                              \
    "overlong \xc0\xaf slash\n"                                                                    \
    "surrogate \xed\xa0\x80 lone\n"                                                                \
    "truncated \xe2\x9c\n"                                                                         \
    "nonchar \xef\xbf\xbe fffe\n"                                                                  \
    "c1 \xc2\x9b csi, del \x7f\n"                                                                  \
    "crlf line\r\n"                                                                                \
    "utf8 " FX_UTF8 "\n"                                                                           \
    "last words"

static inline fl_scenario_result_t *fx_scenario(fl_run_result_t *run, const char *file,
                                                const char *name, fl_verdict_t v, double secs)
{
    fl_scenario_result_t *r = fl_run_result_add(run, file, name);
    ck_assert_ptr_nonnull(r);
    r->verdict = v;
    r->seconds = secs;
    r->start_unix_ms = 1714566896000ull; /* 2024-05-01T12:34:56Z */
    return r;
}

static inline void fx_event(fl_scenario_result_t *r, double at, fl_event_kind_t kind, int ok,
                            const char *subject, const char *where, const char *text)
{
    fl_timeline_t tl = {r, 0, NULL, NULL};
    ck_assert_int_eq(fl_timeline_add(&tl, kind, ok, subject, where, "%s", text), 0);
    r->events[r->nevents - 1].t_ns = (uint64_t)(at * 1e9 + 0.5);
}

static inline void fx_log(fl_scenario_result_t *r, const char *instance, const char *text,
                          int truncated)
{
    fl_log_t *logs = realloc(r->logs, (r->nlogs + 1) * sizeof *logs);
    ck_assert_ptr_nonnull(logs);
    r->logs = logs;
    memset(&logs[r->nlogs], 0, sizeof logs[r->nlogs]);
    logs[r->nlogs].instance = strdup(instance);
    logs[r->nlogs].text = strdup(text);
    logs[r->nlogs].len = strlen(text);
    logs[r->nlogs].truncated = truncated;
    r->nlogs++;
}

static inline char *fx_strdup(const char *s)
{
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* The failing scenario has 14 events: 11 before and including the failed assertion at
 * FX_FAIL_WHERE (+5.000s), and 3 after it; its users-2 log has 20 numbered lines. */
static inline void fx_build(fl_run_result_t *run)
{
    memset(run, 0, sizeof *run);
    run->seed = 1234;
    run->version = "9.8.7";
    run->start_unix_ms = 1714566896000ull;
    run->seconds = 34.5;

    fl_scenario_result_t *r = fx_scenario(run, FX_CRASH, "a crashed replica is hidden by retries",
                                          FL_VERDICT_PASS, 1.234);
    fx_event(r, 0.5, FL_EV_PROCESS, 1, "users-1", "", "ready");
    fx_event(r, 1.0, FL_EV_FAULT, 1, "users-1", FX_CRASH ":7", "crash (SIGKILL)");

    r = fx_scenario(run, FX_CRASH, "clients see no errors", FL_VERDICT_FAIL, 7.5);
    r->message = fx_strdup(FX_FAIL_MSG);
    r->where = fx_strdup(FX_FAIL_WHERE);
    for (int i = 0; i < 9; i++)
        fx_event(r, 0.1 * (i + 1), FL_EV_NOTE, 1, "", "", i == 0 ? "early note 1" : "note");
    fx_event(r, 4.0, FL_EV_PROCESS, 1, "users-1", "", "exited (signal 9)");
    fx_event(r, 5.0, FL_EV_ASSERT, 0, "", FX_FAIL_WHERE, "clients saw almost no errors");
    fx_event(r, 6.0, FL_EV_ASSERT, 0, "", FX_CRASH ":13", "second failure after");
    fx_event(r, 6.5, FL_EV_FAULT, 1, "", "", "heal");
    fx_event(r, 7.0, FL_EV_NOTE, 1, "", "", "teardown");
    fx_log(r, "users-1", FX_NASTY_LOG, 0);
    char lines[400] = "";
    for (int i = 1; i <= 20; i++)
        snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "line %02d\n", i);
    fx_log(r, "users-2", lines, 1);

    r = fx_scenario(run, FX_CRASH, FX_NASTY_NAME, FL_VERDICT_PASS, 0.0004);
    fx_event(r, 0.0, FL_EV_NOTE, 1, "sub\x1bject", "w\xffhere", "text \x01 " FX_UTF8);

    r = fx_scenario(run, FX_PART, "lua error", FL_VERDICT_ERROR, 2.0);
    r->message = fx_strdup("attempt to index a nil value (field 'x')");
    r->where = fx_strdup(FX_PART ":20");
    r->traceback = fx_strdup("stack traceback:\n\t" FX_PART ":20: in function <" FX_PART ":18>");
    fx_event(r, 1.5, FL_EV_PROCESS, 1, "orders-1", "", "ready");

    r = fx_scenario(run, FX_PART, "bad argument", FL_VERDICT_USAGE, 0.25);
    r->message = fx_strdup("bad argument #1 to 'crash' (instance expected, got nil)");
    r->where = fx_strdup(FX_PART ":31");

    r = fx_scenario(run, FX_PART, "skipped one", FL_VERDICT_SKIP, 0);

    r = fx_scenario(run, FX_CRASH, "comes back later", FL_VERDICT_PASS, 1.0);
}

/* --mutants: a run of scenario (file, name) against m. */
static inline void fx_mutant_run(fl_mutant_result_t *m, const char *file, const char *name,
                                 fl_verdict_t v, const char *message, int claimed)
{
    fl_scenario_result_t r = {.file = (char *)file,
                              .name = (char *)name,
                              .verdict = v,
                              .seconds = 1.5,
                              .message = (char *)message,
                              .where = message ? (char *)FX_CRASH ":7" : NULL};
    ck_assert_int_eq(fl_mutant_add_run(m, &r, claimed), 0);
}

/* Three mutants: no-retry caught by a failed check (after a claim that did not hold),
 * sticky-lb caught by a Lua error, drop-traceparent survived. Hostile bytes in the names and
 * messages. */
static inline void fx_add_mutants(fl_run_result_t *run)
{
    run->mutant_mode = 1;
    fl_mutant_result_t *m = fl_run_result_add_mutant(run, "no-retry");
    ck_assert_ptr_nonnull(m);
    fx_mutant_run(m, FX_CRASH, FX_NASTY_NAME, FL_VERDICT_PASS, NULL, 1);
    fx_mutant_run(m, FX_PART, "retries", FL_VERDICT_FAIL, "2 requests failed \x1b[31m <&>", 0);
    m = fl_run_result_add_mutant(run, "sticky-lb");
    ck_assert_ptr_nonnull(m);
    fx_mutant_run(m, FX_PART, "spread", FL_VERDICT_ERROR, "attempt to add a nil value \xff", 1);
    m = fl_run_result_add_mutant(run, "drop-traceparent");
    ck_assert_ptr_nonnull(m);
    fx_mutant_run(m, FX_PART, "spread", FL_VERDICT_PASS, NULL, 0);
    fx_mutant_run(m, FX_CRASH, "comes back later", FL_VERDICT_SKIP, NULL, 0);
}

#endif

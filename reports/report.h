/* Reports: what a run looks like to the people and the CI systems that read it. The console
 * writer prints progress as scenarios finish and the failures in full at the end; the JUnit
 * writer turns a run into the XML that Jenkins, GitLab and GitHub test-report actions read.
 * Writers read the timeline's types (harness/timeline.h) and nothing else. Everything a
 * service printed or a scenario said is treated as untrusted bytes: control characters and
 * invalid UTF-8 come out as visible "\xNN" text, never raw.
 *
 * Counts are derived from the verdicts, not from run->passed etc.: pass → passed,
 * fail → failed, error and usage → errors, skip → skipped. */
#ifndef FL_REPORT_H
#define FL_REPORT_H

#include <stdio.h>

#include "harness/timeline.h"
#include "lib/buf.h"

/* Console output. out NULL means stdout; color adds ANSI colours (the caller decides, e.g.
 * isatty() and NO_COLOR); quiet prints only failing scenarios as they finish; verbose lets
 * fl_console_event print. Output is flushed after each call. */
typedef struct {
    FILE *out;
    int color;
    int quiet;
    int verbose;
} fl_console_t;

/* One line as a scenario finishes: "✓ file: name (1.23s)", with ✗ for fail, error and usage,
 * and - for skip. In quiet mode only failing scenarios get a line. */
void fl_console_scenario_done(fl_console_t *c, const fl_scenario_result_t *r);

/* Every failing scenario in full (verdict, message, where, traceback, the last events up to
 * the failure, the last 15 lines of each instance's log), then one line:
 * "12 scenarios: 10 passed, 1 failed, 1 errors, 0 skipped in 34.5s (seed 1234)". */
void fl_console_summary(fl_console_t *c, const fl_run_result_t *run);

/* With c->verbose, one line for a live event: "  +1.234s [process] users-1: exited (signal 9)";
 * a failed assertion reads "[assert] FAILED: text (file:line)". Without, prints nothing.
 * To echo a timeline, set its on_event to a one-line wrapper that calls this with
 * on_event_arg as c (a cast function pointer would be undefined behaviour). */
void fl_console_event(fl_console_t *c, const fl_event_t *ev);

/* JUnit XML (XML 1.0, UTF-8): <testsuites> with one <testsuite> per scenario file, in order of
 * first appearance, and one <testcase classname=FILE name=SCENARIO> per scenario; fail →
 * <failure type="assertion">, error → <error type="lua">, usage → <error type="usage">,
 * skip → <skipped/>; <system-out> holds the scenario's event log, <system-err> its instance
 * logs. Times are seconds with 3 decimals; timestamps are UTC, "2024-05-01T12:34:56" (no zone
 * designator, as Ant's schema requires).
 *
 * fl_junit_write_buf appends the document to out; returns 0 or FL_ENOMEM (out is then left as
 * it was). fl_junit_write writes it to path (created or truncated); returns 0, FL_ENOMEM, or
 * FL_EIO with errno set by the failing call (fopen, fwrite or fclose). */
int fl_junit_write_buf(const fl_run_result_t *run, fl_buf_t *out);
int fl_junit_write(const fl_run_result_t *run, const char *path);

#endif

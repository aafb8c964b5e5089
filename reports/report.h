/* Reports: what a run looks like to the people and the CI systems that read it. The console
 * writer prints progress as scenarios run and finish and the failures in full at the end; the
 * JUnit writer turns a run into the XML that Jenkins, GitLab and GitHub test-report actions
 * read; the HTML writer draws one self-contained page per run (timelines, charts, waterfalls);
 * the JSON writer dumps everything for machines (schema: docs/report-json.md).
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
    int live;       /* redraw one status line while a scenario runs (a TTY, not quiet) */
    int status_len; /* a status line is on screen (its width); cleared before other output */
} fl_console_t;

/* One line as a scenario finishes: "✓ file: name (1.23s)", with ✗ for fail, error and usage,
 * and - for skip. In quiet mode only failing scenarios get a line. */
void fl_console_scenario_done(fl_console_t *c, const fl_scenario_result_t *r);

/* Every failing scenario in full (verdict, message, where, traceback, the last events up to
 * the failure, the last 15 lines of each instance's log), then one line:
 * "12 scenarios: 10 passed, 1 failed, 1 errors, 0 skipped in 34.5s (seed 1234)". */
void fl_console_summary(fl_console_t *c, const fl_run_result_t *run);

/* --mutants. fl_console_mutant_begin: a mutant's scenarios are about to run ("mutant
 * no-retry (FAULTLINE_BUG=no-retry): 1 of 8 scenarios claims it"); fl_console_mutant_run: one
 * line per scenario run against it, "caught" (with what it said, and "by an error, not a
 * check" for a Lua or usage error) or "passed" (with "claims to catch M but passed" when its
 * catches names M); quiet prints neither. fl_console_mutants_summary: the table, each mutant →
 * "caught by file: name" or SURVIVED, every claim that did not hold, and one line
 * "mutants: 5 caught, 1 survived, 1 false claim in 1m2s". */
void fl_console_mutant_begin(fl_console_t *c, const char *name, size_t nclaimed, size_t n);
void fl_console_mutant_run(fl_console_t *c, const char *mutant, const fl_mutant_run_t *r);
void fl_console_mutants_summary(fl_console_t *c, const fl_run_result_t *run, double seconds);

/* With c->verbose, one line for a live event: "  +1.234s [process] users-1: exited (signal 9)";
 * a failed assertion reads "[assert] FAILED: text (file:line)". Without, prints nothing.
 * To echo a timeline, set its on_event to a one-line wrapper that calls this with
 * on_event_arg as c (a cast function pointer would be undefined behaviour). */
void fl_console_event(fl_console_t *c, const fl_event_t *ev);

/* With c->live, redraws the status line of the running scenario r in place ("\r", erase to
 * the end of the line): "▶ file: name  12.3s  scenario  faults: latency{ms=100} on a->b". It
 * is cut to width columns (at least 20) and cleared by every other console call. Without
 * c->live, prints nothing. */
void fl_console_progress(fl_console_t *c, const fl_scenario_result_t *r, double elapsed, int width);
/* Erases the status line, if one is shown. */
void fl_console_progress_clear(fl_console_t *c);

/* JUnit XML (XML 1.0, UTF-8): <testsuites> with one <testsuite> per scenario file, in order of
 * first appearance (properties: seed, faultline.version, topology), and one <testcase
 * classname=FILE name=SCENARIO time=S> per scenario (the root <testsuites> has name, tests,
 * failures, errors and time only, as Jenkins' schema wants); fail →
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

/* HTML (one self-contained UTF-8 file: inline CSS and SVG, a little JS for filtering only; no
 * external assets): a summary table (failures first), then per scenario the evidence of a
 * failure, a timeline (a lane per instance, fault bands, assertion markers), load charts when
 * there are samples, the fault counters, trace waterfalls for failed and retried requests,
 * the event log and the instance logs. Long inputs are capped (events, log lines, spans,
 * chart points), saying what was left out, so a 30-minute soak stays well under 5 MB.
 * Returns as fl_junit_write_buf / fl_junit_write. */
int fl_html_write_buf(const fl_run_result_t *run, fl_buf_t *out);
int fl_html_write(const fl_run_result_t *run, const char *path);

/* JSON (RFC 8259, UTF-8), everything in the run: verdicts, events, derived fault intervals,
 * samples, spans, logs. The layout is docs/report-json.md, checked by docs/report.schema.json;
 * FL_JSON_VERSION changes when a field changes meaning or goes away (adding one does not).
 * Returns as fl_junit_write_buf / fl_junit_write. */
#define FL_JSON_VERSION 1
int fl_json_write_buf(const fl_run_result_t *run, fl_buf_t *out);
int fl_json_write(const fl_run_result_t *run, const char *path);

/* `faultline merge-junit OUT IN...`: one JUnit document from the shard files faultline wrote
 * (testsuites of the same file merged, counts and times summed, earliest timestamp kept).
 * Returns 0, FL_EIO (a file cannot be read or written; errno set) or FL_ESYNTAX (an input is
 * not a faultline JUnit file); err gets one line saying which file and what is wrong. */
int fl_junit_merge(const char *out_path, char *const *in_paths, size_t nin, char *err,
                   size_t errlen);

#endif

/* JUnit XML writer (report.h). The document is built in memory and written in one go, so a
 * failed run never leaves half a report behind a successful return. The layout follows the
 * common Jenkins/Ant structure: one <testsuite> per scenario file (classname = file), one
 * <testcase> per scenario, the result element first, then <system-out> (the scenario's event
 * log, head and tail of it for long runs) and <system-err> (its instance logs). It is valid against
 * both the structure Jenkins' xunit plugin checks (junit-10: no skipped or timestamp on the root,
 * only name, time and classname on a testcase) and the Ant-derived one GitLab and junitparser read
 * (see junit.xsd and junit-jenkins.xsd in tests/unit/reports). Every string from the run goes
 * through fl_text_escape_xml, so any bytes yield well-formed XML. */
#include "reports/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "reports/derive.h"
#include "reports/text.h"

#ifndef FL_VERSION
#define FL_VERSION "unknown"
#endif

/* The output buffer with a sticky error: after the first failure every put is a no-op, and
 * the caller checks rc once at the end. */
typedef fl_out_t out_t;

typedef struct {
    size_t tests, failures, errors, skipped;
    double seconds;
} counts_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

static void text(out_t *o, const char *s)
{
    if (!o->rc && s)
        o->rc = fl_text_escape_xml(o->b, s, strlen(s), 0);
}

static void attr(out_t *o, const char *name, const char *value)
{
    fl_out_putf(o, " %s=\"", name);
    if (!o->rc && value)
        o->rc = fl_text_escape_xml(o->b, value, strlen(value), 1);
    fl_out_put(o, "\"");
}

static void attr_count(out_t *o, const char *name, size_t n)
{
    fl_out_putf(o, " %s=\"%zu\"", name, n);
}

static void attr_seconds(out_t *o, const char *name, double seconds)
{
    fl_out_putf(o, " %s=\"", name);
    if (!o->rc)
        o->rc = fl_text_put_seconds(o->b, seconds, 3);
    fl_out_put(o, "\"");
}

static void attr_timestamp(out_t *o, const char *name, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char s[64] = "1970-01-01T00:00:00";
    if (gmtime_r(&t, &tm) && tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999)
        strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    fl_out_putf(o, " %s=\"%s\"", name, s);
}

static void count(counts_t *c, const fl_scenario_result_t *r)
{
    c->tests++;
    c->seconds += r->seconds > 0 ? r->seconds : 0;
    switch (r->verdict) {
    case FL_VERDICT_PASS:
        break;
    case FL_VERDICT_FAIL:
        c->failures++;
        break;
    case FL_VERDICT_ERROR:
    case FL_VERDICT_USAGE:
        c->errors++;
        break;
    case FL_VERDICT_SKIP:
        c->skipped++;
        break;
    }
}

static void attr_counts(out_t *o, const counts_t *c)
{
    attr_count(o, "tests", c->tests);
    attr_count(o, "failures", c->failures);
    attr_count(o, "errors", c->errors);
    attr_count(o, "skipped", c->skipped);
}

/* "+1.234s kind subject: text (where)\n", as character data. */
static void event_line(out_t *o, const fl_event_t *ev)
{
    fl_out_put(o, "+");
    if (!o->rc)
        o->rc = fl_text_put_seconds(o->b, (double)ev->t_ns / 1e9, 3);
    fl_out_putf(o, "s %s ", fl_text_kind_name(ev->kind));
    if (ev->kind == FL_EV_ASSERT && !ev->ok)
        fl_out_put(o, "FAILED: ");
    if (*str(ev->subject)) {
        text(o, ev->subject);
        fl_out_put(o, ": ");
    }
    text(o, ev->text);
    if (*str(ev->where)) {
        fl_out_put(o, " (");
        text(o, ev->where);
        fl_out_put(o, ")");
    }
    fl_out_put(o, "\n");
}

/* Every fault of the scenario, with its interval and whether it fired, the ones on at the
 * failure (event end - 1) marked: a failure under a fault that never fired proves little. */
static void fault_summary(out_t *o, const fl_scenario_result_t *r, size_t end)
{
    fl_fault_iv_t *f = NULL;
    size_t n = 0;
    if (o->rc || fl_derive_faults(r, fl_derive_end_ns(r), &f, &n) != 0 || !n) {
        free(f);
        return;
    }
    uint64_t at = end > 0 && end <= r->nevents ? r->events[end - 1].t_ns : UINT64_MAX;
    fl_out_put(o, "\nFaults (* = on at the failure):\n");
    for (size_t i = 0; i < n; i++) {
        int on = !f[i].instant && f[i].on_ns <= at && f[i].off_ns >= at;
        fl_out_put(o, on ? "* " : "  ");
        text(o, f[i].text);
        if (*f[i].subject) {
            fl_out_put(o, " on ");
            text(o, f[i].subject);
        }
        fl_out_put(o, " +");
        if (!o->rc)
            o->rc = fl_text_put_seconds(o->b, (double)f[i].on_ns / 1e9, 3);
        fl_out_put(o, "s");
        if (!f[i].instant) {
            fl_out_put(o, " to ");
            if (f[i].open) {
                fl_out_put(o, "the end");
            } else {
                fl_out_put(o, "+");
                if (!o->rc)
                    o->rc = fl_text_put_seconds(o->b, (double)f[i].off_ns / 1e9, 3);
                fl_out_put(o, "s");
            }
        }
        if (f[i].counts.known)
            fl_out_putf(
                o,
                ": %s (connections %llu, chunks %llu, bytes %llu, resets %llu, closes %llu, "
                "refused %llu)",
                fl_fault_fired(&f[i].counts) ? "fired" : "never fired",
                (unsigned long long)f[i].counts.connections, (unsigned long long)f[i].counts.chunks,
                (unsigned long long)f[i].counts.bytes, (unsigned long long)f[i].counts.resets,
                (unsigned long long)f[i].counts.closes, (unsigned long long)f[i].counts.refused);
        fl_out_put(o, "\n");
    }
    free(f);
}

/* The body of <failure> and <error>: what failed, where, how, and what happened just before. */
static void failure_body(out_t *o, const fl_scenario_result_t *r)
{
    text(o, r->message);
    fl_out_put(o, "\n");
    if (r->where && *r->where) {
        fl_out_put(o, "at ");
        text(o, r->where);
        fl_out_put(o, "\n");
    }
    if (r->traceback && *r->traceback) {
        fl_out_put(o, "\n");
        text(o, r->traceback);
        fl_out_put(o, "\n");
    }
    size_t end = fl_text_failure_end(r);
    size_t begin = end > FL_TEXT_CONTEXT_EVENTS ? end - FL_TEXT_CONTEXT_EVENTS : 0;
    if (end > begin)
        fl_out_put(o, "\nLast events before the failure:\n");
    for (size_t i = begin; i < end; i++)
        event_line(o, &r->events[i]);
    fault_summary(o, r, end);
}

/* The result element of each failing verdict: tag, type attribute, message when none given. */
static const struct {
    const char *tag, *type, *fallback;
} problems[] = {
    [FL_VERDICT_FAIL] = {"failure", "assertion", "scenario failed"},
    [FL_VERDICT_ERROR] = {"error", "lua", "Lua error"},
    [FL_VERDICT_USAGE] = {"error", "usage", "API misuse"},
};

static void result_element(out_t *o, const fl_scenario_result_t *r)
{
    if (r->verdict == FL_VERDICT_SKIP) {
        fl_out_put(o, "      <skipped");
        if (r->message)
            attr(o, "message", r->message);
        fl_out_put(o, "/>\n");
        return;
    }
    if (r->verdict != FL_VERDICT_FAIL && r->verdict != FL_VERDICT_ERROR &&
        r->verdict != FL_VERDICT_USAGE)
        return;
    const char *tag = problems[r->verdict].tag;
    fl_out_putf(o, "      <%s", tag);
    attr(o, "message", r->message && *r->message ? r->message : problems[r->verdict].fallback);
    attr(o, "type", problems[r->verdict].type);
    fl_out_put(o, ">");
    failure_body(o, r);
    fl_out_putf(o, "</%s>\n", tag);
}

/* <system-out> holds the event log, but a long run's would swamp CI's report viewers (a
 * 30-minute soak logs some 20000 events, 1.5 MB): the first and last events are kept, and
 * those around the failure; a line says how many were left out between. The JSON report has
 * every event. */
#define OUT_HEAD_EVENTS 200
#define OUT_TAIL_EVENTS 600
#define OUT_AROUND_FAILURE 50 /* before and after the failed assertion */

static int kept_in_system_out(size_t i, size_t n, size_t failure_end)
{
    if (i < OUT_HEAD_EVENTS || i + OUT_TAIL_EVENTS >= n)
        return 1;
    return failure_end < n && i + OUT_AROUND_FAILURE >= failure_end &&
           i < failure_end + OUT_AROUND_FAILURE;
}

static void system_out(out_t *o, const fl_scenario_result_t *r)
{
    size_t n = r->nevents, failure_end = fl_text_failure_end(r);
    fl_out_put(o, "      <system-out>");
    for (size_t i = 0; i < n;) {
        if (kept_in_system_out(i, n, failure_end)) {
            event_line(o, &r->events[i++]);
            continue;
        }
        size_t j = i;
        while (j < n && !kept_in_system_out(j, n, failure_end))
            j++;
        fl_out_putf(o, "... %zu events elided, from +", j - i);
        if (!o->rc)
            o->rc = fl_text_put_seconds(o->b, (double)r->events[i].t_ns / 1e9, 3);
        fl_out_put(o, "s to +");
        if (!o->rc)
            o->rc = fl_text_put_seconds(o->b, (double)r->events[j - 1].t_ns / 1e9, 3);
        fl_out_put(o, "s (the JSON report has every event) ...\n");
        i = j;
    }
    fl_out_put(o, "</system-out>\n");
}

static void testcase(out_t *o, const fl_scenario_result_t *r)
{
    fl_out_put(o, "    <testcase");
    attr(o, "classname", r->file);
    attr(o, "name", r->name);
    attr_seconds(o, "time", r->seconds);
    if (r->verdict == FL_VERDICT_PASS && !r->nevents && !r->nlogs) {
        fl_out_put(o, "/>\n");
        return;
    }
    fl_out_put(o, ">\n");
    result_element(o, r);
    if (r->nevents)
        system_out(o, r);
    if (r->nlogs) {
        fl_out_put(o, "      <system-err>");
        for (size_t i = 0; i < r->nlogs; i++) {
            const fl_log_t *log = &r->logs[i];
            const char *t = str(log->text);
            size_t len = log->text ? log->len : 0;
            fl_out_put(o, "== ");
            text(o, log->instance);
            fl_out_put(o, log->truncated ? " (older output dropped) ==\n" : " ==\n");
            if (!o->rc)
                o->rc = fl_text_escape_xml(o->b, t, len, 0);
            if (len && t[len - 1] != '\n')
                fl_out_put(o, "\n");
        }
        fl_out_put(o, "</system-err>\n");
    }
    fl_out_put(o, "    </testcase>\n");
}

static int same_file(const fl_scenario_result_t *a, const fl_scenario_result_t *b)
{
    return strcmp(str(a->file), str(b->file)) == 0;
}

/* A <testsuite> start tag and its <properties> (seed, version, and topology when given). */
static void suite_head(out_t *o, const fl_run_result_t *run, const char *name, const counts_t *c,
                       uint64_t start_unix_ms, size_t id, const char *host, const char *topology)
{
    fl_out_put(o, "  <testsuite");
    attr(o, "name", name);
    attr_counts(o, c);
    attr_seconds(o, "time", c->seconds);
    attr_timestamp(o, "timestamp", start_unix_ms);
    attr(o, "hostname", host);
    attr_count(o, "id", id);
    fl_out_put(o, ">\n    <properties>\n");
    fl_out_putf(o, "      <property name=\"seed\" value=\"%llu\"/>\n",
                (unsigned long long)run->seed);
    fl_out_put(o, "      <property name=\"faultline.version\"");
    attr(o, "value", run->version ? run->version : FL_VERSION);
    fl_out_put(o, "/>\n");
    if (topology) {
        fl_out_put(o, "      <property name=\"topology\"");
        attr(o, "value", topology);
        fl_out_put(o, "/>\n");
    }
    fl_out_put(o, "    </properties>\n");
}

/* The <testsuite> of the file of scenario `first`, which is that file's first scenario. */
static void testsuite(out_t *o, const fl_run_result_t *run, size_t first, size_t id,
                      const char *host)
{
    const fl_scenario_result_t *head = &run->scenarios[first];
    counts_t c = {0};
    for (size_t i = first; i < run->nscenarios; i++)
        if (same_file(head, &run->scenarios[i]))
            count(&c, &run->scenarios[i]);

    suite_head(o, run, head->file, &c,
               head->start_unix_ms ? head->start_unix_ms : run->start_unix_ms, id, host,
               head->topology);
    for (size_t i = first; i < run->nscenarios; i++)
        if (same_file(head, &run->scenarios[i]))
            testcase(o, &run->scenarios[i]);
    fl_out_put(o, "  </testsuite>\n");
}

/* --mutants: what ran against mutant m, one line per scenario, as character data. */
static void mutant_runs(out_t *o, const fl_mutant_result_t *m)
{
    for (size_t i = 0; i < m->nruns; i++) {
        const fl_mutant_run_t *r = &m->runs[i];
        int caught = r->verdict != FL_VERDICT_PASS && r->verdict != FL_VERDICT_SKIP;
        fl_out_put(o, caught ? "caught by " : "passed: ");
        text(o, r->file);
        fl_out_put(o, ": ");
        text(o, r->name);
        fl_out_putf(o, " (%s", fl_verdict_name(r->verdict));
        if (r->claimed)
            fl_out_put(o, ", claims it");
        fl_out_put(o, ")");
        if (caught && r->message) {
            fl_out_put(o, r->verdict == FL_VERDICT_FAIL ? ": " : ": by an error, not a check: ");
            text(o, r->message);
        }
        fl_out_put(o, "\n");
    }
}

/* The failure of a mutant's testcase: it survived, or a scenario's claim did not hold. */
static void mutant_failure(out_t *o, const fl_mutant_result_t *m)
{
    fl_buf_t msg = FL_BUF_INIT;
    int rc = 0;
    if (!m->caught)
        rc = fl_buf_printf(&msg, "survived: %zu scenario%s passed with FAULTLINE_BUG=%s", m->nruns,
                           m->nruns == 1 ? "" : "s", m->name);
    for (size_t i = 0; !rc && i < m->nruns; i++)
        if (m->runs[i].claimed && m->runs[i].verdict == FL_VERDICT_PASS)
            rc = fl_buf_printf(&msg, "%s%s: %s: claims to catch %s but passed", msg.len ? "; " : "",
                               str(m->runs[i].file), str(m->runs[i].name), m->name);
    if (rc && !o->rc)
        o->rc = rc;
    fl_out_put(o, "      <failure");
    attr(o, "message", msg.data ? msg.data : "mutant");
    attr(o, "type", "mutant");
    fl_out_put(o, ">");
    mutant_runs(o, m);
    fl_out_put(o, "</failure>\n");
    fl_buf_free(&msg);
}

/* A mutant's testcase fails when it survived or a claim did not hold. */
static void count_mutants(counts_t *c, const fl_run_result_t *run)
{
    for (size_t i = 0; i < run->nmutants; i++) {
        c->tests++;
        c->failures += !run->mutants[i].caught || run->mutants[i].false_claims;
        c->seconds += run->mutants[i].seconds;
    }
}

static void mutants_suite(out_t *o, const fl_run_result_t *run, size_t id, const char *host)
{
    counts_t c = {0};
    count_mutants(&c, run);
    suite_head(o, run, "mutants", &c, run->start_unix_ms, id, host, NULL);
    for (size_t i = 0; i < run->nmutants; i++) {
        const fl_mutant_result_t *m = &run->mutants[i];
        fl_out_put(o, "    <testcase classname=\"mutants\"");
        attr(o, "name", m->name);
        attr_seconds(o, "time", m->seconds);
        fl_out_put(o, ">\n");
        if (!m->caught || m->false_claims) {
            mutant_failure(o, m);
        } else {
            fl_out_put(o, "      <system-out>");
            mutant_runs(o, m);
            fl_out_put(o, "</system-out>\n");
        }
        fl_out_put(o, "    </testcase>\n");
    }
    fl_out_put(o, "  </testsuite>\n");
}

static int file_seen_before(const fl_run_result_t *run, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (same_file(&run->scenarios[j], &run->scenarios[i]))
            return 1;
    return 0;
}

int fl_junit_write_buf(const fl_run_result_t *run, fl_buf_t *out)
{
    out_t o = {out, 0};
    size_t start = out->len;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';

    counts_t total = {0};
    for (size_t i = 0; i < run->nscenarios; i++)
        count(&total, &run->scenarios[i]);
    count_mutants(&total, run);
    fl_out_put(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faultline\"");
    /* the root takes only what Jenkins' schema allows there: readers sum the suites */
    attr_count(&o, "tests", total.tests);
    attr_count(&o, "failures", total.failures);
    attr_count(&o, "errors", total.errors);
    attr_seconds(&o, "time", run->seconds);
    fl_out_put(&o, ">\n");
    size_t id = 0;
    for (size_t i = 0; i < run->nscenarios; i++)
        if (!file_seen_before(run, i))
            testsuite(&o, run, i, id++, host);
    if (run->nmutants)
        mutants_suite(&o, run, id, host);
    fl_out_put(&o, "</testsuites>\n");

    if (o.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return o.rc;
}

int fl_junit_write(const fl_run_result_t *run, const char *path)
{
    fl_buf_t doc = FL_BUF_INIT;
    int rc = fl_junit_write_buf(run, &doc);
    if (!rc)
        rc = fl_text_write_file(path, &doc);
    fl_buf_free(&doc);
    return rc;
}

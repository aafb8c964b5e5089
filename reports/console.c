/* Console writer (report.h): progress lines as scenarios finish, live events with --verbose,
 * and at the end every failure in full and a one-line summary. Each call renders into a
 * buffer and writes it with one fwrite, so lines from one call are never interleaved with
 * other output. Every string from the run is escaped with fl_text_escape_term: a service
 * printing escape sequences cannot recolour, clear or rewrite the terminal. */
#include "reports/report.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "reports/derive.h"
#include "reports/text.h"

#define LOG_LINES 15        /* lines of each instance's log shown with a failure */
#define LINE_MAX_BYTES 1000 /* longer log or message lines are cut, saying by how much */

#define RED "31"
#define GREEN "32"
#define YELLOW "33"
#define BOLD "1"
#define DIM "2"

/* A rendering in progress, with a sticky error: after the first failure every put is a
 * no-op and flush() reports it once. */
typedef struct {
    fl_buf_t b;
    int rc;
    int color;
} out_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

static void put(out_t *o, const char *s)
{
    if (!o->rc)
        o->rc = fl_buf_puts(&o->b, s);
}

static void putf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out_t *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->rc = fl_buf_vprintf(&o->b, fmt, ap);
    va_end(ap);
}

/* Untrusted bytes, escaped; multiline keeps \n and \t. */
static void term(out_t *o, const char *s, size_t len, int multiline)
{
    if (!o->rc)
        o->rc = fl_text_escape_term(&o->b, s, len, multiline);
}

static void term_str(out_t *o, const char *s)
{
    term(o, str(s), strlen(str(s)), 0);
}

static void seconds(out_t *o, double s, int decimals)
{
    if (!o->rc)
        o->rc = fl_text_put_seconds(&o->b, s, decimals);
}

static void color(out_t *o, const char *sgr)
{
    if (o->color)
        putf(o, "\x1b[%sm", sgr);
}

static void reset(out_t *o)
{
    color(o, "0");
}

static FILE *stream(const fl_console_t *c)
{
    return c->out ? c->out : stdout;
}

static void clear_status(fl_console_t *c, out_t *o)
{
    if (c->status_len) {
        put(o, "\r\x1b[K");
        c->status_len = 0;
    }
}

static void flush(const fl_console_t *c, out_t *o)
{
    FILE *f = stream(c);
    if (o->rc)
        fprintf(f, "faultline: cannot print the report: %s\n", fl_strerror(o->rc));
    else if (o->b.len)
        fwrite(o->b.data, 1, o->b.len, f);
    fflush(f);
    fl_buf_free(&o->b);
}

static int failing(fl_verdict_t v)
{
    return v == FL_VERDICT_FAIL || v == FL_VERDICT_ERROR || v == FL_VERDICT_USAGE;
}

static void mark(out_t *o, fl_verdict_t v)
{
    if (v == FL_VERDICT_PASS) {
        color(o, GREEN);
        put(o, "\xe2\x9c\x93"); /* ✓ */
    } else if (v == FL_VERDICT_SKIP) {
        color(o, YELLOW);
        put(o, "-");
    } else {
        color(o, RED);
        put(o, "\xe2\x9c\x97"); /* ✗ */
    }
    reset(o);
}

/* "file: name", both escaped to one line. */
static void title(out_t *o, const fl_scenario_result_t *r)
{
    term_str(o, r->file);
    put(o, ": ");
    term_str(o, r->name);
}

/* "<indent>+1.234s [kind] subject: text (where)\n" */
static void event_line(out_t *o, const char *indent, const fl_event_t *ev)
{
    int failed = ev->kind == FL_EV_ASSERT && !ev->ok;
    put(o, indent);
    color(o, DIM);
    put(o, "+");
    seconds(o, (double)ev->t_ns / 1e9, 3);
    put(o, "s");
    reset(o);
    putf(o, " [%s] ", fl_text_kind_name(ev->kind));
    if (failed) {
        color(o, RED);
        put(o, "FAILED: ");
    }
    if (*str(ev->subject)) {
        term_str(o, ev->subject);
        put(o, ": ");
    }
    term_str(o, ev->text);
    if (*str(ev->where)) {
        put(o, " (");
        term_str(o, ev->where);
        put(o, ")");
    }
    if (failed)
        reset(o);
    put(o, "\n");
}

/* s[0..len) as lines, each prefixed by indent and cut at LINE_MAX_BYTES (on a UTF-8 character
 * boundary); one trailing newline is not an extra empty line. */
static void indented(out_t *o, const char *indent, const char *s, size_t len)
{
    if (len && s[len - 1] == '\n')
        len--;
    if (!len)
        return;
    const char *p = s, *end = s + len;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p), shown = n;
        if (n > LINE_MAX_BYTES) {
            shown = LINE_MAX_BYTES;
            for (int back = 0; back < 3 && ((unsigned char)p[shown] & 0xc0) == 0x80; back++)
                shown--;
        }
        put(o, indent);
        term(o, p, shown, 1);
        if (shown < n)
            putf(o, " [%zu more bytes]", n - shown);
        put(o, "\n");
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void indented_str(out_t *o, const char *indent, const char *s)
{
    indented(o, indent, str(s), strlen(str(s)));
}

/* The last LOG_LINES lines of an instance's log, under a header saying what was left out. */
static void log_tail(out_t *o, const fl_log_t *log)
{
    const char *t = str(log->text);
    size_t len = log->text ? log->len : 0;
    if (len && t[len - 1] == '\n')
        len--;
    size_t lines = len ? 1 : 0, start = 0, seen = 0;
    for (size_t i = 0; i < len; i++)
        lines += t[i] == '\n';
    for (size_t i = len; i > 0; i--) {
        if (t[i - 1] == '\n' && ++seen == LOG_LINES) {
            start = i;
            break;
        }
    }
    put(o, "    log ");
    term_str(o, log->instance);
    if (!len) {
        put(o, log->truncated ? " (older output dropped, nothing since)\n" : " (empty)\n");
        return;
    }
    if (lines > LOG_LINES)
        putf(o, " (last %d of %zu lines%s):\n", LOG_LINES, lines,
             log->truncated ? ", older output dropped" : "");
    else
        put(o, log->truncated ? " (older output dropped):\n" : ":\n");
    indented(o, "      ", t + start, len - start);
}

/* "faults on at the failure: latency{ms=100} on a->b (fired), down on consul" */
static void faults_at_failure(out_t *o, const fl_scenario_result_t *r, size_t end)
{
    if (o->rc || end == 0 || end > r->nevents)
        return;
    fl_fault_iv_t *f = NULL;
    size_t n = 0, on = 0;
    uint64_t at = r->events[end - 1].t_ns;
    if (fl_derive_faults(r, fl_derive_end_ns(r), &f, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (f[i].instant || f[i].on_ns > at || f[i].off_ns < at)
            continue;
        put(o, on++ ? ", " : "    faults on at the failure: ");
        term_str(o, f[i].text);
        if (*f[i].subject) {
            put(o, " on ");
            term_str(o, f[i].subject);
        }
        if (f[i].counts.known)
            put(o, fl_fault_fired(&f[i].counts) ? " (fired)" : " (never fired)");
    }
    if (on)
        put(o, "\n");
    free(f);
}

static void failure_detail(out_t *o, const fl_scenario_result_t *r)
{
    put(o, "\n");
    mark(o, r->verdict);
    put(o, " ");
    color(o, BOLD);
    title(o, r);
    reset(o);
    putf(o, " [%s]\n", fl_verdict_name(r->verdict));
    if (r->message && *r->message)
        indented_str(o, "    ", r->message);
    if (r->where && *r->where) {
        put(o, "    at ");
        term_str(o, r->where);
        put(o, "\n");
    }
    if (r->traceback && *r->traceback) {
        put(o, "    traceback:\n");
        indented_str(o, "      ", r->traceback);
    }
    size_t end = fl_text_failure_end(r);
    size_t begin = end > FL_TEXT_CONTEXT_EVENTS ? end - FL_TEXT_CONTEXT_EVENTS : 0;
    if (end > begin) {
        if (begin)
            putf(o, "    timeline (last %zu of %zu events before the failure):\n", end - begin,
                 end);
        else
            put(o, "    timeline (up to the failure):\n");
    }
    for (size_t i = begin; i < end; i++)
        event_line(o, "      ", &r->events[i]);
    faults_at_failure(o, r, end);
    for (size_t i = 0; i < r->nlogs; i++)
        log_tail(o, &r->logs[i]);
}

void fl_console_scenario_done(fl_console_t *c, const fl_scenario_result_t *r)
{
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    if (c->quiet && !failing(r->verdict)) {
        flush(c, &o);
        return;
    }
    mark(&o, r->verdict);
    put(&o, " ");
    title(&o, r);
    put(&o, " (");
    seconds(&o, r->seconds, 2);
    put(&o, "s)\n");
    flush(c, &o);
}

void fl_console_summary(fl_console_t *c, const fl_run_result_t *run)
{
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    size_t passed = 0, failed = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < run->nscenarios; i++) {
        const fl_scenario_result_t *r = &run->scenarios[i];
        passed += r->verdict == FL_VERDICT_PASS;
        failed += r->verdict == FL_VERDICT_FAIL;
        errors += r->verdict == FL_VERDICT_ERROR || r->verdict == FL_VERDICT_USAGE;
        skipped += r->verdict == FL_VERDICT_SKIP;
    }
    if (failed + errors) {
        put(&o, "\nFailures:\n");
        for (size_t i = 0; i < run->nscenarios; i++)
            if (failing(run->scenarios[i].verdict))
                failure_detail(&o, &run->scenarios[i]);
    }
    put(&o, "\n");
    color(&o, failed + errors ? RED : GREEN);
    putf(&o, "%zu scenario%s: %zu passed, %zu failed, %zu errors, %zu skipped in ", run->nscenarios,
         run->nscenarios == 1 ? "" : "s", passed, failed, errors, skipped);
    seconds(&o, run->seconds, 1);
    putf(&o, "s (seed %llu)", (unsigned long long)run->seed);
    reset(&o);
    put(&o, "\n");
    flush(c, &o);
}

/* ---------------------------------------------------------------- --mutants ---- */

void fl_console_mutant_begin(fl_console_t *c, const char *name, size_t nclaimed, size_t n)
{
    if (c->quiet)
        return;
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    put(&o, "\n");
    color(&o, BOLD);
    put(&o, "mutant ");
    term_str(&o, name);
    reset(&o);
    put(&o, " (FAULTLINE_BUG=");
    term_str(&o, name);
    putf(&o, "): %zu of %zu scenario%s claim%s it\n", nclaimed, n, n == 1 ? "" : "s",
         nclaimed == 1 ? "s" : "");
    flush(c, &o);
}

/* "file: name" of a mutant run */
static void run_title(out_t *o, const fl_mutant_run_t *r)
{
    term_str(o, r->file);
    put(o, ": ");
    term_str(o, r->name);
}

void fl_console_mutant_run(fl_console_t *c, const char *mutant, const fl_mutant_run_t *r)
{
    if (c->quiet)
        return;
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    int caught = r->verdict != FL_VERDICT_PASS && r->verdict != FL_VERDICT_SKIP;
    color(&o, caught ? GREEN : r->claimed ? RED : DIM);
    put(&o, caught ? "  caught  " : "  passed  ");
    reset(&o);
    run_title(&o, r);
    put(&o, " (");
    seconds(&o, r->seconds, 2);
    put(&o, "s)");
    if (caught) {
        put(&o, r->verdict == FL_VERDICT_FAIL ? ": " : ": by an error, not a check: ");
        term_str(&o, r->message);
    } else if (r->claimed) {
        color(&o, RED);
        put(&o, ": claims to catch ");
        term_str(&o, mutant);
        put(&o, " but passed");
        reset(&o);
    }
    put(&o, "\n");
    flush(c, &o);
}

void fl_console_mutants_summary(fl_console_t *c, const fl_run_result_t *run, double secs)
{
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    size_t width = 0, caught = 0, claims = 0;
    for (size_t i = 0; i < run->nmutants; i++) {
        size_t n = strlen(run->mutants[i].name);
        width = n > width ? n : width;
        caught += run->mutants[i].caught != 0;
        claims += run->mutants[i].false_claims;
    }
    put(&o, "\nMutants (FAULTLINE_BUG=<mutant> in every service):\n");
    for (size_t i = 0; i < run->nmutants; i++) {
        const fl_mutant_result_t *m = &run->mutants[i];
        put(&o, "  ");
        term_str(&o, m->name);
        putf(&o, "%*s  ", (int)(width - strlen(m->name)), "");
        if (m->caught) {
            put(&o, "caught by ");
            run_title(&o, &m->runs[m->caught_by]);
            if (m->by_error) {
                color(&o, YELLOW);
                put(&o, " (caught by an error, not a check: ");
                term_str(&o, m->runs[m->caught_by].message);
                put(&o, ")");
                reset(&o);
            }
        } else {
            color(&o, RED);
            put(&o, "SURVIVED");
            reset(&o);
            putf(&o, ": %zu scenario%s passed with it", m->nruns, m->nruns == 1 ? "" : "s");
        }
        put(&o, "\n");
    }
    for (size_t i = 0; i < run->nmutants; i++)
        for (size_t j = 0; j < run->mutants[i].nruns; j++) {
            const fl_mutant_run_t *r = &run->mutants[i].runs[j];
            if (!r->claimed || r->verdict != FL_VERDICT_PASS)
                continue;
            color(&o, RED);
            put(&o, "  ");
            run_title(&o, r);
            put(&o, ": claims to catch ");
            term_str(&o, run->mutants[i].name);
            put(&o, " but passed\n");
            reset(&o);
        }
    size_t survived = run->nmutants - caught;
    color(&o, survived + claims ? RED : GREEN);
    putf(&o, "mutants: %zu caught, %zu survived, %zu false claim%s in ", caught, survived, claims,
         claims == 1 ? "" : "s");
    seconds(&o, secs, 1);
    putf(&o, "s (seed %llu)", (unsigned long long)run->seed);
    reset(&o);
    put(&o, "\n");
    flush(c, &o);
}

void fl_console_event(fl_console_t *c, const fl_event_t *ev)
{
    if (!c->verbose)
        return;
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    event_line(&o, "  ", ev);
    flush(c, &o);
}

void fl_console_progress_clear(fl_console_t *c)
{
    if (!c->status_len)
        return;
    out_t o = {FL_BUF_INIT, 0, c->color};
    clear_status(c, &o);
    flush(c, &o);
}

/* Columns s[0..len) takes on a terminal, counting each UTF-8 character as one. */
static size_t columns(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* Cuts b to at most width columns, on a character boundary, ending in "…" when cut. */
static void fit(fl_buf_t *b, size_t width)
{
    if (columns(b->data, b->len) <= width)
        return;
    size_t cols = 0, i = 0;
    for (; i < b->len; i++) {
        if (((unsigned char)b->data[i] & 0xc0) != 0x80 && ++cols == width)
            break; /* room for the ellipsis */
    }
    b->len = i;
    b->data[b->len] = '\0';
    fl_buf_puts(b, "\xe2\x80\xa6");
}

void fl_console_progress(fl_console_t *c, const fl_scenario_result_t *r, double elapsed, int width)
{
    if (!c->live)
        return;
    if (width < 20)
        width = 20;
    /* the plain text first (to cut it to the width), colour added around it after */
    out_t line = {FL_BUF_INIT, 0, 0};
    put(&line, "\xe2\x96\xb6 "); /* ▶ */
    title(&line, r);
    put(&line, "  ");
    seconds(&line, elapsed, 1);
    putf(&line, "s  %s", fl_derive_phase(r));
    fl_fault_iv_t *f = NULL;
    size_t nf = 0, on = 0;
    if (!line.rc)
        line.rc = fl_derive_faults(r, UINT64_MAX, &f, &nf);
    for (size_t i = 0; i < nf; i++) {
        if (!f[i].open)
            continue;
        put(&line, on++ ? ", " : "  faults: ");
        term_str(&line, f[i].text);
        if (*f[i].subject) {
            put(&line, " on ");
            term_str(&line, f[i].subject);
        }
    }
    free(f);
    if (!on)
        put(&line, "  no fault on");
    if (line.rc) {
        fl_buf_free(&line.b);
        return;
    }
    fit(&line.b, (size_t)width - 1); /* never wrap: \r must return to this line */
    out_t o = {FL_BUF_INIT, 0, c->color};
    put(&o, "\r");
    color(&o, on ? YELLOW : DIM);
    put(&o, line.b.data);
    reset(&o);
    put(&o, "\x1b[K");
    c->status_len = (int)columns(line.b.data, line.b.len);
    fl_buf_free(&line.b);
    flush(c, &o);
}

/* Timeline and run results (timeline.h): append-only arrays of events, owned by the run. */
#include "harness/timeline.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* Appends an event with text from fmt; *proto gives every other field. */
static int vadd(fl_timeline_t *tl, const fl_event_t *proto, const char *fmt, va_list ap)
{
    fl_scenario_result_t *r = tl->res;
    if (r->nevents == r->capevents) {
        size_t cap = r->capevents ? r->capevents * 2 : 32;
        fl_event_t *ev = realloc(r->events, cap * sizeof *ev);
        if (!ev)
            return FL_ENOMEM;
        r->events = ev;
        r->capevents = cap;
    }
    fl_buf_t text = FL_BUF_INIT;
    int rc = fl_buf_vprintf(&text, fmt, ap);
    if (rc)
        return rc;
    fl_event_t *ev = &r->events[r->nevents];
    *ev = *proto;
    ev->t_ns = uv_hrtime() - tl->start_ns;
    ev->subject = dup_or_empty(proto->subject);
    ev->where = dup_or_empty(proto->where);
    ev->text = text.data ? text.data : strdup("");
    if (!ev->subject || !ev->where || !ev->text) {
        free(ev->subject);
        free(ev->where);
        free(ev->text);
        return FL_ENOMEM;
    }
    r->nevents++;
    if (tl->on_event)
        tl->on_event(tl->on_event_arg, ev);
    return 0;
}

int fl_timeline_add(fl_timeline_t *tl, fl_event_kind_t kind, int ok, const char *subject,
                    const char *where, const char *fmt, ...)
{
    fl_event_t proto = {.kind = kind, .ok = ok, .subject = (char *)subject, .where = (char *)where};
    va_list ap;
    va_start(ap, fmt);
    int rc = vadd(tl, &proto, fmt, ap);
    va_end(ap);
    return rc;
}

int fl_timeline_process(fl_timeline_t *tl, const char *subject, fl_proc_state_t state,
                        const char *fmt, ...)
{
    fl_event_t proto = {.kind = FL_EV_PROCESS, .ok = 1, .subject = (char *)subject, .state = state};
    va_list ap;
    va_start(ap, fmt);
    int rc = vadd(tl, &proto, fmt, ap);
    va_end(ap);
    return rc;
}

int fl_timeline_fault(fl_timeline_t *tl, const char *subject, const char *where,
                      fl_fault_phase_t phase, uint64_t id, const fl_fault_counts_t *counts,
                      const char *fmt, ...)
{
    fl_event_t proto = {.kind = FL_EV_FAULT,
                        .ok = 1,
                        .subject = (char *)subject,
                        .where = (char *)where,
                        .phase = phase,
                        .fault_id = id};
    if (counts)
        proto.counts = *counts;
    va_list ap;
    va_start(ap, fmt);
    int rc = vadd(tl, &proto, fmt, ap);
    va_end(ap);
    return rc;
}

fl_series_t *fl_timeline_series(fl_scenario_result_t *res, const char *name)
{
    for (size_t i = 0; i < res->nseries; i++)
        if (strcmp(res->series[i].name, name ? name : "") == 0)
            return &res->series[i];
    fl_series_t *s = realloc(res->series, (res->nseries + 1) * sizeof *s);
    if (!s)
        return NULL;
    res->series = s;
    s = &res->series[res->nseries];
    memset(s, 0, sizeof *s);
    if (!(s->name = dup_or_empty(name)))
        return NULL;
    res->nseries++;
    return s;
}

int fl_series_push(fl_series_t *s, const fl_sample_t *sample)
{
    if (s->nsamples == s->capsamples) {
        size_t cap = s->capsamples ? s->capsamples * 2 : 64;
        fl_sample_t *n = realloc(s->samples, cap * sizeof *n);
        if (!n)
            return FL_ENOMEM;
        s->samples = n;
        s->capsamples = cap;
    }
    s->samples[s->nsamples++] = *sample;
    return 0;
}

static void span_free(fl_span_t *sp)
{
    free(sp->service);
    free(sp->instance);
    free(sp->name);
    free(sp->status_message);
    for (size_t i = 0; i < sp->nattrs; i++) {
        free(sp->attrs[i].key);
        free(sp->attrs[i].value);
    }
    free(sp->attrs);
}

int fl_timeline_span(fl_scenario_result_t *res, const fl_span_t *span)
{
    if (res->nspans == res->capspans) {
        size_t cap = res->capspans ? res->capspans * 2 : 64;
        fl_span_t *n = realloc(res->spans, cap * sizeof *n);
        if (!n)
            return FL_ENOMEM;
        res->spans = n;
        res->capspans = cap;
    }
    fl_span_t *sp = &res->spans[res->nspans];
    *sp = *span;
    sp->trace_id[sizeof sp->trace_id - 1] = '\0';
    sp->span_id[sizeof sp->span_id - 1] = '\0';
    sp->parent_id[sizeof sp->parent_id - 1] = '\0';
    sp->service = dup_or_empty(span->service);
    sp->instance = dup_or_empty(span->instance);
    sp->name = dup_or_empty(span->name);
    sp->status_message = dup_or_empty(span->status_message);
    sp->attrs = span->nattrs ? calloc(span->nattrs, sizeof *sp->attrs) : NULL;
    int bad = !sp->service || !sp->instance || !sp->name || !sp->status_message ||
              (span->nattrs && !sp->attrs);
    for (size_t i = 0; !bad && i < span->nattrs; i++) {
        sp->attrs[i].key = dup_or_empty(span->attrs[i].key);
        sp->attrs[i].value = dup_or_empty(span->attrs[i].value);
        bad = !sp->attrs[i].key || !sp->attrs[i].value;
    }
    if (bad) {
        span_free(sp);
        return FL_ENOMEM;
    }
    res->nspans++;
    return 0;
}

fl_scenario_result_t *fl_run_result_add(fl_run_result_t *run, const char *file, const char *name)
{
    if (run->nscenarios == run->capscenarios) {
        size_t cap = run->capscenarios ? run->capscenarios * 2 : 16;
        fl_scenario_result_t *s = realloc(run->scenarios, cap * sizeof *s);
        if (!s)
            return NULL;
        run->scenarios = s;
        run->capscenarios = cap;
    }
    fl_scenario_result_t *r = &run->scenarios[run->nscenarios];
    memset(r, 0, sizeof *r);
    r->file = strdup(file);
    r->name = strdup(name);
    if (!r->file || !r->name) {
        free(r->file);
        free(r->name);
        return NULL;
    }
    run->nscenarios++;
    return r;
}

static void scenario_free(fl_scenario_result_t *r)
{
    for (size_t i = 0; i < r->nevents; i++) {
        free(r->events[i].subject);
        free(r->events[i].text);
        free(r->events[i].where);
    }
    for (size_t i = 0; i < r->nlogs; i++) {
        free(r->logs[i].instance);
        free(r->logs[i].text);
    }
    for (size_t i = 0; i < r->nseries; i++) {
        free(r->series[i].name);
        free(r->series[i].samples);
    }
    for (size_t i = 0; i < r->nspans; i++)
        span_free(&r->spans[i]);
    free(r->series);
    free(r->spans);
    free(r->topology);
    free(r->events);
    free(r->logs);
    free(r->file);
    free(r->name);
    free(r->message);
    free(r->where);
    free(r->traceback);
    for (size_t i = 0; r->catches && r->catches[i]; i++)
        free(r->catches[i]);
    free(r->catches);
}

fl_mutant_result_t *fl_run_result_add_mutant(fl_run_result_t *run, const char *name)
{
    fl_mutant_result_t *m = realloc(run->mutants, (run->nmutants + 1) * sizeof *m);
    if (!m)
        return NULL;
    run->mutants = m;
    m = &m[run->nmutants];
    memset(m, 0, sizeof *m);
    if (!(m->name = strdup(name)))
        return NULL;
    run->nmutants++;
    return m;
}

static char *dup_opt(const char *s, int *bad)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *bad = 1;
    return d;
}

int fl_mutant_add_run(fl_mutant_result_t *m, const fl_scenario_result_t *r, int claimed)
{
    fl_mutant_run_t *v = realloc(m->runs, (m->nruns + 1) * sizeof *v);
    if (!v)
        return FL_ENOMEM;
    m->runs = v;
    v = &v[m->nruns];
    int bad = 0;
    *v = (fl_mutant_run_t){.verdict = r->verdict, .seconds = r->seconds, .claimed = claimed};
    v->file = dup_opt(r->file, &bad);
    v->name = dup_opt(r->name, &bad);
    v->message = dup_opt(r->message, &bad);
    v->where = dup_opt(r->where, &bad);
    if (bad) {
        free(v->file);
        free(v->name);
        free(v->message);
        free(v->where);
        return FL_ENOMEM;
    }
    m->nruns++;
    m->seconds += r->seconds;
    if (r->verdict == FL_VERDICT_PASS || r->verdict == FL_VERDICT_SKIP) {
        m->false_claims += claimed && r->verdict == FL_VERDICT_PASS;
        return 0;
    }
    int error = r->verdict != FL_VERDICT_FAIL;
    if (!m->caught || (m->by_error && !error)) { /* a failed check is the better evidence */
        m->caught = 1;
        m->caught_by = m->nruns - 1;
        m->by_error = error;
    }
    return 0;
}

int fl_run_result_mutants_ok(const fl_run_result_t *run)
{
    for (size_t i = 0; i < run->nmutants; i++)
        if (!run->mutants[i].caught || run->mutants[i].false_claims)
            return 0;
    return 1;
}

void fl_run_result_free(fl_run_result_t *run)
{
    for (size_t i = 0; i < run->nscenarios; i++)
        scenario_free(&run->scenarios[i]);
    free(run->scenarios);
    run->scenarios = NULL;
    run->nscenarios = run->capscenarios = 0;
    for (size_t i = 0; i < run->nmutants; i++) {
        fl_mutant_result_t *m = &run->mutants[i];
        for (size_t j = 0; j < m->nruns; j++) {
            free(m->runs[j].file);
            free(m->runs[j].name);
            free(m->runs[j].message);
            free(m->runs[j].where);
        }
        free(m->runs);
        free(m->name);
    }
    free(run->mutants);
    run->mutants = NULL;
    run->nmutants = 0;
}

const char *fl_verdict_name(fl_verdict_t v)
{
    switch (v) {
    case FL_VERDICT_PASS:
        return "pass";
    case FL_VERDICT_FAIL:
        return "fail";
    case FL_VERDICT_ERROR:
        return "error";
    case FL_VERDICT_USAGE:
        return "usage";
    case FL_VERDICT_SKIP:
        return "skip";
    }
    return "?";
}

const char *fl_proc_state_name(fl_proc_state_t s)
{
    static const char *const names[] = {"", "starting", "up", "paused", "down"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "";
}

const char *fl_fault_phase_name(fl_fault_phase_t p)
{
    static const char *const names[] = {"", "on", "off", "once"};
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "";
}

const char *fl_span_kind_name(fl_span_kind_t k)
{
    static const char *const names[] = {"internal", "server", "client", "producer", "consumer"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "internal";
}

const char *fl_span_status_name(fl_span_status_t s)
{
    static const char *const names[] = {"unset", "ok", "error"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unset";
}

/* JSON writer (report.h): the whole run for machines, laid out as docs/report-json.md says
 * and docs/report.schema.json checks. Nothing is capped or downsampled here (the HTML page is
 * the summary; this is the record). Times are seconds since the scenario started, with
 * microsecond precision, printed with integer arithmetic so no locale can change them. Every
 * string from the run goes through fl_text_escape_json, so any bytes give valid JSON. */
#include "reports/report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"
#include "reports/derive.h"
#include "reports/text.h"

#ifndef FL_VERSION
#define FL_VERSION "unknown"
#endif

typedef fl_out_t out_t;

static void str_n(out_t *o, const char *s, size_t len)
{
    fl_out_put(o, "\"");
    if (!o->rc && s)
        o->rc = fl_text_escape_json(o->b, s, len);
    fl_out_put(o, "\"");
}

static void str(out_t *o, const char *s)
{
    str_n(o, s, s ? strlen(s) : 0);
}

/* "key": first, then the value; comma handling is the caller's (`sep`). */
static void key(out_t *o, const char *sep, const char *k)
{
    fl_out_putf(o, "%s\"%s\":", sep, k);
}

static void kv_str(out_t *o, const char *sep, const char *k, const char *v)
{
    key(o, sep, k);
    str(o, v);
}

/* null when v is NULL */
static void kv_opt(out_t *o, const char *sep, const char *k, const char *v)
{
    key(o, sep, k);
    if (v)
        str(o, v);
    else
        fl_out_put(o, "null");
}

static void kv_u64(out_t *o, const char *sep, const char *k, uint64_t v)
{
    key(o, sep, k);
    fl_out_putf(o, "%llu", (unsigned long long)v);
}

static void kv_bool(out_t *o, const char *sep, const char *k, int v)
{
    key(o, sep, k);
    fl_out_put(o, v ? "true" : "false");
}

static void kv_ns(out_t *o, const char *sep, const char *k, uint64_t ns)
{
    key(o, sep, k);
    if (!o->rc)
        o->rc = fl_text_put_ns(o->b, ns);
}

static void kv_num(out_t *o, const char *sep, const char *k, double v, int decimals)
{
    key(o, sep, k);
    if (!o->rc)
        o->rc = fl_text_put_number(o->b, v, decimals);
}

static void kv_time(out_t *o, const char *sep, const char *k, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char s[64] = "1970-01-01T00:00:00";
    if (gmtime_r(&t, &tm) && tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999)
        strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    fl_out_putf(o, "%s\"%s\":\"%s.%03lluZ\"", sep, k, s, (unsigned long long)(unix_ms % 1000));
}

static void counts(out_t *o, const fl_fault_counts_t *c)
{
    if (!c->known) {
        fl_out_put(o, "null");
        return;
    }
    kv_u64(o, "{", "connections", c->connections);
    kv_u64(o, ",", "chunks", c->chunks);
    kv_u64(o, ",", "bytes", c->bytes);
    kv_u64(o, ",", "dropped", c->dropped);
    kv_u64(o, ",", "resets", c->resets);
    kv_u64(o, ",", "closes", c->closes);
    kv_u64(o, ",", "refused", c->refused);
    fl_out_put(o, "}");
}

static void event(out_t *o, const fl_event_t *ev)
{
    kv_ns(o, "{", "t", ev->t_ns);
    kv_str(o, ",", "kind", fl_text_kind_name(ev->kind));
    kv_bool(o, ",", "ok", ev->ok);
    kv_str(o, ",", "subject", ev->subject);
    kv_str(o, ",", "text", ev->text);
    kv_str(o, ",", "where", ev->where);
    if (ev->kind == FL_EV_PROCESS && ev->state != FL_PS_NONE)
        kv_str(o, ",", "state", fl_proc_state_name(ev->state));
    if (ev->kind == FL_EV_FAULT) {
        key(o, ",", "fault");
        kv_u64(o, "{", "id", ev->fault_id);
        kv_str(o, ",", "phase",
               ev->phase == FL_FAULT_NONE ? "none" : fl_fault_phase_name(ev->phase));
        key(o, ",", "counts");
        counts(o, &ev->counts);
        fl_out_put(o, "}");
    }
    fl_out_put(o, "}");
}

static void faults(out_t *o, const fl_scenario_result_t *r, uint64_t end_ns)
{
    fl_fault_iv_t *f = NULL;
    size_t n = 0;
    if (!o->rc)
        o->rc = fl_derive_faults(r, end_ns, &f, &n);
    fl_out_put(o, "[");
    for (size_t i = 0; i < n && !o->rc; i++) {
        kv_u64(o, i ? ",{" : "{", "id", f[i].id);
        kv_str(o, ",", "subject", f[i].subject);
        kv_str(o, ",", "text", f[i].text);
        kv_str(o, ",", "where", f[i].where);
        kv_ns(o, ",", "on", f[i].on_ns);
        key(o, ",", "off");
        if (f[i].instant || f[i].open)
            fl_out_put(o, "null");
        else if (!o->rc)
            o->rc = fl_text_put_ns(o->b, f[i].off_ns);
        kv_bool(o, ",", "instant", f[i].instant);
        kv_opt(o, ",", "end_text", f[i].end_text);
        key(o, ",", "fired");
        fl_out_put(o,
                   f[i].counts.known ? (fl_fault_fired(&f[i].counts) ? "true" : "false") : "null");
        key(o, ",", "counts");
        counts(o, &f[i].counts);
        fl_out_put(o, "}");
    }
    fl_out_put(o, "]");
    free(f);
}

static void series(out_t *o, const fl_series_t *s)
{
    kv_str(o, "{", "name", s->name);
    key(o, ",", "samples");
    fl_out_put(o, "[");
    for (size_t i = 0; i < s->nsamples; i++) {
        const fl_sample_t *x = &s->samples[i];
        kv_ns(o, i ? ",{" : "{", "t", x->t_ns);
        kv_u64(o, ",", "sent", x->sent);
        kv_u64(o, ",", "ok", x->ok);
        kv_u64(o, ",", "errors", x->errors);
        kv_num(o, ",", "p50_ms", x->p50_ms, 3);
        kv_num(o, ",", "p90_ms", x->p90_ms, 3);
        kv_num(o, ",", "p99_ms", x->p99_ms, 3);
        kv_num(o, ",", "max_ms", x->max_ms, 3);
        fl_out_put(o, "}");
    }
    fl_out_put(o, "]}");
}

static void span(out_t *o, const fl_span_t *s)
{
    kv_str(o, "{", "trace_id", s->trace_id);
    kv_str(o, ",", "span_id", s->span_id);
    kv_str(o, ",", "parent_id", s->parent_id);
    kv_str(o, ",", "service", s->service);
    kv_str(o, ",", "instance", s->instance);
    kv_str(o, ",", "name", s->name);
    kv_str(o, ",", "kind", fl_span_kind_name(s->kind));
    kv_ns(o, ",", "start", s->start_ns);
    kv_ns(o, ",", "duration", s->duration_ns);
    kv_str(o, ",", "status", fl_span_status_name(s->status));
    kv_str(o, ",", "status_message", s->status_message);
    kv_u64(o, ",", "attempt", s->attempt);
    key(o, ",", "attributes");
    fl_out_put(o, "{");
    for (size_t i = 0; i < s->nattrs; i++) {
        if (i)
            fl_out_put(o, ",");
        str(o, s->attrs[i].key);
        fl_out_put(o, ":");
        str(o, s->attrs[i].value);
    }
    fl_out_put(o, "}}");
}

/* A NULL-terminated list (NULL: none) as an array of strings. */
static void strings(out_t *o, char *const *v)
{
    fl_out_put(o, "[");
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            fl_out_put(o, ",");
        str(o, v[i]);
    }
    fl_out_put(o, "]");
}

static void mutant_run(out_t *o, const char *sep, const fl_mutant_run_t *r)
{
    kv_str(o, sep, "file", r->file);
    kv_str(o, ",", "name", r->name);
    kv_str(o, ",", "verdict", fl_verdict_name(r->verdict));
    kv_num(o, ",", "seconds", r->seconds > 0 ? r->seconds : 0, 6);
    kv_bool(o, ",", "claimed", r->claimed);
    kv_opt(o, ",", "message", r->message);
    kv_opt(o, ",", "where", r->where);
    fl_out_put(o, "}");
}

/* --mutants: one entry per mutant (null without --mutants; empty when the baseline failed). */
static void mutants(out_t *o, const fl_run_result_t *run)
{
    if (!run->mutant_mode) {
        fl_out_put(o, "null");
        return;
    }
    fl_out_put(o, "[");
    for (size_t i = 0; i < run->nmutants; i++) {
        const fl_mutant_result_t *m = &run->mutants[i];
        kv_str(o, i ? ",\n{" : "\n{", "name", m->name);
        kv_bool(o, ",", "caught", m->caught);
        key(o, ",", "caught_by");
        if (m->caught)
            mutant_run(o, "{", &m->runs[m->caught_by]);
        else
            fl_out_put(o, "null");
        kv_bool(o, ",", "by_error", m->caught && m->by_error);
        kv_u64(o, ",", "false_claims", m->false_claims);
        kv_num(o, ",", "seconds", m->seconds > 0 ? m->seconds : 0, 6);
        key(o, ",", "runs");
        fl_out_put(o, "[");
        for (size_t j = 0; j < m->nruns; j++)
            mutant_run(o, j ? ",{" : "{", &m->runs[j]);
        fl_out_put(o, "]}");
    }
    fl_out_put(o, "]");
}

static void scenario(out_t *o, const fl_scenario_result_t *r)
{
    uint64_t end_ns = fl_derive_end_ns(r);
    kv_str(o, "{", "file", r->file);
    kv_str(o, ",", "name", r->name);
    kv_str(o, ",", "verdict", fl_verdict_name(r->verdict));
    kv_num(o, ",", "seconds", r->seconds > 0 ? r->seconds : 0, 6);
    kv_time(o, ",", "started", r->start_unix_ms);
    kv_opt(o, ",", "message", r->message);
    kv_opt(o, ",", "where", r->where);
    kv_opt(o, ",", "traceback", r->traceback);
    kv_opt(o, ",", "topology", r->topology);
    key(o, ",", "catches");
    strings(o, r->catches);
    key(o, ",", "failure_event");
    size_t fe = fl_text_failure_end(r);
    if (r->verdict == FL_VERDICT_FAIL && fe > 0 && fe <= r->nevents &&
        r->events[fe - 1].kind == FL_EV_ASSERT && !r->events[fe - 1].ok)
        fl_out_putf(o, "%zu", fe - 1);
    else
        fl_out_put(o, "null");
    key(o, ",", "events");
    fl_out_put(o, "[");
    for (size_t i = 0; i < r->nevents; i++) {
        if (i)
            fl_out_put(o, ",\n");
        event(o, &r->events[i]);
    }
    fl_out_put(o, "]");
    key(o, ",\n", "faults");
    faults(o, r, end_ns);
    key(o, ",\n", "series");
    fl_out_put(o, "[");
    for (size_t i = 0; i < r->nseries; i++) {
        if (i)
            fl_out_put(o, ",");
        series(o, &r->series[i]);
    }
    fl_out_put(o, "]");
    key(o, ",\n", "spans");
    fl_out_put(o, "[");
    for (size_t i = 0; i < r->nspans; i++) {
        if (i)
            fl_out_put(o, ",\n");
        span(o, &r->spans[i]);
    }
    fl_out_put(o, "]");
    key(o, ",\n", "logs");
    fl_out_put(o, "[");
    for (size_t i = 0; i < r->nlogs; i++) {
        const fl_log_t *l = &r->logs[i];
        kv_str(o, i ? ",{" : "{", "instance", l->instance);
        key(o, ",", "text");
        str_n(o, l->text, l->text ? l->len : 0);
        kv_bool(o, ",", "truncated", l->truncated);
        /* a line number, not a byte offset: escaping changes offsets, never newlines */
        key(o, ",", "failure_line");
        if (l->marked && l->text && l->failure_at <= l->len) {
            size_t line = 0;
            for (size_t k = 0; k < l->failure_at; k++)
                line += l->text[k] == '\n';
            fl_out_putf(o, "%zu", line);
        } else {
            fl_out_put(o, "null");
        }
        fl_out_put(o, "}");
    }
    fl_out_put(o, "]}");
}

int fl_json_write_buf(const fl_run_result_t *run, fl_buf_t *out)
{
    out_t o = {out, 0};
    size_t start = out->len;
    size_t passed = 0, failed = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < run->nscenarios; i++) {
        fl_verdict_t v = run->scenarios[i].verdict;
        passed += v == FL_VERDICT_PASS;
        failed += v == FL_VERDICT_FAIL;
        errors += v == FL_VERDICT_ERROR || v == FL_VERDICT_USAGE;
        skipped += v == FL_VERDICT_SKIP;
    }
    kv_str(&o, "{", "format", "faultline-report");
    fl_out_putf(&o, ",\"version\":%d", FL_JSON_VERSION);
    kv_str(&o, ",", "faultline", run->version ? run->version : FL_VERSION);
    kv_u64(&o, ",", "seed", run->seed);
    kv_time(&o, ",", "started", run->start_unix_ms);
    kv_num(&o, ",", "seconds", run->seconds > 0 ? run->seconds : 0, 6);
    key(&o, ",", "shard");
    if (run->nshards)
        fl_out_putf(&o, "{\"index\":%u,\"count\":%u}", run->shard, run->nshards);
    else
        fl_out_put(&o, "null");
    fl_out_putf(&o,
                ",\"counts\":{\"scenarios\":%zu,\"passed\":%zu,\"failed\":%zu,\"errors\":%zu,"
                "\"skipped\":%zu}",
                run->nscenarios, passed, failed, errors, skipped);
    fl_out_put(&o, ",\n\"scenarios\":[\n");
    for (size_t i = 0; i < run->nscenarios; i++) {
        if (i)
            fl_out_put(&o, ",\n");
        scenario(&o, &run->scenarios[i]);
    }
    fl_out_put(&o, "\n],\n");
    key(&o, "", "mutants");
    mutants(&o, run);
    fl_out_put(&o, "}\n");
    if (o.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return o.rc;
}

int fl_json_write(const fl_run_result_t *run, const char *path)
{
    fl_buf_t doc = FL_BUF_INIT;
    int rc = fl_json_write_buf(run, &doc);
    if (!rc)
        rc = fl_text_write_file(path, &doc);
    fl_buf_free(&doc);
    return rc;
}

/* HTML writer (report.h): one self-contained page per run. Everything is inline: the CSS, the
 * SVG timelines and charts, and a few lines of JavaScript that only add filtering (folding
 * is <details>, which works without scripts), so the file opens from disk, offline, with
 * scripts disabled, and sends nothing anywhere. The page is built in memory and written in one
 * go. Every string from the run goes through fl_text_escape_xml (valid for HTML text and
 * attributes too), so no bytes a service prints can inject markup or break the page.
 *
 * Size: everything that grows with a run's length is capped (events, log lines, fault rows,
 * chart points, traces, spans), saying how much was left out and that the JSON report has it
 * all, so a 30-minute soak stays a few hundred kilobytes. */
#include "reports/report.h"

#include <locale.h>
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

#define MAX_EVENTS 400      /* rows of a scenario's event log */
#define MAX_FAULT_ROWS 24   /* fault intervals drawn as rows on the timeline */
#define MAX_FAULT_TABLE 200 /* rows of the fault counters table */
#define MAX_MARKERS 600     /* assertion markers (failed ones always drawn) */
#define MAX_POINTS 300      /* points per chart line: series are downsampled to this */
#define MAX_SERIES 4        /* charts per scenario */
#define MAX_TRACES 12       /* waterfalls per scenario */
#define MAX_TRACE_SPANS 60  /* rows per waterfall */
#define LOG_LINES_FAIL 60   /* instance log lines shown for a failing scenario */
#define LOG_LINES_PASS 15   /* ...and for the others */
#define LOG_BYTES 16384     /* at most this many bytes of each log */
#define MAX_LANES 64        /* instance lanes */

/* SVG geometry: a 1000-unit wide viewBox, labels on the left. */
#define W 1000
#define GUTTER 150
#define PLOT (W - GUTTER - 12)

typedef fl_out_t out_t;

static const char *str(const char *s)
{
    return s ? s : "";
}

/* Untrusted text, escaped for element content. */
static void text_n(out_t *o, const char *s, size_t len)
{
    if (!o->rc && s && len)
        o->rc = fl_text_escape_xml(o->b, s, len, 0);
}

static void text(out_t *o, const char *s)
{
    text_n(o, s, strlen(str(s)));
}

/* Untrusted text, escaped for a double-quoted attribute value. */
static void attr(out_t *o, const char *s)
{
    if (!o->rc && s && *s)
        o->rc = fl_text_escape_xml(o->b, s, strlen(s), 1);
}

static void num(out_t *o, double v, int decimals)
{
    if (!o->rc)
        o->rc = fl_text_put_number(o->b, v, decimals);
}

static void secs(out_t *o, double s, int decimals)
{
    if (!o->rc)
        o->rc = fl_text_put_seconds(o->b, s, decimals);
}

static void ns_secs(out_t *o, uint64_t ns)
{
    secs(o, (double)ns / 1e9, 3);
}

static int failing(fl_verdict_t v)
{
    return v == FL_VERDICT_FAIL || v == FL_VERDICT_ERROR || v == FL_VERDICT_USAGE;
}

/* ------------------------------------------------------------------ page frame ---- */

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;"
    "color:#222;background:#fff}\n"
    "h1{font-size:22px;margin:16px 0 4px}h2{font-size:17px;display:inline}h3{font-size:15px;"
    "margin:14px 0 6px}\n"
    "table{border-collapse:collapse;margin:6px 0}td,th{padding:2px 8px;border-bottom:1px solid "
    "#ddd;text-align:left;vertical-align:top}th{background:#f4f4f4}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    ".v{font-weight:bold;border-radius:3px;padding:0 6px;color:#fff}.v-pass{background:#2a7d2a}"
    ".v-fail,.v-error,.v-usage{background:#c0392b}.v-skip{background:#888}\n"
    "details.scenario{border:1px solid #ccc;border-radius:4px;margin:12px 0;padding:6px 10px}"
    "details.scenario[open]{padding-bottom:10px}summary{cursor:pointer}\n"
    "details.fail,details.error,details.usage{border-color:#c0392b}\n"
    ".evidence{background:#fdf0ef;border-left:4px solid #c0392b;padding:6px 10px;margin:8px 0}\n"
    "pre{background:#f7f7f7;padding:6px;overflow-x:auto;white-space:pre-wrap;"
    "word-break:break-all;font-size:12px;margin:4px 0}\n"
    "svg{width:100%;height:auto;display:block;font:11px sans-serif}\n"
    ".st-none{fill:#eee}.st-starting{fill:#a8d5a8}.st-up{fill:#3c9a3c}.st-paused{fill:#e6a23c}"
    ".st-down{fill:#d98880}\n"
    "rect.fault{fill:#7a5cc7;fill-opacity:.75}rect.band{fill:#7a5cc7;fill-opacity:.08}"
    "line.instant{stroke:#7a5cc7;stroke-dasharray:3 2}line.failure{stroke:#c0392b;"
    "stroke-width:1.5}\n"
    "circle.assert{stroke:#fff;stroke-width:1}circle.ok{fill:#2a7d2a}circle.fail{fill:#c0392b}"
    "\n"
    ".axis line{stroke:#999}.axis text,.lbl{fill:#333}.grid{stroke:#eee}\n"
    "polyline{fill:none;stroke-width:1.5}.l-sent{stroke:#555}.l-ok{stroke:#2a7d2a}"
    ".l-err{stroke:#c0392b}.l-p50{stroke:#2e86c1}.l-p90{stroke:#e6a23c}.l-p99{stroke:#c0392b}"
    ".l-rate{stroke:#c0392b}\n"
    "rect.span{fill:#2e86c1}rect.span.error{fill:#c0392b}rect.span.retry{fill:#e6a23c}\n"
    ".fail-mark{color:#c0392b}.ev-fail td{color:#c0392b;font-weight:bold}.ev-fault "
    "td{color:#5b3fa8}.muted{color:#777}\n"
    ".legend span{margin-right:12px}.sw{display:inline-block;width:10px;height:10px;"
    "margin-right:3px}\n"
    "#controls{margin:8px 0}#controls button{margin-right:4px}\n";

/* Filtering, and unfolding the scenario a summary link points at; without scripts the
 * controls stay hidden, everything is shown, and a click on a heading unfolds it. */
static const char script[] =
    "(function(){var c=document.getElementById('controls');if(!c)return;c.hidden=false;\n"
    "var q=document.getElementById('q'),mode='all';\n"
    "function show(){var t=q.value.toLowerCase();\n"
    "document.querySelectorAll('[data-verdict]').forEach(function(e){\n"
    "var v=e.getAttribute('data-verdict'),f=v==='fail'||v==='error'||v==='usage';\n"
    "var ok=mode==='all'||(mode==='failed'&&f)||(mode===v);\n"
    "ok=ok&&(!t||(e.getAttribute('data-title')||'').toLowerCase().indexOf(t)>=0);\n"
    "e.hidden=!ok;});}\n"
    "c.querySelectorAll('button[data-mode]').forEach(function(b){b.onclick=function(){"
    "mode=b.getAttribute('data-mode');show();};});\n"
    "document.getElementById('open-all').onclick=function(){document.querySelectorAll("
    "'details.scenario').forEach(function(d){d.open=true;});};\n"
    "document.getElementById('close-all').onclick=function(){document.querySelectorAll("
    "'details.scenario').forEach(function(d){d.open=false;});};\n"
    "q.oninput=show;\n"
    "function openHash(){var e=location.hash&&document.getElementById(location.hash.slice(1));"
    "if(e&&e.tagName==='DETAILS')e.open=true;}\n"
    "window.addEventListener('hashchange',openHash);openHash();})();\n";

static void timestamp(out_t *o, uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    char s[64] = "1970-01-01 00:00:00";
    if (gmtime_r(&t, &tm) && tm.tm_year + 1900 >= 0 && tm.tm_year + 1900 <= 9999)
        strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm);
    fl_out_putf(o, "%s UTC", s);
}

static void verdict_badge(out_t *o, fl_verdict_t v)
{
    fl_out_putf(o, "<span class=\"v v-%s\">%s</span>", fl_verdict_name(v), fl_verdict_name(v));
}

/* "file: name", for data-title (the filter matches on it) */
static void title_attr(out_t *o, const fl_scenario_result_t *r)
{
    fl_out_put(o, " data-title=\"");
    attr(o, r->file);
    fl_out_put(o, ": ");
    attr(o, r->name);
    fl_out_put(o, "\"");
}

/* Failures first, then passes, then skips; run order within each group. */
static int rank(fl_verdict_t v)
{
    return failing(v) ? 0 : v == FL_VERDICT_PASS ? 1 : 2;
}

static void summary_table(out_t *o, const fl_run_result_t *run)
{
    fl_out_put(o, "<table id=\"summary\"><thead><tr><th>verdict</th><th>file</th><th>scenario</th>"
                  "<th>time (s)</th><th>seed</th></tr></thead><tbody>\n");
    for (int g = 0; g < 3; g++) {
        for (size_t i = 0; i < run->nscenarios; i++) {
            const fl_scenario_result_t *r = &run->scenarios[i];
            if (rank(r->verdict) != g)
                continue;
            fl_out_putf(o, "<tr data-verdict=\"%s\"", fl_verdict_name(r->verdict));
            title_attr(o, r);
            fl_out_put(o, "><td>");
            verdict_badge(o, r->verdict);
            fl_out_put(o, "</td><td>");
            text(o, r->file);
            fl_out_putf(o, "</td><td><a href=\"#s-%zu\">", i + 1);
            text(o, r->name);
            fl_out_put(o, "</a></td><td class=\"num\">");
            secs(o, r->seconds, 3);
            fl_out_putf(o, "</td><td class=\"num\">%llu</td></tr>\n",
                        (unsigned long long)run->seed);
        }
    }
    fl_out_put(o, "</tbody></table>\n");
}

/* --mutants: a row per mutant (caught by which scenario, or survived), then the claims that
 * did not hold. */
static void mutants_table(out_t *o, const fl_run_result_t *run)
{
    if (!run->mutant_mode)
        return;
    fl_out_put(o, "<h2>Mutants</h2>\n");
    if (!run->nmutants) {
        fl_out_put(o, "<p class=\"fail-mark\">Not run: the baseline above did not pass.</p>\n");
        return;
    }
    fl_out_put(o, "<table id=\"mutants\"><thead><tr><th>mutant</th><th>result</th><th>caught by"
                  "</th><th>what it said</th><th>runs</th></tr></thead><tbody>\n");
    for (size_t i = 0; i < run->nmutants; i++) {
        const fl_mutant_result_t *m = &run->mutants[i];
        const fl_mutant_run_t *by = m->caught ? &m->runs[m->caught_by] : NULL;
        fl_out_put(o, "<tr><td><code>");
        text(o, m->name);
        fl_out_putf(o, "</code></td><td><span class=\"v v-%s\">%s</span></td><td>",
                    by ? "pass" : "fail", by ? "caught" : "SURVIVED");
        if (by) {
            text(o, by->file);
            fl_out_put(o, ": ");
            text(o, by->name);
        }
        fl_out_put(o, "</td><td>");
        if (by && m->by_error)
            fl_out_put(o, "<b>caught by an error, not a check:</b> ");
        if (by)
            text(o, by->message);
        fl_out_putf(o, "</td><td class=\"num\">%zu</td></tr>\n", m->nruns);
    }
    fl_out_put(o, "</tbody></table>\n");
    for (size_t i = 0; i < run->nmutants; i++)
        for (size_t j = 0; j < run->mutants[i].nruns; j++) {
            const fl_mutant_run_t *r = &run->mutants[i].runs[j];
            if (!r->claimed || r->verdict != FL_VERDICT_PASS)
                continue;
            fl_out_put(o, "<p class=\"fail-mark\">");
            text(o, r->file);
            fl_out_put(o, ": ");
            text(o, r->name);
            fl_out_put(o, ": claims to catch <code>");
            text(o, run->mutants[i].name);
            fl_out_put(o, "</code> but passed</p>\n");
        }
}

/* ------------------------------------------------------------------ timeline ---- */

static double xpos(uint64_t t_ns, uint64_t end_ns)
{
    if (end_ns == 0)
        return GUTTER;
    double f = (double)t_ns / (double)end_ns;
    return GUTTER + (f > 1 ? 1 : f) * PLOT;
}

/* A tick step of 1, 2 or 5 times a power of ten seconds giving at most 10 ticks. */
static double tick_step(double end_s)
{
    double step = 0.001;
    while (end_s / step > 10) {
        if (end_s / (step * 2) <= 10)
            return step * 2;
        if (end_s / (step * 5) <= 10)
            return step * 5;
        step *= 10;
    }
    return step;
}

static void axis(out_t *o, uint64_t end_ns, double y, double height)
{
    double end_s = (double)end_ns / 1e9, step = tick_step(end_s > 0 ? end_s : 1);
    fl_out_put(o, "<g class=\"axis\">");
    for (int k = 0; k <= 12; k++) {
        double t = step * k;
        if (t > end_s + 1e-9)
            break;
        double x = xpos((uint64_t)(t * 1e9), end_ns);
        fl_out_put(o, "<line class=\"grid\" x1=\"");
        num(o, x, 1);
        fl_out_put(o, "\" x2=\"");
        num(o, x, 1);
        fl_out_putf(o, "\" y1=\"%g\" y2=\"%g\"/><text x=\"", y, y + height);
        num(o, x, 1);
        fl_out_putf(o, "\" y=\"%g\" text-anchor=\"middle\">", y - 3);
        num(o, t, step < 0.01 ? 3 : step < 1 ? 2 : 0);
        fl_out_put(o, "s</text>");
    }
    fl_out_put(o, "</g>");
}

/* <rect> from t0 to t1 (at least 1.5 units wide so instants stay visible). */
static void span_rect(out_t *o, const char *cls, uint64_t t0, uint64_t t1, uint64_t end_ns,
                      double y, double h)
{
    double x0 = xpos(t0, end_ns), x1 = xpos(t1, end_ns);
    if (x1 - x0 < 1.5)
        x1 = x0 + 1.5;
    fl_out_putf(o, "<rect class=\"%s\" x=\"", cls);
    num(o, x0, 1);
    fl_out_putf(o, "\" y=\"%g\" width=\"", y);
    num(o, x1 - x0, 1);
    fl_out_putf(o, "\" height=\"%g\">", h);
}

static void fault_label(out_t *o, const fl_fault_iv_t *f)
{
    text(o, f->text);
    if (*f->subject) {
        fl_out_put(o, " on ");
        text(o, f->subject);
    }
}

static void fault_title(out_t *o, const fl_fault_iv_t *f)
{
    fl_out_put(o, "<title>");
    fault_label(o, f);
    fl_out_put(o, " (");
    ns_secs(o, f->on_ns);
    if (!f->instant) {
        fl_out_put(o, "s to ");
        ns_secs(o, f->off_ns);
        fl_out_put(o, f->open ? "s, still on at the end" : "s");
    } else {
        fl_out_put(o, "s");
    }
    if (*f->where) {
        fl_out_put(o, ", ");
        text(o, f->where);
    }
    fl_out_put(o, ")");
    if (f->counts.known)
        fl_out_put(o, fl_fault_fired(&f->counts) ? " fired" : " never fired");
    fl_out_put(o, "</title>");
}

static void timeline_svg(out_t *o, const fl_scenario_result_t *r, uint64_t end_ns,
                         const fl_fault_iv_t *faults, size_t nfaults, const fl_lane_t *lanes,
                         size_t nlanes)
{
    size_t nrows = 0, extra = 0;
    for (size_t i = 0; i < nfaults; i++)
        if (!faults[i].instant) {
            if (nrows < MAX_FAULT_ROWS)
                nrows++;
            else
                extra++;
        }
    size_t shown_lanes = nlanes < MAX_LANES ? nlanes : MAX_LANES;
    const double top = 18, row = 15, lane = 18;
    double faults_y = top + 4, lanes_y = faults_y + nrows * row + (nrows ? 6 : 0);
    double marks_y = lanes_y + shown_lanes * lane + 4;
    double height = marks_y + 22;
    fl_out_putf(o,
                "<svg class=\"timeline\" viewBox=\"0 0 %d %g\" role=\"img\" "
                "aria-label=\"timeline\">",
                W, height);
    axis(o, end_ns, top, height - top);

    /* fault bands across everything, then one row per interval, labelled */
    for (size_t i = 0, k = 0; i < nfaults; i++) {
        const fl_fault_iv_t *f = &faults[i];
        if (f->instant) {
            double x = xpos(f->on_ns, end_ns);
            fl_out_put(o, "<line class=\"instant\" x1=\"");
            num(o, x, 1);
            fl_out_put(o, "\" x2=\"");
            num(o, x, 1);
            fl_out_putf(o, "\" y1=\"%g\" y2=\"%g\">", top, marks_y);
            fault_title(o, f);
            fl_out_put(o, "</line>");
            continue;
        }
        span_rect(o, "band", f->on_ns, f->off_ns, end_ns, top, marks_y - top);
        fl_out_put(o, "</rect>");
        if (k >= MAX_FAULT_ROWS)
            continue;
        double y = faults_y + k * row;
        span_rect(o, "fault", f->on_ns, f->off_ns, end_ns, y, row - 3);
        fault_title(o, f);
        fl_out_put(o, "</rect><text class=\"lbl\" x=\"");
        num(o, xpos(f->on_ns, end_ns) + 2, 1);
        fl_out_putf(o, "\" y=\"%g\">", y + row - 5);
        fault_label(o, f);
        fl_out_put(o, "</text>");
        k++;
    }
    if (extra)
        fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">+%zu more faults (table below)</text>",
                    lanes_y - 2, extra);
    if (nrows)
        fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">faults</text>", faults_y + row - 5);

    for (size_t i = 0; i < shown_lanes; i++) {
        const fl_lane_t *l = &lanes[i];
        double y = lanes_y + i * lane;
        fl_out_put(o, "<g class=\"lane\" data-instance=\"");
        attr(o, l->instance);
        fl_out_putf(o, "\"><text class=\"lbl\" x=\"4\" y=\"%g\">", y + lane - 6);
        text(o, l->instance);
        fl_out_put(o, "</text>");
        for (size_t s = 0; s < l->nsegs; s++) {
            const fl_seg_t *g = &l->segs[s];
            const char *cls = s == 0 && g->state == FL_PS_DOWN
                                  ? "st-none"
                                  : (g->state == FL_PS_STARTING ? "st-starting"
                                     : g->state == FL_PS_UP     ? "st-up"
                                     : g->state == FL_PS_PAUSED ? "st-paused"
                                                                : "st-down");
            char c[32];
            snprintf(c, sizeof c, "seg %s", cls);
            span_rect(o, c, g->from_ns, g->to_ns, end_ns, y + 2, lane - 5);
            fl_out_put(o, "<title>");
            text(o, l->instance);
            fl_out_putf(o, " %s from ",
                        s == 0 && g->state == FL_PS_DOWN ? "not started"
                                                         : fl_proc_state_name(g->state));
            ns_secs(o, g->from_ns);
            fl_out_put(o, "s to ");
            ns_secs(o, g->to_ns);
            fl_out_put(o, "s</title></rect>");
        }
        fl_out_put(o, "</g>");
    }
    if (nlanes > shown_lanes)
        fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">+%zu more instances</text>",
                    marks_y - 2, nlanes - shown_lanes);

    /* the instant the verdict is attributed to, across every lane */
    size_t fe = fl_text_failure_end(r);
    if (r->verdict == FL_VERDICT_FAIL && fe > 0 && fe <= r->nevents &&
        r->events[fe - 1].kind == FL_EV_ASSERT && !r->events[fe - 1].ok) {
        double x = xpos(r->events[fe - 1].t_ns, end_ns);
        fl_out_put(o, "<line class=\"failure\" x1=\"");
        num(o, x, 1);
        fl_out_put(o, "\" x2=\"");
        num(o, x, 1);
        fl_out_putf(o, "\" y1=\"%g\" y2=\"%g\"><title>the scenario failed here (", top,
                    marks_y + 18);
        ns_secs(o, r->events[fe - 1].t_ns);
        fl_out_put(o, "s)</title></line>");
    }
    fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">assertions</text>", marks_y + 13);
    size_t drawn = 0;
    for (size_t i = 0; i < r->nevents; i++) {
        const fl_event_t *ev = &r->events[i];
        if (ev->kind != FL_EV_ASSERT || (ev->ok && drawn >= MAX_MARKERS))
            continue;
        drawn++;
        fl_out_putf(o, "<circle class=\"assert %s\" cx=\"", ev->ok ? "ok" : "fail");
        num(o, xpos(ev->t_ns, end_ns), 1);
        fl_out_putf(o, "\" cy=\"%g\" r=\"%d\"><title>", marks_y + 9, ev->ok ? 4 : 6);
        fl_out_put(o, ev->ok ? "passed: " : "FAILED: ");
        text(o, ev->text);
        fl_out_put(o, " (");
        ns_secs(o, ev->t_ns);
        fl_out_put(o, "s");
        if (*str(ev->where)) {
            fl_out_put(o, ", ");
            text(o, ev->where);
        }
        fl_out_put(o, ")</title></circle>");
    }
    fl_out_put(o, "</svg>\n<div class=\"legend muted\">"
                  "<span><i class=\"sw st-up\" style=\"background:#3c9a3c\"></i>up</span>"
                  "<span><i class=\"sw\" style=\"background:#a8d5a8\"></i>starting</span>"
                  "<span><i class=\"sw\" style=\"background:#e6a23c\"></i>paused</span>"
                  "<span><i class=\"sw\" style=\"background:#d98880\"></i>down</span>"
                  "<span><i class=\"sw\" style=\"background:#7a5cc7\"></i>fault</span>"
                  "<span>&#9679; assertion (green passed, red failed)</span></div>\n");
}

/* ------------------------------------------------------------------ load charts ---- */

typedef struct {
    uint64_t t_ns;
    double sent, ok, errors; /* per second */
    double p50, p90, p99, max;
} point_t;

/* Series downsampled to at most MAX_POINTS buckets: rates averaged, latencies the worst; each
 * point at the middle of the seconds its samples cover (a sample is [t, t + 1s)). */
static size_t downsample(const fl_series_t *s, point_t *pts)
{
    size_t n = s->nsamples, buckets = n < MAX_POINTS ? n : MAX_POINTS;
    for (size_t b = 0; b < buckets; b++) {
        size_t from = b * n / buckets, to = (b + 1) * n / buckets;
        /* drawn at the middle of the seconds it covers */
        uint64_t mid = (s->samples[from].t_ns + s->samples[to - 1].t_ns) / 2 + 500000000;
        point_t p = {mid, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = from; i < to; i++) {
            const fl_sample_t *x = &s->samples[i];
            p.sent += (double)x->sent;
            p.ok += (double)x->ok;
            p.errors += (double)x->errors;
            p.p50 = x->p50_ms > p.p50 ? x->p50_ms : p.p50;
            p.p90 = x->p90_ms > p.p90 ? x->p90_ms : p.p90;
            p.p99 = x->p99_ms > p.p99 ? x->p99_ms : p.p99;
            p.max = x->max_ms > p.max ? x->max_ms : p.max;
        }
        double k = (double)(to - from);
        p.sent /= k;
        p.ok /= k;
        p.errors /= k;
        pts[b] = p;
    }
    return buckets;
}

static double field(const point_t *p, int f)
{
    switch (f) {
    case 0:
        return p->sent;
    case 1:
        return p->ok;
    case 2:
        return p->errors;
    case 3:
        return p->p50;
    case 4:
        return p->p90;
    case 5:
        return p->p99;
    default:
        return p->sent > 0 ? 100.0 * p->errors / p->sent : 0;
    }
}

/* One small chart: the given fields of pts as lines, y from 0 to the largest value. */
static void chart(out_t *o, const char *title, const char *unit, const point_t *pts, size_t n,
                  uint64_t end_ns, const int *fields, const char *const *classes, size_t nf)
{
    const double h = 90, top = 16;
    double ymax = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t f = 0; f < nf; f++)
            if (field(&pts[i], fields[f]) > ymax)
                ymax = field(&pts[i], fields[f]);
    if (ymax <= 0)
        ymax = 1;
    fl_out_putf(o, "<svg class=\"chart\" viewBox=\"0 0 %d %g\" role=\"img\" aria-label=\"%s\">", W,
                top + h + 4, title);
    fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">%s</text>", top + 12, title);
    fl_out_putf(o, "<text class=\"lbl\" x=\"4\" y=\"%g\">max ", top + 26);
    num(o, ymax, 2);
    fl_out_putf(o, " %s</text>", unit);
    axis(o, end_ns, top, h);
    for (size_t f = 0; f < nf; f++) {
        fl_out_putf(o, "<polyline class=\"%s\" points=\"", classes[f]);
        for (size_t i = 0; i < n; i++) {
            num(o, xpos(pts[i].t_ns, end_ns), 1);
            fl_out_put(o, ",");
            num(o, top + h - field(&pts[i], fields[f]) / ymax * h, 1);
            fl_out_put(o, " ");
        }
        fl_out_put(o, "\"/>");
    }
    fl_out_put(o, "</svg>\n");
}

static void load_charts(out_t *o, const fl_scenario_result_t *r, uint64_t end_ns)
{
    if (!r->nseries)
        return;
    fl_out_put(o, "<h3>Load</h3>\n");
    point_t *pts = malloc(MAX_POINTS * sizeof *pts);
    if (!pts) {
        o->rc = o->rc ? o->rc : FL_ENOMEM;
        return;
    }
    for (size_t i = 0; i < r->nseries && i < MAX_SERIES; i++) {
        const fl_series_t *s = &r->series[i];
        if (!s->nsamples)
            continue;
        size_t n = downsample(s, pts);
        fl_out_put(o, "<div class=\"series\" data-series=\"");
        attr(o, s->name);
        fl_out_put(o, "\"><b>");
        text(o, s->name);
        fl_out_putf(o, "</b> <span class=\"muted\">(%zu samples%s)</span>\n", s->nsamples,
                    n < s->nsamples ? ", downsampled" : "");
        static const int rate_f[] = {0, 1, 2}, lat_f[] = {3, 4, 5}, err_f[] = {6};
        static const char *const rate_c[] = {"l-sent", "l-ok", "l-err"},
                                 *const lat_c[] = {"l-p50", "l-p90", "l-p99"},
                                 *const err_c[] = {"l-rate"};
        chart(o, "requests/s (sent, ok, errors)", "/s", pts, n, end_ns, rate_f, rate_c, 3);
        chart(o, "latency p50 / p90 / p99", "ms", pts, n, end_ns, lat_f, lat_c, 3);
        chart(o, "error rate", "%", pts, n, end_ns, err_f, err_c, 1);
        fl_out_put(o, "</div>\n");
    }
    if (r->nseries > MAX_SERIES)
        fl_out_putf(o, "<p class=\"muted\">%zu more series in the JSON report.</p>\n",
                    r->nseries - MAX_SERIES);
    free(pts);
}

/* ------------------------------------------------------------------ faults table ---- */

static void counts_cell(out_t *o, const fl_fault_counts_t *c)
{
    if (!c->known) {
        fl_out_put(o, "<td class=\"muted\">n/a</td><td class=\"muted\">-</td>");
        return;
    }
    fl_out_putf(o, "<td>%s</td><td>", fl_fault_fired(c) ? "<b>fired</b>" : "never fired");
    fl_out_putf(
        o,
        "connections %llu, chunks %llu, bytes %llu, dropped %llu, resets %llu, closes %llu, "
        "refused %llu</td>",
        (unsigned long long)c->connections, (unsigned long long)c->chunks,
        (unsigned long long)c->bytes, (unsigned long long)c->dropped, (unsigned long long)c->resets,
        (unsigned long long)c->closes, (unsigned long long)c->refused);
}

static void fault_table(out_t *o, const fl_fault_iv_t *f, size_t n)
{
    if (!n)
        return;
    fl_out_put(o, "<h3>Faults</h3>\n<table class=\"faults\"><thead><tr><th>fault</th><th>on</th>"
                  "<th>from (s)</th><th>to (s)</th><th>fired?</th><th>counters</th><th>where</th>"
                  "</tr></thead><tbody>\n");
    for (size_t i = 0; i < n && i < MAX_FAULT_TABLE; i++) {
        fl_out_put(o, "<tr><td>");
        text(o, f[i].text);
        fl_out_put(o, "</td><td>");
        text(o, f[i].subject);
        fl_out_put(o, "</td><td class=\"num\">");
        ns_secs(o, f[i].on_ns);
        fl_out_put(o, "</td><td class=\"num\">");
        if (f[i].instant)
            fl_out_put(o, "(instant)");
        else if (f[i].open)
            fl_out_put(o, "end (still on)");
        else
            ns_secs(o, f[i].off_ns);
        fl_out_put(o, "</td>");
        counts_cell(o, &f[i].counts);
        fl_out_put(o, "<td>");
        text(o, f[i].where);
        fl_out_put(o, "</td></tr>\n");
    }
    fl_out_put(o, "</tbody></table>\n");
    if (n > MAX_FAULT_TABLE)
        fl_out_putf(o, "<p class=\"muted\">%zu more faults in the JSON report.</p>\n",
                    n - MAX_FAULT_TABLE);
}

/* ------------------------------------------------------------------ waterfalls ---- */

static int cmp_span(const void *a, const void *b)
{
    const fl_span_t *x = *(const fl_span_t *const *)a, *y = *(const fl_span_t *const *)b;
    int c = strcmp(x->trace_id, y->trace_id);
    if (c)
        return c;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns ? 1 : 0;
}

/* A span is a retry when the collector says so (attempt 2+), when an attribute counts
 * retries or resends (retry.count=1, attempt=2...), or when its parent made another CLIENT
 * call of the same name (one CLIENT span per attempt, as the shop's runtime exports them). */
static int retried(const fl_span_t *const *sp, size_t from, size_t to, size_t i)
{
    const fl_span_t *s = sp[i];
    if (s->attempt > 1)
        return 1;
    for (size_t a = 0; a < s->nattrs; a++) {
        const char *k = str(s->attrs[a].key), *v = str(s->attrs[a].value);
        long n = strcmp(v, "true") == 0 ? 1 : strtol(v, NULL, 10);
        if (((strstr(k, "retr") || strstr(k, "resend")) && n > 0) ||
            (strstr(k, "attempt") && n > 1))
            return 1;
    }
    if (s->kind != FL_SPAN_CLIENT || !s->parent_id[0])
        return 0;
    for (size_t k = from; k < to; k++)
        if (k != i && sp[k]->kind == FL_SPAN_CLIENT &&
            strcmp(sp[k]->parent_id, s->parent_id) == 0 &&
            strcmp(str(sp[k]->name), str(s->name)) == 0)
            return 1;
    return 0;
}

/* Depth of span i in its trace (spans sorted, from..to), following parents; bounded. */
static int depth(const fl_span_t *const *sp, size_t from, size_t to, size_t i)
{
    int d = 0;
    const fl_span_t *s = sp[i];
    while (s->parent_id[0] && d < 16) {
        const fl_span_t *p = NULL;
        for (size_t k = from; k < to; k++)
            if (strcmp(sp[k]->span_id, s->parent_id) == 0) {
                p = sp[k];
                break;
            }
        if (!p)
            break;
        s = p;
        d++;
    }
    return d;
}

static void waterfall(out_t *o, const fl_span_t *const *sp, size_t from, size_t to, int err)
{
    uint64_t t0 = sp[from]->start_ns, t1 = t0;
    for (size_t i = from; i < to; i++)
        if (sp[i]->start_ns + sp[i]->duration_ns > t1)
            t1 = sp[i]->start_ns + sp[i]->duration_ns;
    uint64_t len = t1 > t0 ? t1 - t0 : 1;
    size_t rows = to - from < MAX_TRACE_SPANS ? to - from : MAX_TRACE_SPANS;
    const double rh = 16;
    fl_out_put(o, "<div class=\"trace\" data-trace=\"");
    attr(o, sp[from]->trace_id);
    fl_out_put(o, "\"><b>trace ");
    text(o, sp[from]->trace_id);
    fl_out_putf(o, "</b> <span class=\"muted\">%zu span%s, ", to - from, to - from == 1 ? "" : "s");
    ns_secs(o, len);
    fl_out_putf(o, "s%s</span>\n", err ? ", failed" : ", retried");
    fl_out_putf(o,
                "<svg class=\"waterfall\" viewBox=\"0 0 %d %g\" role=\"img\" "
                "aria-label=\"trace waterfall\">",
                W, rows * rh + 4);
    for (size_t k = 0; k < rows; k++) {
        const fl_span_t *s = sp[from + k];
        int d = depth(sp, from, to, from + k);
        double y = 2 + k * rh;
        fl_out_putf(o, "<text class=\"lbl\" x=\"%d\" y=\"%g\">", 4 + 8 * (d < 8 ? d : 8),
                    y + rh - 5);
        text(o, s->service);
        fl_out_put(o, " ");
        text(o, s->name);
        fl_out_put(o, "</text>");
        double x0 = GUTTER + (double)(s->start_ns - t0) / (double)len * PLOT;
        double w = (double)s->duration_ns / (double)len * PLOT;
        if (w < 1.5)
            w = 1.5;
        fl_out_putf(o, "<rect class=\"span%s%s\" x=\"",
                    s->status == FL_STATUS_ERROR ? " error" : "",
                    retried(sp, from, to, from + k) ? " retry" : "");
        num(o, x0, 1);
        fl_out_putf(o, "\" y=\"%g\" width=\"", y + 2);
        num(o, w, 1);
        fl_out_putf(o, "\" height=\"%g\"><title>", rh - 5);
        text(o, s->service);
        if (*str(s->instance)) {
            fl_out_put(o, " (");
            text(o, s->instance);
            fl_out_put(o, ")");
        }
        fl_out_put(o, " ");
        text(o, s->name);
        fl_out_putf(o, " [%s] %s", fl_span_kind_name(s->kind), fl_span_status_name(s->status));
        if (*str(s->status_message)) {
            fl_out_put(o, ": ");
            text(o, s->status_message);
        }
        fl_out_put(o, ", ");
        ns_secs(o, s->duration_ns);
        fl_out_put(o, "s");
        if (s->attempt)
            fl_out_putf(o, ", attempt %u", s->attempt);
        for (size_t a = 0; a < s->nattrs; a++) {
            fl_out_put(o, ", ");
            text(o, s->attrs[a].key);
            fl_out_put(o, "=");
            text(o, s->attrs[a].value);
        }
        fl_out_put(o, "</title></rect>");
    }
    fl_out_put(o, "</svg>");
    if (to - from > rows)
        fl_out_putf(o, "<p class=\"muted\">%zu more spans in the JSON report.</p>",
                    to - from - rows);
    fl_out_put(o, "</div>\n");
}

/* A trace failed when its root did (the span without a parent in the trace, else its first):
 * a request that succeeded after failed attempts was retried, not failed. */
static int trace_failed(const fl_span_t *const *sp, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        int parent_here = 0;
        for (size_t k = from; k < to && sp[i]->parent_id[0] && !parent_here; k++)
            parent_here = k != i && strcmp(sp[k]->span_id, sp[i]->parent_id) == 0;
        if (!parent_here)
            return sp[i]->status == FL_STATUS_ERROR;
    }
    return sp[from]->status == FL_STATUS_ERROR;
}

/* Waterfalls of the failed requests' traces first, then of those with a retried span. */
static void waterfalls(out_t *o, const fl_scenario_result_t *r)
{
    if (!r->nspans)
        return;
    const fl_span_t **sp = malloc(r->nspans * sizeof *sp);
    if (!sp) {
        o->rc = o->rc ? o->rc : FL_ENOMEM;
        return;
    }
    for (size_t i = 0; i < r->nspans; i++)
        sp[i] = &r->spans[i];
    qsort(sp, r->nspans, sizeof *sp, cmp_span);
    size_t shown = 0, interesting = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t from = 0; from < r->nspans;) {
            size_t to = from + 1;
            while (to < r->nspans && strcmp(sp[to]->trace_id, sp[from]->trace_id) == 0)
                to++;
            int err = trace_failed(sp, from, to), retry = 0;
            for (size_t i = from; i < to && !retry; i++)
                retry = retried(sp, from, to, i);
            if ((pass == 0 && err) || (pass == 1 && !err && retry)) {
                interesting++;
                if (shown < MAX_TRACES) {
                    if (!shown)
                        fl_out_put(o, "<h3>Traces (failed and retried requests)</h3>\n");
                    waterfall(o, sp, from, to, err);
                    shown++;
                }
            }
            from = to;
        }
    }
    if (interesting > shown)
        fl_out_putf(
            o, "<p class=\"muted\">%zu more failed or retried traces in the JSON report.</p>\n",
            interesting - shown);
    if (!interesting)
        fl_out_putf(o,
                    "<p class=\"muted\">%zu spans collected; no failed or retried request.</p>\n",
                    r->nspans);
    free(sp);
}

/* ------------------------------------------------------------------ events, logs ---- */

static void event_row(out_t *o, const fl_event_t *ev)
{
    int failed = ev->kind == FL_EV_ASSERT && !ev->ok;
    fl_out_putf(o, "<tr class=\"%s\"><td class=\"num\">",
                failed                    ? "ev-fail"
                : ev->kind == FL_EV_FAULT ? "ev-fault"
                                          : "ev");
    ns_secs(o, ev->t_ns);
    fl_out_putf(o, "</td><td>%s</td><td>", fl_text_kind_name(ev->kind));
    text(o, ev->subject);
    fl_out_put(o, "</td><td>");
    if (failed)
        fl_out_put(o, "FAILED: ");
    text(o, ev->text);
    fl_out_put(o, "</td><td>");
    text(o, ev->where);
    fl_out_put(o, "</td></tr>\n");
}

static void event_table(out_t *o, const fl_scenario_result_t *r, size_t from, size_t to)
{
    fl_out_put(o, "<table class=\"events\"><thead><tr><th>t (s)</th><th>kind</th><th>subject</th>"
                  "<th>what</th><th>where</th></tr></thead><tbody>\n");
    for (size_t i = from; i < to; i++)
        event_row(o, &r->events[i]);
    fl_out_put(o, "</tbody></table>\n");
}

/* The whole log when short; otherwise MAX_EVENTS around the failure (or the last ones). */
static void event_log(out_t *o, const fl_scenario_result_t *r, int open)
{
    if (!r->nevents)
        return;
    size_t from = 0, to = r->nevents;
    if (r->nevents > MAX_EVENTS) {
        size_t end = fl_text_failure_end(r);
        size_t after = MAX_EVENTS / 4;
        to = end + after < r->nevents ? end + after : r->nevents;
        from = to > MAX_EVENTS ? to - MAX_EVENTS : 0;
    }
    fl_out_putf(o, "<details class=\"log\"%s><summary>Event log (%zu events", open ? " open" : "",
                r->nevents);
    if (to - from < r->nevents)
        fl_out_putf(o, "; %zu to %zu shown, all in the JSON report", from + 1, to);
    fl_out_put(o, ")</summary>\n");
    event_table(o, r, from, to);
    fl_out_put(o, "</details>\n");
}

/* The last `lines` lines (at most LOG_BYTES) of an instance's log. */
/* Moves i back over n newlines (to the start of the n-th line before it), not below lo. */
static size_t lines_back(const char *t, size_t i, size_t lo, size_t n)
{
    size_t seen = 0;
    for (; i > lo; i--)
        if (t[i - 1] == '\n' && ++seen > n)
            return i;
    return lo;
}

/* Moves i forward over n newlines, not beyond hi. */
static size_t lines_forward(const char *t, size_t i, size_t hi, size_t n)
{
    size_t seen = 0;
    for (; i < hi; i++)
        if (t[i] == '\n' && ++seen == n)
            return i + 1;
    return hi;
}

/* Not in the middle of a UTF-8 character. */
static size_t char_start(const char *t, size_t i, size_t len)
{
    while (i > 0 && i < len && ((unsigned char)t[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* An instance's log: with a failure mark (failing scenarios), the lines around the moment
 * the scenario failed, with a marker there; otherwise the last `lines` lines. At most
 * LOG_BYTES either way. */
static void log_excerpt(out_t *o, const fl_log_t *log, size_t lines, int around_failure)
{
    const char *t = str(log->text);
    size_t len = log->text ? log->len : 0, total = 0;
    for (size_t i = 0; i < len; i++)
        total += t[i] == '\n';
    if (len && t[len - 1] != '\n')
        total++;
    size_t lo = len > LOG_BYTES ? len - LOG_BYTES : 0, start, end = len, mark = len + 1;
    if (around_failure && log->marked && log->failure_at <= len) {
        mark = log->failure_at;
        start = lines_back(t, mark, mark > LOG_BYTES / 2 ? mark - LOG_BYTES / 2 : 0, lines * 2 / 3);
        end = lines_forward(t, mark, len - mark > LOG_BYTES / 2 ? mark + LOG_BYTES / 2 : len,
                            lines - lines * 2 / 3);
    } else {
        start = len ? lines_back(t, len - (t[len - 1] == '\n'), lo, lines - 1) : 0;
    }
    start = char_start(t, start, len);
    end = char_start(t, end, len);
    fl_out_put(o, "<div class=\"instance-log\" data-instance=\"");
    attr(o, log->instance);
    fl_out_put(o, "\"><b>");
    text(o, log->instance);
    fl_out_put(o, "</b> <span class=\"muted\">");
    if (!len)
        fl_out_put(o, "(empty)");
    else if (mark <= len)
        fl_out_putf(o, "(the lines around the failure%s)",
                    log->truncated ? "; older output was dropped" : "");
    else if (start > 0 || log->truncated)
        fl_out_putf(o, "(last lines only%s)", log->truncated ? "; older output was dropped" : "");
    else
        fl_out_putf(o, "(%zu line%s)", total, total == 1 ? "" : "s");
    fl_out_put(o, "</span><pre class=\"log\">");
    if (mark <= len) {
        if (start > 0)
            fl_out_put(o, "<span class=\"muted\">[earlier lines left out]</span>\n");
        text_n(o, t + start, mark - start);
        if (mark > 0 && t[mark - 1] != '\n')
            fl_out_put(o, "\n");
        fl_out_put(o,
                   "<b class=\"fail-mark\">&#9472;&#9472; the scenario failed here &#9472;&#9472;"
                   "</b>\n");
        text_n(o, t + mark, end - mark);
        if (end < len)
            fl_out_put(o, "<span class=\"muted\">[later lines left out]</span>");
    } else {
        text_n(o, t + start, end - start);
    }
    fl_out_put(o, "</pre></div>\n");
}

static void evidence(out_t *o, const fl_scenario_result_t *r, const fl_fault_iv_t *f, size_t nf)
{
    fl_out_put(o, "<div class=\"evidence\"><b>");
    text(o, r->message && *r->message ? r->message : "failed");
    fl_out_put(o, "</b>");
    if (r->where && *r->where) {
        fl_out_put(o, "<br>at <code>");
        text(o, r->where);
        fl_out_put(o, "</code>");
    }
    if (r->traceback && *r->traceback) {
        fl_out_put(o, "<pre class=\"traceback\">");
        text(o, r->traceback);
        fl_out_put(o, "</pre>");
    }
    size_t end = fl_text_failure_end(r);
    size_t begin = end > FL_TEXT_CONTEXT_EVENTS ? end - FL_TEXT_CONTEXT_EVENTS : 0;
    if (end > begin) {
        fl_out_put(o, "<div>What happened just before:</div>\n");
        event_table(o, r, begin, end);
    }
    if (end > 0 && end <= r->nevents) {
        uint64_t at = r->events[end - 1].t_ns;
        size_t on = 0;
        for (size_t i = 0; i < nf; i++)
            if (!f[i].instant && f[i].on_ns <= at && f[i].off_ns >= at) {
                fl_out_put(o, on++ ? ", " : "<div>Faults on at that moment: ");
                fault_label(o, &f[i]);
            }
        if (on)
            fl_out_put(o, "</div>\n");
    }
    fl_out_put(o, "</div>\n");
}

static void scenario_section(out_t *o, const fl_run_result_t *run, size_t idx)
{
    const fl_scenario_result_t *r = &run->scenarios[idx];
    int bad = failing(r->verdict);
    uint64_t end_ns = fl_derive_end_ns(r);
    fl_fault_iv_t *faults = NULL;
    fl_lane_t *lanes = NULL;
    size_t nfaults = 0, nlanes = 0;
    if (!o->rc)
        o->rc = fl_derive_faults(r, end_ns, &faults, &nfaults);
    if (!o->rc)
        o->rc = fl_derive_lanes(r, end_ns, &lanes, &nlanes);

    fl_out_putf(o, "<details class=\"scenario %s\" id=\"s-%zu\" data-verdict=\"%s\"",
                fl_verdict_name(r->verdict), idx + 1, fl_verdict_name(r->verdict));
    title_attr(o, r);
    fl_out_put(o, bad ? " open>" : ">");
    fl_out_put(o, "<summary>");
    verdict_badge(o, r->verdict);
    fl_out_put(o, " <h2>");
    text(o, r->file);
    fl_out_put(o, ": ");
    text(o, r->name);
    fl_out_put(o, "</h2> <span class=\"muted\">");
    secs(o, r->seconds, 3);
    fl_out_put(o, "s</span></summary>\n");
    if (r->topology) {
        fl_out_put(o, "<div class=\"muted\">topology: ");
        text(o, r->topology);
        fl_out_put(o, "</div>\n");
    }
    if (bad)
        evidence(o, r, faults, nfaults);
    else if (r->verdict == FL_VERDICT_SKIP) {
        fl_out_put(o, "<p>skipped");
        if (r->message) {
            fl_out_put(o, ": ");
            text(o, r->message);
        }
        fl_out_put(o, "</p>\n");
    }
    if (r->nevents || nlanes) {
        fl_out_put(o, "<h3>Timeline</h3>\n");
        timeline_svg(o, r, end_ns, faults, nfaults, lanes, nlanes);
    }
    load_charts(o, r, end_ns);
    fault_table(o, faults, nfaults);
    waterfalls(o, r);
    event_log(o, r, 0);
    if (r->nlogs) {
        fl_out_putf(o, "<details class=\"logs\"%s><summary>Instance logs (%zu)</summary>\n",
                    bad ? " open" : "", r->nlogs);
        for (size_t i = 0; i < r->nlogs; i++)
            log_excerpt(o, &r->logs[i], bad ? LOG_LINES_FAIL : LOG_LINES_PASS, bad);
        fl_out_put(o, "</details>\n");
    }
    fl_out_put(o, "</details>\n");
    free(faults);
    fl_derive_lanes_free(lanes, nlanes);
}

/* SVG coordinates go through printf's %g, which follows LC_NUMERIC: a scenario calling
 * os.setlocale("de_DE.UTF-8") would turn "12.5" into "12,5" and break every drawing. The
 * page is rendered under the C locale (for this thread only), whatever the process's is. */
static int render(const fl_run_result_t *run, fl_buf_t *out);

int fl_html_write_buf(const fl_run_result_t *run, fl_buf_t *out)
{
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    locale_t old = c ? uselocale(c) : (locale_t)0;
    int rc = render(run, out);
    if (c) {
        uselocale(old);
        freelocale(c);
    }
    return rc;
}

static int render(const fl_run_result_t *run, fl_buf_t *out)
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
    fl_out_put(&o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                   "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n");
    fl_out_putf(&o,
                "<title>faultline: %zu passed, %zu failed, %zu errors</title>\n<style>%s</style>"
                "</head>\n<body>\n",
                passed, failed, errors, css);
    fl_out_putf(&o,
                "<h1>faultline report</h1>\n<p id=\"totals\" class=\"%s\">%zu scenario%s: "
                "<b>%zu passed</b>, <b>%zu failed</b>, <b>%zu errors</b>, %zu skipped in ",
                failed + errors ? "bad" : "good", run->nscenarios, run->nscenarios == 1 ? "" : "s",
                passed, failed, errors, skipped);
    secs(&o, run->seconds, 1);
    fl_out_putf(&o, "s &middot; seed <code id=\"seed\">%llu</code> &middot; faultline ",
                (unsigned long long)run->seed);
    text(&o, run->version ? run->version : FL_VERSION);
    fl_out_put(&o, " &middot; started ");
    timestamp(&o, run->start_unix_ms);
    if (run->nshards)
        fl_out_putf(&o, " &middot; shard %u/%u", run->shard, run->nshards);
    fl_out_put(&o, "</p>\n<p class=\"muted\">Re-run with <code>--seed ");
    fl_out_putf(&o, "%llu</code> to repeat every random choice.</p>\n",
                (unsigned long long)run->seed);
    fl_out_put(&o,
               "<div id=\"controls\" hidden>show: <button data-mode=\"all\">all</button>"
               "<button data-mode=\"failed\">failures</button><button data-mode=\"pass\">passed"
               "</button><button data-mode=\"skip\">skipped</button> <input id=\"q\" "
               "type=\"search\" placeholder=\"filter by file or name\"> <button id=\"open-all\">"
               "expand all</button><button id=\"close-all\">collapse all</button></div>\n");
    summary_table(&o, run);
    mutants_table(&o, run);
    for (int g = 0; g < 3; g++)
        for (size_t i = 0; i < run->nscenarios; i++)
            if (rank(run->scenarios[i].verdict) == g)
                scenario_section(&o, run, i);
    fl_out_putf(&o, "<script>%s</script>\n</body></html>\n", script);
    if (o.rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return o.rc;
}

int fl_html_write(const fl_run_result_t *run, const char *path)
{
    fl_buf_t doc = FL_BUF_INIT;
    int rc = fl_html_write_buf(run, &doc);
    if (!rc)
        rc = fl_text_write_file(path, &doc);
    fl_buf_free(&doc);
    return rc;
}

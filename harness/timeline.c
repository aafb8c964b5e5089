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

int fl_timeline_add(fl_timeline_t *tl, fl_event_kind_t kind, int ok, const char *subject,
                    const char *where, const char *fmt, ...)
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
    va_list ap;
    va_start(ap, fmt);
    int rc = fl_buf_vprintf(&text, fmt, ap);
    va_end(ap);
    if (rc)
        return rc;
    fl_event_t *ev = &r->events[r->nevents];
    ev->t_ns = uv_hrtime() - tl->start_ns;
    ev->kind = kind;
    ev->ok = ok;
    ev->subject = dup_or_empty(subject);
    ev->where = dup_or_empty(where);
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
    free(r->events);
    free(r->logs);
    free(r->file);
    free(r->name);
    free(r->message);
    free(r->where);
    free(r->traceback);
}

void fl_run_result_free(fl_run_result_t *run)
{
    for (size_t i = 0; i < run->nscenarios; i++)
        scenario_free(&run->scenarios[i]);
    free(run->scenarios);
    run->scenarios = NULL;
    run->nscenarios = run->capscenarios = 0;
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

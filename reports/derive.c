/* Derived views of a timeline (derive.h). Everything here is recomputed from the events on
 * demand, so the timeline stays a plain append-only log and every writer sees the same
 * intervals and lanes. */
#include "reports/derive.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

int fl_fault_fired(const fl_fault_counts_t *c)
{
    return c->known && (c->chunks || c->bytes || c->resets || c->closes || c->refused);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

int fl_derive_faults(const fl_scenario_result_t *r, uint64_t end_ns, fl_fault_iv_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (size_t i = 0; i < r->nevents; i++) {
        const fl_event_t *ev = &r->events[i];
        if (ev->kind != FL_EV_FAULT)
            continue;
        if (ev->phase == FL_FAULT_OFF) { /* closes the open interval with its id */
            for (size_t k = *n; k > 0; k--) {
                fl_fault_iv_t *f = &(*out)[k - 1];
                if (f->open && !f->instant && f->id == ev->fault_id) {
                    f->open = 0;
                    f->off_ns = ev->t_ns;
                    f->end_text = str(ev->text);
                    f->counts = ev->counts;
                    break;
                }
            }
            continue; /* an OFF without an ON (a switch turned off twice) adds nothing */
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            fl_fault_iv_t *m = realloc(*out, cap * sizeof *m);
            if (!m) {
                free(*out);
                *out = NULL;
                *n = 0;
                return FL_ENOMEM;
            }
            *out = m;
        }
        fl_fault_iv_t *f = &(*out)[(*n)++];
        memset(f, 0, sizeof *f);
        f->id = ev->fault_id;
        f->subject = str(ev->subject);
        f->text = str(ev->text);
        f->where = str(ev->where);
        f->on_ns = ev->t_ns;
        f->on_event = i;
        f->instant = ev->phase != FL_FAULT_ON;
        f->open = ev->phase == FL_FAULT_ON;
        f->off_ns = f->instant ? ev->t_ns : end_ns;
        f->counts = ev->counts;
    }
    for (size_t k = 0; k < *n; k++)
        if ((*out)[k].open && (*out)[k].off_ns < (*out)[k].on_ns)
            (*out)[k].off_ns = (*out)[k].on_ns;
    return 0;
}

static int lane_push(fl_lane_t *l, uint64_t at, fl_proc_state_t st)
{
    if (l->nsegs && l->segs[l->nsegs - 1].state == st)
        return 0;
    if (l->nsegs && l->segs[l->nsegs - 1].from_ns == at) { /* two changes at one instant */
        l->segs[l->nsegs - 1].state = st;
        return 0;
    }
    fl_seg_t *s = realloc(l->segs, (l->nsegs + 1) * sizeof *s);
    if (!s)
        return FL_ENOMEM;
    l->segs = s;
    if (l->nsegs)
        s[l->nsegs - 1].to_ns = at;
    s[l->nsegs++] = (fl_seg_t){at, at, st};
    return 0;
}

static fl_lane_t *lane_find(fl_lane_t *lanes, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(lanes[i].instance, name) == 0)
            return &lanes[i];
    return NULL;
}

int fl_derive_lanes(const fl_scenario_result_t *r, uint64_t end_ns, fl_lane_t **out, size_t *n)
{
    fl_lane_t *lanes = NULL;
    size_t nl = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < r->nevents + r->nlogs; i++) {
        const fl_event_t *ev = i < r->nevents ? &r->events[i] : NULL;
        const char *name = ev ? str(ev->subject) : str(r->logs[i - r->nevents].instance);
        if ((ev && ev->kind != FL_EV_PROCESS) || !*name)
            continue;
        fl_lane_t *l = lane_find(lanes, nl, name);
        if (!l) {
            fl_lane_t *m = realloc(lanes, (nl + 1) * sizeof *m);
            if (!m) {
                rc = FL_ENOMEM;
                break;
            }
            lanes = m;
            l = &lanes[nl++];
            memset(l, 0, sizeof *l);
            l->instance = name;
            rc = lane_push(l, 0, FL_PS_DOWN);
        }
        if (!rc && ev && ev->state != FL_PS_NONE)
            rc = lane_push(l, ev->t_ns, ev->state);
    }
    for (size_t i = 0; i < nl; i++)
        if (lanes[i].nsegs) {
            fl_seg_t *last = &lanes[i].segs[lanes[i].nsegs - 1];
            last->to_ns = end_ns > last->from_ns ? end_ns : last->from_ns;
        }
    if (rc) {
        fl_derive_lanes_free(lanes, nl);
        lanes = NULL;
        nl = 0;
    }
    *out = lanes;
    *n = nl;
    return rc;
}

void fl_derive_lanes_free(fl_lane_t *lanes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lanes[i].segs);
    free(lanes);
}

const char *fl_derive_phase(const fl_scenario_result_t *r)
{
    const char *phase = "setup";
    for (size_t i = 0; i < r->nevents; i++) {
        const fl_event_t *ev = &r->events[i];
        if (ev->kind != FL_EV_NOTE || *str(ev->subject))
            continue;
        if (strcmp(str(ev->text), "scenario started") == 0)
            phase = "scenario";
        else if (strncmp(str(ev->text), "scenario ended", 14) == 0)
            phase = "teardown";
    }
    return phase;
}

uint64_t fl_derive_end_ns(const fl_scenario_result_t *r)
{
    double s = r->seconds > 0 && r->seconds < 1e9 ? r->seconds : 0;
    uint64_t end = (uint64_t)(s * 1e9);
    if (r->nevents && r->events[r->nevents - 1].t_ns > end)
        end = r->events[r->nevents - 1].t_ns;
    for (size_t i = 0; i < r->nseries; i++) {
        const fl_series_t *se = &r->series[i];
        if (se->nsamples && se->samples[se->nsamples - 1].t_ns + 1000000000ull > end)
            end = se->samples[se->nsamples - 1].t_ns + 1000000000ull;
    }
    for (size_t i = 0; i < r->nspans; i++)
        if (r->spans[i].start_ns + r->spans[i].duration_ns > end)
            end = r->spans[i].start_ns + r->spans[i].duration_ns;
    return end;
}

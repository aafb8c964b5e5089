/* What the report writers derive from a scenario's raw timeline (internal to reports/): fault
 * intervals from the paired fault events, each instance's lane of states from its process
 * events, the phase a running scenario is in. Pure functions over timeline.h's types. */
#ifndef FL_REPORTS_DERIVE_H
#define FL_REPORTS_DERIVE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/timeline.h"

/* One fault: on from on_ns to off_ns. Strings point into the scenario's events. */
typedef struct {
    uint64_t id;
    const char *subject, *text, *where; /* of the event that turned it on */
    const char *end_text;               /* of the event that turned it off, or NULL */
    uint64_t on_ns, off_ns;             /* off_ns: the end of the scenario when still on */
    int instant;                        /* FL_FAULT_ONCE (and untyped fault events) */
    int open;                           /* no OFF event came: on until the end */
    fl_fault_counts_t counts;           /* from the OFF event (known 0 when none) */
    size_t on_event;                    /* index of the event that turned it on */
} fl_fault_iv_t;

/* 1 when the counters say the fault did something (delayed, cut, reset, closed, refused). */
int fl_fault_fired(const fl_fault_counts_t *c);

/* The scenario's faults in the order they were turned on: ON/OFF pairs by id, instants, and
 * faults left on (off_ns = end_ns). Untyped fault events that only report (FL_FAULT_NONE with
 * a subject that names no open fault) become instants. *out is malloc'd (NULL when none);
 * returns 0 or FL_ENOMEM. end_ns: where open faults end (the scenario's length). */
int fl_derive_faults(const fl_scenario_result_t *r, uint64_t end_ns, fl_fault_iv_t **out,
                     size_t *n);

/* A stretch of one instance's life. */
typedef struct {
    uint64_t from_ns, to_ns;
    fl_proc_state_t state;
} fl_seg_t;

typedef struct {
    const char *instance; /* points into the events or logs */
    fl_seg_t *segs;       /* malloc'd, in time order; down before the first event */
    size_t nsegs;
} fl_lane_t;

/* One lane per instance named by a process event (in order of first appearance), then per
 * instance that only has a log. Returns 0 or FL_ENOMEM; free with fl_derive_lanes_free. */
int fl_derive_lanes(const fl_scenario_result_t *r, uint64_t end_ns, fl_lane_t **out, size_t *n);
void fl_derive_lanes_free(fl_lane_t *lanes, size_t n);

/* "setup", "scenario" or "teardown", from the engine's notes so far. */
const char *fl_derive_phase(const fl_scenario_result_t *r);

/* The scenario's length in ns: its wall time, or its last event or sample if later. */
uint64_t fl_derive_end_ns(const fl_scenario_result_t *r);

#endif

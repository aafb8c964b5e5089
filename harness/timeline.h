/* The timeline: every process event, fault, assertion and note of a scenario, timestamped,
 * plus the scenario's verdict and the instance logs kept for reports. These types are all
 * that reports/ may read (DESIGN.md "Layout"). */
#ifndef FL_TIMELINE_H
#define FL_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FL_EV_PROCESS, /* an instance started, became ready, exited, was signalled */
    FL_EV_FAULT,   /* a fault was injected or healed */
    FL_EV_ASSERT,  /* t:expect / t:assert / t:eventually / t:always, passed or failed */
    FL_EV_NOTE,    /* anything else worth a line: scenario phases, user notes */
} fl_event_kind_t;

typedef struct {
    uint64_t t_ns; /* since the scenario started */
    fl_event_kind_t kind;
    int ok;        /* FL_EV_ASSERT: 1 passed, 0 failed; otherwise 1 */
    char *subject; /* instance name, link name, or "" */
    char *text;    /* what happened, one line */
    char *where;   /* "file:line" of the Lua call that caused it, or "" */
} fl_event_t;

typedef enum {
    FL_VERDICT_PASS,
    FL_VERDICT_FAIL,  /* an assertion failed, or the scenario timed out */
    FL_VERDICT_ERROR, /* a Lua error: the scenario itself broke */
    FL_VERDICT_USAGE, /* misuse of the API (bad argument, unknown method): exit code 2 */
    FL_VERDICT_SKIP,
} fl_verdict_t;

typedef struct {
    char *instance; /* "users-2" */
    char *text;     /* the last bytes it printed (stdout and stderr interleaved); may hold NULs */
    size_t len;     /* of text (text[len] is a NUL too) */
    int truncated;  /* 1 when older output was dropped from the ring */
} fl_log_t;

typedef struct {
    char *file; /* scenario file as given on the command line */
    char *name; /* scenario name */
    fl_verdict_t verdict;
    double seconds;  /* wall time, setup and teardown included */
    char *message;   /* failure: the assertion or error message; else NULL */
    char *where;     /* failure: "file:line", or NULL */
    char *traceback; /* Lua errors: the traceback, or NULL */
    uint64_t start_unix_ms;
    fl_event_t *events;
    size_t nevents, capevents;
    fl_log_t *logs;
    size_t nlogs;
} fl_scenario_result_t;

typedef struct {
    uint64_t seed;
    const char *version;
    uint64_t start_unix_ms;
    double seconds;
    fl_scenario_result_t *scenarios;
    size_t nscenarios, capscenarios;
    size_t passed, failed, errors, skipped;
} fl_run_result_t;

/* A running scenario's timeline: events are appended to res with times relative to start. */
typedef struct {
    fl_scenario_result_t *res;
    uint64_t start_ns;                                 /* uv_hrtime() at scenario start */
    void (*on_event)(void *arg, const fl_event_t *ev); /* live echo (--verbose), or NULL */
    void *on_event_arg;
} fl_timeline_t;

/* Appends an event. Returns 0 or FL_ENOMEM. subject and where may be NULL. */
int fl_timeline_add(fl_timeline_t *tl, fl_event_kind_t kind, int ok, const char *subject,
                    const char *where, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Adds a new, zeroed scenario result to the run; returns it, or NULL on FL_ENOMEM. */
fl_scenario_result_t *fl_run_result_add(fl_run_result_t *run, const char *file, const char *name);
/* Frees a run result and everything in it. */
void fl_run_result_free(fl_run_result_t *run);
const char *fl_verdict_name(fl_verdict_t v);

#endif

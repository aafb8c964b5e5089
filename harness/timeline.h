/* The timeline: every process event, fault, assertion and note of a scenario, timestamped,
 * plus the scenario's verdict and the instance logs kept for reports; and what the load
 * generator and the trace collector measured (per-second samples, span summaries). These types
 * are all that reports/ may read (DESIGN.md "Layout"). */
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

/* FL_EV_PROCESS: the state an instance is in after the event, for the reports' lanes. */
typedef enum {
    FL_PS_NONE,     /* the event says nothing about the state */
    FL_PS_STARTING, /* spawned, not ready yet */
    FL_PS_UP,       /* ready */
    FL_PS_PAUSED,   /* SIGSTOP */
    FL_PS_DOWN,     /* exited (crash, stop, or on its own) */
} fl_proc_state_t;

/* FL_EV_FAULT: how the event bounds a fault interval. A fault is on from its FL_FAULT_ON
 * event to the FL_FAULT_OFF event with the same id (or to the end of the scenario when none
 * comes); FL_FAULT_ONCE is an instant fault (a crash, dropped connections). */
typedef enum {
    FL_FAULT_NONE, /* an untyped fault event (older callers): shown as an instant */
    FL_FAULT_ON,
    FL_FAULT_OFF,
    FL_FAULT_ONCE,
} fl_fault_phase_t;

/* What a fault did, summed over every link it was on (toxics count per connection). */
typedef struct {
    int known; /* 0: no counters for this fault (process and fake faults) */
    uint64_t connections, chunks, bytes, dropped, resets, closes, refused;
} fl_fault_counts_t;

typedef struct {
    uint64_t t_ns; /* since the scenario started */
    fl_event_kind_t kind;
    int ok;                   /* FL_EV_ASSERT: 1 passed, 0 failed; otherwise 1 */
    char *subject;            /* instance name, link name, or "" */
    char *text;               /* what happened, one line */
    char *where;              /* "file:line" of the Lua call that caused it, or "" */
    fl_proc_state_t state;    /* FL_EV_PROCESS */
    fl_fault_phase_t phase;   /* FL_EV_FAULT */
    uint64_t fault_id;        /* FL_EV_FAULT: pairs ON and OFF; 0 for none; unique per scenario */
    fl_fault_counts_t counts; /* FL_EV_FAULT, OFF (or ON left on at the end): what it did */
} fl_event_t;

/* One second of load (issue 8's generator): requests whose intended send time fell in
 * [t_ns, t_ns + 1s), how they ended, and their latency (from the intended send time). */
typedef struct {
    uint64_t t_ns; /* start of the second, since the scenario started */
    uint64_t sent, ok, errors;
    double p50_ms, p90_ms, p99_ms, max_ms;
} fl_sample_t;

/* The samples of one t:load, in time order. */
typedef struct {
    char *name; /* what the load targets ("gateway"), or its label */
    fl_sample_t *samples;
    size_t nsamples, capsamples;
} fl_series_t;

typedef enum {
    FL_SPAN_INTERNAL,
    FL_SPAN_SERVER,
    FL_SPAN_CLIENT,
    FL_SPAN_PRODUCER,
    FL_SPAN_CONSUMER,
} fl_span_kind_t;

typedef enum { FL_STATUS_UNSET, FL_STATUS_OK, FL_STATUS_ERROR } fl_span_status_t;

typedef struct {
    char *key, *value; /* attribute values as text: "3", "true", "users" */
} fl_attr_t;

/* One span as the collector (issue 8) summarises it for reports. Ids are lowercase hex as in
 * W3C traceparent: 32 digits for a trace, 16 for a span; parent_id "" for a root. */
typedef struct {
    char trace_id[33], span_id[17], parent_id[17];
    char *service;  /* service.name */
    char *instance; /* service.instance.id, or "" */
    char *name;
    fl_span_kind_t kind;
    uint64_t start_ns; /* since the scenario started (may precede it: 0 then) */
    uint64_t duration_ns;
    fl_span_status_t status;
    char *status_message; /* "" when none */
    unsigned attempt;     /* 1 for a first attempt, 2+ for retries (0: unknown) */
    fl_attr_t *attrs;     /* the attributes worth showing (retry counts, peer, code) */
    size_t nattrs;
} fl_span_t;

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
    int marked;     /* 1 when failure_at is known */
    size_t failure_at; /* offset in text of what it had printed when the scenario first failed */
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
    char *topology; /* "echo x3, client (needs echo)", or NULL */
    fl_series_t *series;
    size_t nseries;
    fl_span_t *spans;
    size_t nspans, capspans;
    char **catches; /* NULL-terminated: the mutants it claims to catch (catches = {...}), or NULL */
} fl_scenario_result_t;

/* Mutant mode (`faultline run --mutants`): one scenario run with FAULTLINE_BUG=<mutant>. */
typedef struct {
    char *file, *name;
    fl_verdict_t verdict; /* anything but pass: the mutant was caught */
    double seconds;
    int claimed;           /* the scenario's catches names the mutant */
    char *message, *where; /* what the scenario said when it caught it, or NULL */
} fl_mutant_run_t;

/* One mutant: the scenarios run against it, in the order they ran (claimed ones first). */
typedef struct {
    char *name;
    fl_mutant_run_t *runs;
    size_t nruns;
    double seconds;
    int caught;          /* a run did not pass */
    size_t caught_by;    /* when caught: the run that caught it (a failed check before an error) */
    int by_error;        /* ...and that run ended in a Lua or usage error, not a failed check */
    size_t false_claims; /* runs that claimed the mutant and passed */
} fl_mutant_result_t;

typedef struct {
    uint64_t seed;
    const char *version;
    uint64_t start_unix_ms;
    double seconds;
    fl_scenario_result_t *scenarios;
    size_t nscenarios, capscenarios;
    size_t passed, failed, errors, skipped;
    unsigned shard, nshards;     /* --shard I/N (1-based); 0/0 without */
    int mutant_mode;             /* --mutants: scenarios above are the baseline */
    fl_mutant_result_t *mutants; /* --mutants, once the baseline passed: one per mutant */
    size_t nmutants;
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
/* A process event that also sets the instance's state (fl_proc_state_t). */
int fl_timeline_process(fl_timeline_t *tl, const char *subject, fl_proc_state_t state,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A fault event: phase, id (pairs ON with OFF) and counters (NULL: none). */
int fl_timeline_fault(fl_timeline_t *tl, const char *subject, const char *where,
                      fl_fault_phase_t phase, uint64_t id, const fl_fault_counts_t *counts,
                      const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* The series named name of res, added empty when there is none yet; NULL on FL_ENOMEM. */
fl_series_t *fl_timeline_series(fl_scenario_result_t *res, const char *name);
/* Appends one sample; returns 0 or FL_ENOMEM. */
int fl_series_push(fl_series_t *s, const fl_sample_t *sample);
/* Appends a deep copy of span (its strings and attributes); returns 0 or FL_ENOMEM. */
int fl_timeline_span(fl_scenario_result_t *res, const fl_span_t *span);
/* Adds a new, zeroed scenario result to the run; returns it, or NULL on FL_ENOMEM. */
fl_scenario_result_t *fl_run_result_add(fl_run_result_t *run, const char *file, const char *name);
/* Adds a new, zeroed mutant to the run (name copied); NULL on FL_ENOMEM. */
fl_mutant_result_t *fl_run_result_add_mutant(fl_run_result_t *run, const char *name);
/* Appends a run of scenario r to m (file, name, verdict, seconds, message and where copied);
 * 0 or FL_ENOMEM. */
int fl_mutant_add_run(fl_mutant_result_t *m, const fl_scenario_result_t *r, int claimed);
/* 1 when every mutant was caught and every claim held. */
int fl_run_result_mutants_ok(const fl_run_result_t *run);
/* Frees a run result and everything in it. */
void fl_run_result_free(fl_run_result_t *run);
const char *fl_verdict_name(fl_verdict_t v);
/* "starting", "up", "paused", "down", or "" for FL_PS_NONE. */
const char *fl_proc_state_name(fl_proc_state_t s);
/* "on", "off", "once", or "" for FL_FAULT_NONE. */
const char *fl_fault_phase_name(fl_fault_phase_t p);
/* "internal", "server", "client", "producer", "consumer". */
const char *fl_span_kind_name(fl_span_kind_t k);
/* "unset", "ok", "error". */
const char *fl_span_status_name(fl_span_status_t s);

#endif

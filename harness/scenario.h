/* The running scenario as the Lua bindings see it: shared by engine.c (scenario
 * lifecycle, process control) and lua_links.c (links, toxics, partitions). Internal to the
 * harness. */
#ifndef FL_SCENARIO_H
#define FL_SCENARIO_H

#include <lua.h>
#include <stdint.h>
#include <uv.h>

#include "harness/engine.h"
#include "harness/link.h"
#include "harness/run.h"
#include "harness/supervisor.h"
#include "harness/timeline.h"
#include "harness/topology.h"
#include "lib/rng.h"

typedef enum { WAIT_NONE, WAIT_SLEEP, WAIT_READY, WAIT_DOWN, WAIT_EXTERNAL } wait_kind_t;

typedef struct {
    fl_link_t link;
    size_t client, server; /* instance indices; server == ninst: the fake broker */
} fl_sc_link_t;

typedef struct {
    char *name;
    char where[256];
    int fn_ref;
    uint64_t timeout_ns; /* 0: the run's --timeout */
    char *skip;          /* reason, or NULL */
    char **catches;      /* NULL-terminated: the mutants it claims to catch */
} scenario_decl_t;

typedef struct fl_scenario {
    fl_engine_t *e;
    scenario_decl_t *decl;
    fl_scenario_result_t *res;
    fl_timeline_t tl;
    fl_rng_t rng;
    lua_State *co;
    int co_ref, t_ref;
    fl_instance_t *inst;
    size_t ninst;
    fl_sc_link_t *links; /* one per (client instance, server instance) of every `needs` */
    size_t nlinks, links_left;
    void (*links_closed)(struct fl_scenario *sc);
    size_t closing_left; /* instances and links still closing at teardown */
    fl_rng_t link_rng;   /* toxicity draws, apart from t:random's sequence */
    long **counters;     /* shared `first` counters of multi-link toxics */
    size_t ncounters;
    struct fl_consul *consul;        /* the fake Consul, or NULL */
    struct fl_consul_agent **agents; /* one per instance */
    void (*consul_closed)(struct fl_scenario *sc);
    struct broker *broker; /* the fake AMQP broker, or NULL; links name it as server ninst */
    char broker_host[32];
    void (*broker_closed)(struct fl_scenario *sc);
    struct fl_collector *collector;  /* the OTLP receiver and trace store */
    struct fl_sc_workload *workload; /* t:load generators and t:http / t:grpc calls, or NULL */
    enum { SC_RUNNING, SC_STOPPING, SC_CLOSING } phase;
    int in_resume;
    uv_timer_t wake;     /* sleeps and wait timeouts */
    uv_timer_t deadline; /* the scenario's timeout */
    uv_timer_t bg;       /* the prelude's background tasks (the nemesis): C.wake_at */
    int timers_open;
    int in_background;  /* running a background task: waits end only once it returns */
    char bg_where[256]; /* ...and the line that started it, for the timeline */
    struct {
        wait_kind_t kind;
        fl_instance_t *inst;
        char prefix[32];
        uint64_t timeout_ns;
        void *ext; /* WAIT_EXTERNAL: what the scenario waits for (fl_sc_wait_external) */
    } wait;
    int nfailed;
    uint64_t *fail_marks;   /* per instance: its log's total bytes when the scenario first failed */
    uint64_t next_fault_id; /* the last fault id handed out (ids start at 1) */
    struct {
        char key[32];
        uint64_t id;
    } switches[16]; /* the fakes' switchable faults that are on, by key ("consul:down") */
    size_t nswitches;
    uint64_t start_ns;
    uint64_t body_ns; /* when the scenario function began, after setup (since start_ns) */
    void (*done)(void *);
    void *done_arg;
} fl_scenario_t;

struct fl_engine {
    fl_run_t *run;
    lua_State *L;
    char *path;
    fl_topology_t topo;
    scenario_decl_t *decls;
    size_t ndecls;
    fl_scenario_t *cur;   /* the running scenario, or NULL */
    unsigned gen;         /* bumped per scenario: stale t / instance handles are refused */
    uint64_t deadline_ns; /* for the instruction hook; 0 = none */
    int hook_fired;       /* the hook stopped Lua code past the deadline */
    char hook_where[256]; /* ...there */
};

typedef struct {
    fl_engine_t *e;
    unsigned gen;
} t_box_t;

typedef struct {
    fl_engine_t *e;
    unsigned gen;
    size_t idx;
} inst_box_t;

/* The running scenario of t at idx; usage error if it is not t or its scenario ended. */
fl_scenario_t *fl_sc_check_t(lua_State *L, int idx);
/* An instance argument (handle or "name"); usage error naming what otherwise. */
fl_instance_t *fl_sc_check_inst(lua_State *L, int idx, const char *what);
/* A service name argument; usage error "WHAT: no service named 'x'" (with a suggestion)
 * otherwise. */
fl_service_t *fl_sc_check_service(lua_State *L, fl_engine_t *e, int idx, const char *what);
/* The user's file:line; when no user frame is on the stack, the line that started the running
 * background task, else the scenario's declaration. */
void fl_sc_where(lua_State *L, fl_scenario_t *sc, char *out, size_t n);

/* The fault phase at idx: "on", "off", "once" or nil (FL_FAULT_ONCE); usage error otherwise. */
fl_fault_phase_t fl_sc_check_phase(lua_State *L, int idx);
/* A new fault id for the scenario's timeline. */
uint64_t fl_sc_fault_id(fl_scenario_t *sc);
/* A fault of a fake that is switched on and off (t.consul:down(), t.broker:delay(d)), on the
 * timeline as an interval: on opens one under key (closing the one already open under that key
 * first, as when a delay changes), !on closes it; text describes the change. */
void fl_sc_fault_switch(fl_scenario_t *sc, const char *subject, const char *key, int on,
                        const char *where, const char *text);

/* Yields the scenario coroutine until fl_sc_wake(sc, token) (or the scenario ends); then k
 * runs with ctx. A usage error outside the scenario's own coroutine. */
int fl_sc_wait_external(lua_State *L, fl_scenario_t *sc, void *token, lua_KFunction k,
                        lua_KContext ctx);
/* Resumes the scenario, from a later loop callback, if it waits for token; else nothing. */
void fl_sc_wake(fl_scenario_t *sc, void *token);
/* Ends the running scenario from a loop callback (Lua code the harness called for it broke:
 * a load's request function): the verdict, message and where as a Lua error in the scenario
 * itself would give; its coroutine is abandoned. Nothing when the scenario is not running. */
void fl_sc_abort(fl_scenario_t *sc, fl_verdict_t v, const char *where, const char *msg,
                 const char *traceback);

/* Pushes the Lua handle of an instance of the running scenario. */
void fl_sc_push_inst(lua_State *L, fl_scenario_t *sc, fl_instance_t *inst);

/* lua_consul.c: the fake Consul of a scenario, when the topology uses it (agents are added
 * for every instance); 0 or an FL_E code. */
int fl_sc_consul_open(fl_scenario_t *sc);
/* For ready = "healthy": 1 once inst's own registration of its service passes every check
 * (an fl_instance_t ready_check; arg is the scenario). */
int fl_sc_consul_ready(fl_instance_t *inst, void *arg);
/* CONSUL_HTTP_ADDR of instance i ("" without Consul) into out. */
void fl_sc_consul_addr(fl_scenario_t *sc, size_t i, char *out, size_t n);
/* Closes the fake; cb(sc) once it is closed (at once without one). */
void fl_sc_consul_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc));
/* Adds the Consul primitives to the table at the top of the stack. */
void fl_sc_consul_register(lua_State *L);

/* lua_broker.c: the fake broker of a scenario, when the topology uses it; opened before the
 * links (each instance gets one to it). 0 or an FL_E code. */
int fl_sc_broker_open(fl_scenario_t *sc);
int fl_sc_broker_port(fl_scenario_t *sc);
/* AMQP_URL of instance i ("" without a broker) into out. */
void fl_sc_broker_url(fl_scenario_t *sc, size_t i, char *out, size_t n);
/* Closes the fake; cb(sc) once it is closed (at once without one). */
void fl_sc_broker_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc));
/* Adds the broker primitives to the table at the top of the stack. */
void fl_sc_broker_register(lua_State *L);

/* collector.c: the scenario's OTLP/HTTP receiver and trace store; 0 or an FL_E code (on
 * failure it must still be closed). */
typedef struct fl_collector fl_collector_t;
int fl_sc_collector_open(fl_scenario_t *sc);
/* OTEL_EXPORTER_OTLP_ENDPOINT ("http://host:port", "" without a collector) into out. */
void fl_sc_collector_endpoint(fl_scenario_t *sc, char *out, size_t n);
/* Closes the receiver and frees the store (the spans stay in the result); cb(sc) once closed. */
void fl_sc_collector_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc));
/* Adds the collector primitives (traces, collector) to the table at the top of the stack. */
void fl_sc_collector_register(lua_State *L);
/* The trace store: how many traces it holds, and trace i's id and spans (*n indices into
 * sc->res->spans, in arrival order). */
size_t fl_sc_collector_ntraces(fl_scenario_t *sc);
const char *fl_sc_collector_trace(fl_scenario_t *sc, size_t i, const size_t **spans, size_t *n);

/* checks.c: adds the check primitives (distribution, balance, trace_check, discovery) to the
 * table at the top of the stack. */
void fl_sc_checks_register(lua_State *L);

/* lua_load.c: t:load, t:http, t:grpc, t.pb. Stops every load and abandons every call at the
 * end of the scenario (before its instances stop); closes every connection at teardown,
 * cb(sc) once that is done (at once when there is nothing to close). */
void fl_sc_workload_stop(fl_scenario_t *sc);
void fl_sc_workload_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc));
/* Adds the workload primitives to the table at the top of the stack. */
void fl_sc_workload_register(lua_State *L);
/* lua_pb.c: pushes the table of t.pb (encode, decode). */
void fl_sc_pb_push(lua_State *L);

/* lua_links.c: opens the scenario's links (before instances start, so the wiring can name
 * them); 0 or an FL_E / libuv error code. */
int fl_sc_links_open(fl_scenario_t *sc);
/* The link addresses from client instance ci to the instances of service, as
 * "host:port,host:port" into out. */
void fl_sc_links_addr(fl_scenario_t *sc, size_t ci, const char *service, char *out, size_t n);
/* Closes every link; cb(sc) once each is closed. */
void fl_sc_links_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc));
/* Adds the link primitives to the table at the top of the stack. */
void fl_sc_links_register(lua_State *L);

#endif

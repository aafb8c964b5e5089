/* What the files of the fake Consul share, and nobody else sees.
 *
 * The catalog is a state_t: vectors of records (nodes, services, checks, KV entries and a few
 * index marks). Records are reference counted and never change once they are in a state;
 * a write replaces a record by a new one. That makes a snapshot cheap (copy the vectors,
 * take a reference on every record), which is how the history behind stale answers is kept:
 * before each write the live state is copied into a bounded ring.
 *
 * Requests: every agent is an lib/httpd server; agent.c routes each request to a handler
 * (agent_api.c, health.c, kv.c) through a ctx_t, which collects the answer and sends it with
 * Consul's headers. A request that outlives its handler (a blocking query, an answer held
 * back by the latency fault, a write held while frozen) becomes a req_t with a timer.
 * Checks the fake runs are runner_t (checks.c). */
#ifndef FL_CONSUL_INTERNAL_H
#define FL_CONSUL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "fakes/consul/consul.h"
#include "lib/buf.h"
#include "lib/httpd.h"
#include "lib/rng.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define CONSUL_VERSION "1.16.0"
#define SERF_CHECK_ID "serfHealth"
#define KV_MAX_VALUE (512 * 1024) /* Consul's kv_max_value_size default */
#define HISTORY_MAX 1024          /* snapshots kept for stale answers */
#define MAX_BODY (8 * 1024 * 1024)

enum { ST_PASSING, ST_WARNING, ST_CRITICAL };
const char *status_name(int st);
/* The status called s ("passing", "warning", "critical"), or -1. */
int status_parse(const char *s);

/* ------------------------------------------------------------ records (catalog.c) ---- */

typedef struct rec rec_t;
struct rec {
    int refs;
    void (*destroy)(rec_t *r);
};
void *rec_ref(void *r);
void rec_unref(void *r);

typedef struct {
    void **v;
    size_t n, cap;
} vec_t;
int vec_push(vec_t *v, void *p);
void vec_remove(vec_t *v, size_t i);

typedef struct {
    rec_t rec;
    char *name, *address, *id;
    int agent; /* an agent's own node: it has the serfHealth check */
    uint64_t create_index, modify_index;
} node_t;

typedef struct {
    rec_t rec;
    char *node, *id, *name, *address, *kind;
    char **tags;
    size_t ntags;
    json_t *meta; /* object of strings, or NULL */
    int port, weight_passing, weight_warning, enable_tag_override;
    int local; /* registered through the node's own agent */
    uint64_t create_index, modify_index;
} svc_t;

/* How a check is run: shared by the successive versions of one check. */
typedef struct {
    rec_t rec;
    char *http, *method, *body, *tcp, *grpc, *udp, *tls_server_name, *type;
    json_t *header; /* object of arrays of strings, or NULL */
    int tls_skip_verify, grpc_use_tls, script;
    uint64_t interval, timeout, ttl, dereg_after; /* ns */
} checkdef_t;

typedef struct {
    rec_t rec;
    char *node, *id, *name, *notes, *output, *service_id, *service_name;
    int status;
    int local;       /* registered through the node's own agent */
    checkdef_t *def; /* never NULL */
    uint64_t create_index, modify_index;
} check_t;

typedef struct {
    rec_t rec;
    char *key;
    char *value; /* NULL when empty */
    size_t len;
    uint64_t flags, lock_index, create_index, modify_index;
} kv_t;

/* A name with an index: a service name's last change, or a deleted KV key (a tombstone). */
typedef struct {
    rec_t rec;
    char *name;
    uint64_t index;
} mark_t;

typedef struct {
    uint64_t index; /* the raft index: that of the last write */
    uint64_t nodes_index, services_index, checks_index, kv_index, extinction_index;
    vec_t nodes, svcs, checks, kv, tombs, svcidx; /* kv sorted by key; the rest unordered */
    uint64_t since;                               /* uv_hrtime() when this became current */
} state_t;

node_t *node_new(const char *name, const char *address);
svc_t *svc_new(void);
check_t *check_new(void);
check_t *check_copy(const check_t *k);
checkdef_t *checkdef_new(void);
kv_t *kv_new(const char *key, const void *value, size_t len);
mark_t *mark_new(const char *name, uint64_t index);
char *xstrdup(const char *s); /* NULL stays NULL */
/* A copy of s cut to at most max bytes (check outputs are bounded). NULL on FL_ENOMEM. */
char *strdup_max(const char *s, size_t max);

/* Lookups (any state). Return the index in the vector, or -1. */
long find_node(const state_t *st, const char *name);
long find_svc(const state_t *st, const char *node, const char *id);
long find_check(const state_t *st, const char *node, const char *id);
/* The index a query about service `name` answers with (Consul's maxIndexForService: the
 * service's own index, or for a missing one the last extinction, else the tables' highest). */
uint64_t service_index(const state_t *st, const char *name);
/* What wakes a blocking query about service `name`: its own last change, 0 if it never had
 * one. Unlike the answered index it does not move with unrelated writes, just as Consul's
 * watch on that service does not fire for them. */
uint64_t service_wake_index(const state_t *st, const char *name);
/* 1 when every check of service instance s (and of its node) is passing. */
int svc_passing(const state_t *st, const svc_t *s);
/* 1 when s carries every tag (case-insensitively, as Consul's tag filter). */
int svc_tags_match(const svc_t *s, char **tags, size_t ntags);

/* Writes (catalog.c). A write is cat_begin (snapshots the live state into the history and
 * takes the next index), changes made with that index, then cat_end (wakes blocking queries).
 * These return 0 or FL_ENOMEM. */
uint64_t cat_begin(fl_consul_t *c);
void cat_end(fl_consul_t *c);
int cat_put_node(fl_consul_t *c, uint64_t idx, node_t *n); /* takes n */
int cat_put_svc(fl_consul_t *c, uint64_t idx, svc_t *s);   /* takes s */
void cat_del_svc(fl_consul_t *c, uint64_t idx, const char *node, const char *id);
int cat_put_check(fl_consul_t *c, uint64_t idx, check_t *k); /* takes k */
void cat_del_check(fl_consul_t *c, uint64_t idx, const char *node, const char *id);
void cat_del_node(fl_consul_t *c, uint64_t idx, const char *node);
/* Sets a check's status and output: a status change is a write (index, wake-up, event); an
 * output change alone is not (Consul syncs those lazily too). Returns 1 when the status
 * changed, 0 when not (or no such check), FL_ENOMEM. */
int cat_set_check(fl_consul_t *c, const char *node, const char *id, int status, const char *output);
void cat_bump_kv(fl_consul_t *c, uint64_t idx);

state_t *state_new(void);
state_t *state_clone(const state_t *st);
void state_free(state_t *st);
/* The state answers should describe now: the live one, or the snapshot `stale` ago. */
const state_t *cat_view(const fl_consul_t *c);
/* When the stale view next changes without a write (uv_hrtime ns), or 0 for never. */
uint64_t cat_view_next_change(const fl_consul_t *c);
void history_clear(fl_consul_t *c);

/* ------------------------------------------------------------ Go compatibility (gojson.c) ---- */

/* Parses a request body as Go's json.Decoder does (the first value; what follows is ignored).
 * On a syntax error returns NULL and writes Go's message ("EOF", "invalid character 'x'
 * looking for beginning of value", ...) into err. */
json_t *go_json_parse(const char *body, size_t len, fl_buf_t *err);

/* Reading a JSON object as Go decodes it into a struct: fields match exactly or else
 * case-insensitively (the last one wins); null or absent leaves the output untouched; a value
 * of the wrong type leaves it untouched too and records Go's UnmarshalTypeError (the first
 * one only) in err, naming the struct st. */
typedef struct {
    fl_buf_t err;
    const char *st; /* the Go struct name in messages */
} godec_t;
const json_t *go_field(const json_t *obj, const char *name);
void go_string(godec_t *d, const json_t *obj, const char *field, const char **out);
void go_int(godec_t *d, const json_t *obj, const char *field, long long *out);
void go_bool(godec_t *d, const json_t *obj, const char *field, int *out);
/* []string: *out gets a new reference to the array */
void go_strings(godec_t *d, const json_t *obj, const char *field, json_t **out);
/* map[string]string: *out gets a new reference to the object */
void go_strmap(godec_t *d, const json_t *obj, const char *field, json_t **out);
/* map[string][]string */
void go_strsmap(godec_t *d, const json_t *obj, const char *field, json_t **out);
/* A nested struct: *out points at the object (borrowed), or stays NULL. */
void go_object(godec_t *d, const json_t *obj, const char *field, const char *type,
               const json_t **out);
/* Consul's durations in checks: a Go duration string, or a number of nanoseconds; another type
 * is ignored. A bad string records "time: invalid duration ..." and returns -1. */
int go_duration_field(godec_t *d, const json_t *obj, const char *field, long long *ns);
/* Records Go's message for a top-level value that is not an object. */
void go_expect_object(godec_t *d, const json_t *v, const char *type);

/* A JSON string of the n bytes at s as Go's encoder writes a string: each byte that is not
 * part of valid UTF-8 becomes U+FFFD (jansson refuses such strings). For what comes from
 * outside JSON: KV keys, query values, check outputs. NULL on FL_ENOMEM. */
json_t *go_json_stringn(const char *s, size_t n);

/* time.ParseDuration: 0, or -1 with Go's message in err (if not NULL). */
int go_parse_duration(const char *s, long long *ns, fl_buf_t *err);
/* time.Duration.String(): "1m30s", "1.5s", "250ms", "0s"; out has room for 40 bytes. */
void go_duration_string(long long ns, char *out);
/* strconv.ParseUint(s, 10, 64): 0, or -1 with Go's message in err. */
int go_parse_uint(const char *s, unsigned long long *out, fl_buf_t *err);
/* strconv.ParseBool */
int go_parse_bool(const char *s, int *out);

/* ------------------------------------------------------------ agents and requests (agent.c) ----
 */

struct fl_consul_agent {
    fl_consul_t *c;
    fl_consul_agent_t *next;
    char *node, *host;
    int port;
    fl_httpd_t *httpd; /* NULL while down */
};

typedef struct ctx ctx_t;

typedef struct {
    const char *path;    /* "/v1/agent/services"; ending in '/': a prefix, the rest is the arg */
    const char *methods; /* "GET", "PUT", "GET,PUT,DELETE" */
    /* Blocking reads: what decides that the query wakes (0), or -1 after answering an error
     * itself. It is the index the query answers with, except for things that do not exist,
     * whose answered index moves with every write while their watch does not. NULL for
     * endpoints that never block. Only GET requests block. */
    int (*index)(ctx_t *x, uint64_t *idx);
    void (*handle)(ctx_t *x);
} route_t;

struct ctx {
    fl_consul_t *c;
    fl_consul_agent_t *a;
    /* NULL for a request served synchronously (fl_consul_serve): it is never held or parked,
     * and ctx_send leaves its answer in the ctx */
    fl_httpd_exchange_t *ex;
    const route_t *route;
    const state_t *st; /* what reads describe: live or stale */
    const char *method;
    const char *query;    /* as received, "" when none */
    const char *req_body; /* req_len bytes, not NUL-terminated */
    size_t req_len;
    char *arg; /* the decoded path after the route's prefix, "" when none */
    /* the answer */
    int status;
    fl_buf_t body;
    fl_buf_t headers;
    const char *ctype;
    uint64_t index; /* X-Consul-Index; 0: the view's index */
    int answered;
};

/* Answers (agent.c). The body of reply_json is compact JSON, indented with ?pretty. */
void reply_json(ctx_t *x, int status, json_t *j); /* steals j; NULL: out of memory (500) */
void reply_text(ctx_t *x, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void reply_empty(ctx_t *x); /* 200 with no body, as Consul's writes */
void reply_bool(ctx_t *x, int value);
/* Query parameters: the decoded value of the first `name` (0) or FL_ENOTFOUND; has: 1 when
 * present at all (even "?passing"). */
int q_get(ctx_t *x, const char *name, char *buf, size_t len);
int q_has(ctx_t *x, const char *name);
/* Every value of `name`, decoded, as a new array of strings (NULL on FL_ENOMEM). They are the
 * bytes sent, not checked for UTF-8: for comparing, not for answers. */
json_t *q_all(ctx_t *x, const char *name);
/* The query as Go's url.Values.Encode() writes it: sorted by key, escaped. */
int q_encode(ctx_t *x, fl_buf_t *out);
/* Checks ?dc=; answers Consul's error and returns -1 for another datacenter. */
int check_dc(ctx_t *x);
/* Parses a request body as Go would; answers "Request decode failed: ..." and returns NULL. */
json_t *decode_body(ctx_t *x, const char *go_type);

/* Runs a request through its route now (first arrival, or a held write replayed). */
void ctx_run(fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex);
/* Sends x's answer, late when the latency fault says so; without an exchange it only completes
 * the answer (Consul's headers) and leaves it in x. */
void ctx_send(ctx_t *x);
/* Completes x's answer with Consul's headers, without sending it. */
void ctx_finish(ctx_t *x);
void ctx_free(ctx_t *x);
/* Fills x for the request of exchange ex. Returns 0, FL_ENOMEM or FL_EMALFORMED (a path that
 * does not decode); x is to be freed with ctx_free in every case. */
int ctx_init(ctx_t *x, fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex);

int agent_listen(fl_consul_agent_t *a);
void agent_stop(fl_consul_agent_t *a);
fl_consul_agent_t *agent_named(fl_consul_t *c, const char *node);

/* A request held beyond its handler. Its timer is the blocking deadline or the latency delay;
 * it is freed in the timer's close callback. */
enum { REQ_WAIT, REQ_DELAY, REQ_FROZEN };
typedef struct req req_t;
struct req {
    uv_timer_t timer;
    fl_consul_t *c;
    fl_consul_agent_t *a;
    fl_httpd_exchange_t *ex; /* NULL once answered or gone */
    req_t *prev, *next;
    int kind;
    const route_t *route; /* REQ_WAIT: the query to evaluate again */
    uint64_t min_index;
    /* REQ_WAIT: what the answer depends on besides the agent and route (the path and the
     * query without index and wait), and its hash: waiters with equal ones share an answer */
    char *share_key;
    uint64_t share_hash;
    int expired; /* the wait is over (while frozen, it waits for the thaw) */
    /* REQ_DELAY: the answer to send */
    int status;
    fl_buf_t body, headers;
    const char *ctype;
};
req_t *req_new(fl_consul_t *c, fl_consul_agent_t *a, fl_httpd_exchange_t *ex, int kind);
void req_link(req_t **list, req_t *r);
void req_unlink(req_t **list, req_t *r);
void req_release(req_t *r); /* unlinks it from its list and closes it */
/* Takes r's exchange away from it, to answer it elsewhere (NULL when it has none). */
fl_httpd_exchange_t *req_detach(req_t *r);

/* ------------------------------------------------------------ blocking queries (blocking.c) ----
 */

/* Answers x through its route, or parks it as a blocking query. */
void blocking_run(ctx_t *x);
/* Re-evaluates parked queries on the next loop iteration (after a write). */
void blocking_kick(fl_consul_t *c);
/* Answers the waiters whose wait ended while frozen, and re-evaluates all (after a thaw). */
void blocking_thaw(fl_consul_t *c);
void blocking_update_stale_timer(fl_consul_t *c);

/* ------------------------------------------------------------ endpoints ---- */

extern const route_t fl_consul_routes[];
/* agent_api.c */
void agent_self(ctx_t *x);
void agent_members(ctx_t *x);
void agent_services(ctx_t *x);
void agent_service(ctx_t *x);
void agent_checks(ctx_t *x);
void agent_service_register(ctx_t *x);
void agent_service_deregister(ctx_t *x);
void agent_check_register(ctx_t *x);
void agent_check_deregister(ctx_t *x);
void agent_check_pass(ctx_t *x);
void agent_check_warn(ctx_t *x);
void agent_check_fail(ctx_t *x);
void agent_check_update(ctx_t *x);
/* Removes a service of agent node and its checks and runners, as one write. */
void agent_remove_service(fl_consul_t *c, const char *node, const char *id, const char *why);
/* health.c */
int health_service_index(ctx_t *x, uint64_t *idx);
void health_service(ctx_t *x);
int health_checks_index(ctx_t *x, uint64_t *idx);
void health_checks(ctx_t *x);
int checks_table_index(ctx_t *x, uint64_t *idx);
void health_state(ctx_t *x);
void health_node(ctx_t *x);
int catalog_services_index(ctx_t *x, uint64_t *idx);
void catalog_services(ctx_t *x);
int catalog_service_index(ctx_t *x, uint64_t *idx);
void catalog_service(ctx_t *x);
int catalog_nodes_index(ctx_t *x, uint64_t *idx);
void catalog_nodes(ctx_t *x);
int catalog_node_index(ctx_t *x, uint64_t *idx);
void catalog_node(ctx_t *x);
void catalog_datacenters(ctx_t *x);
void catalog_register(ctx_t *x);
void catalog_deregister(ctx_t *x);
void status_leader(ctx_t *x);
void status_peers(ctx_t *x);
/* The health answer for service as node sees it (health/service/<service>, rewritten). */
json_t *health_entries(fl_consul_t *c, const state_t *st, const char *node, const char *service,
                       int passing, json_t *tags);
/* kv.c */
int kv_index(ctx_t *x, uint64_t *idx);
void kv_endpoint(ctx_t *x);

/* render.c: Consul's JSON shapes */
json_t *r_node(const fl_consul_t *c, const node_t *n);
json_t *r_node_service(const svc_t *s, const char *addr, int port); /* structs.NodeService */
json_t *r_agent_service(const fl_consul_t *c, const svc_t *s);      /* api.AgentService */
json_t *r_check(const state_t *st, const check_t *k);               /* structs.HealthCheck */
json_t *r_service_node(const fl_consul_t *c, const node_t *n, const svc_t *s, const char *addr,
                       int port); /* structs.ServiceNode */
json_t *r_strings(char **v, size_t n);
json_t *r_member(const fl_consul_t *c, const fl_consul_agent_t *a);

/* ------------------------------------------------------------ checks (checks.c) ---- */

typedef struct runner runner_t;
/* Starts running check k of agent node (k already in the catalog). Returns 0 or FL_ENOMEM. */
int runner_start(fl_consul_t *c, const check_t *k);
/* Stops the runner of that check, if any. */
void runner_stop(fl_consul_t *c, const char *node, const char *check_id);
/* Stops the runners of every check of that service instance. */
void runners_stop_service(fl_consul_t *c, const char *node, const char *service_id);
/* 1 when the check is a TTL check of this fake. */
int runner_is_ttl(fl_consul_t *c, const char *node, const char *check_id);
/* A TTL check's update (pass/warn/fail/update): resets its TTL. */
void runner_ttl_update(fl_consul_t *c, const char *node, const char *check_id, int status,
                       const char *output);
/* Re-applies every check's own status (flap, freeze end). */
void runners_resync(fl_consul_t *c);
void runners_close(fl_consul_t *c);
int flap_set(fl_consul_t *c, const char *service, uint64_t period_ns);
void flaps_close(fl_consul_t *c);
/* The status flap imposes on service's checks now, or -1 when it is not flapping. */
int flap_status(const fl_consul_t *c, const char *service);

/* ------------------------------------------------------------ the fake ---- */

typedef struct flap flap_t;

/* Recent health/service answers (the hot path of discovery), by what they depend on. */
#define HCACHE_SLOTS 32
typedef struct {
    uint64_t index; /* of the state they describe */
    char *key;      /* asker, service, passing, tags, pretty */
    char *rewrites; /* what cfg.rewrite said for every instance when it was made */
    fl_buf_t body;
} hcache_t;
void health_cache_clear(fl_consul_t *c);

/* The last health/service answer each agent served about each service (consul.h
 * fl_consul_last_served): a short list, agents x services asked about. */
typedef struct {
    char *node, *service;
    uint64_t index, at_ns, answers;
    int passing;
    char **ids, **nodes;
    size_t nids;
} served_t;
/* Records the answer x (a health/service query over HTTP) is about to serve: the instances
 * in v, n of them. */
void served_record(ctx_t *x, int passing, const svc_t *const *v, size_t n);
void served_clear(fl_consul_t *c);

struct fl_consul {
    uv_loop_t *loop;
    fl_consul_config_t cfg;
    char dc[64];
    fl_rng_t rng;
    state_t *live;
    state_t *hist[HISTORY_MAX]; /* oldest first, from hist_start, hist_len of them */
    size_t hist_start, hist_len;
    fl_consul_agent_t *agents;
    req_t *waiters, *delayed, *held; /* held: writes waiting for the thaw, oldest first */
    size_t nwaiters;                 /* on the waiters list */
    runner_t *runners;
    flap_t *flaps;
    uv_timer_t wake;        /* re-evaluates waiters on the next loop iteration */
    uv_timer_t stale_timer; /* when the stale view moves on by itself */
    int wake_pending;
    int down, frozen;
    uint64_t latency_ns, stale_ns;
    hcache_t hcache[HCACHE_SLOTS];
    size_t hcache_next;
    served_t *served;
    size_t nserved;
    int handles; /* our open libuv handles and servers */
    int closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

void consul_event(fl_consul_t *c, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void consul_handle_closed(uv_handle_t *h); /* close callback for handles owned by c */
void consul_maybe_closed(fl_consul_t *c);
/* Applies cfg.rewrite: addr:port as node should see it. */
void consul_rewrite(const fl_consul_t *c, const char *node, const char *addr, int port,
                    char *out_addr, size_t out_len, int *out_port);
/* A fresh UUID from the seeded generator. */
void consul_uuid(fl_consul_t *c, char out[37]);

#endif

/* The fake Consul: one catalog shared by many agents, each agent an HTTP server on its own
 * address, so the fake knows which node is asking. It serves the subset of Consul's HTTP
 * API that service libraries use, byte-compatible where clients look (DESIGN.md "Fakes"),
 * runs the health checks services register, answers blocking queries, and can be broken on
 * purpose (down, latency, freeze, stale answers, flapping checks).
 *
 * It uses only lib/. The harness ties it in through the config: `rewrite` turns the
 * address of a service instance into the address the asking node should use (its link to
 * that instance), and `on_event` reports what happened for the timeline. */
#ifndef FL_CONSUL_H
#define FL_CONSUL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct fl_consul fl_consul_t;
typedef struct fl_consul_agent fl_consul_agent_t;

typedef struct {
    const char *datacenter; /* "dc1" when NULL */
    uint64_t seed;          /* jitter of blocking queries, flapping */
    /* Rewrites addr:port, a service instance's address as registered, into what node should
     * be told (its link to that instance). Returns 1 and fills out_addr/out_port when it
     * rewrote, 0 to answer the address as registered. NULL: never rewrite. */
    int (*rewrite)(void *arg, const char *node, const char *addr, int port, char *out_addr,
                   size_t out_len, int *out_port);
    void *rewrite_arg;
    /* One line for the timeline: a registration, a check changing status, a fault. node is
     * "" for the catalog as a whole. NULL: no events. */
    void (*on_event)(void *arg, const char *node, const char *text);
    void *event_arg;
} fl_consul_config_t;

/* Creates an empty catalog (cfg may be NULL). Returns 0, FL_EINVAL (no loop, a datacenter name
 * of 64 bytes or more) or FL_ENOMEM. */
int fl_consul_new(uv_loop_t *loop, const fl_consul_config_t *cfg, fl_consul_t **out);
/* Adds an agent for node `node` listening on host:port (0 picks a port). Returns 0,
 * FL_EEXISTS (node taken), FL_EADDRINUSE or FL_EINVAL. */
int fl_consul_add_agent(fl_consul_t *c, const char *node, const char *host, int port,
                        fl_consul_agent_t **out);
int fl_consul_agent_port(const fl_consul_agent_t *a);
const char *fl_consul_agent_node(const fl_consul_agent_t *a);
/* Stops every agent, check and pending query; cb(arg) once every handle is closed. */
void fl_consul_close(fl_consul_t *c, void (*cb)(void *arg), void *arg);

/* Faults. Each reports itself through on_event. */
/* down: agents refuse connections (their listeners close; open connections are closed); up
 * listens again on the same ports. Returns 0, FL_ESTATE (closing), or coming up, what
 * fl_httpd_start returns for a port taken meanwhile (FL_EADDRINUSE...). */
int fl_consul_set_down(fl_consul_t *c, int down);
/* every answer leaves ns late (0: none) */
void fl_consul_set_latency(fl_consul_t *c, uint64_t ns);
/* frozen: blocking queries never return and writes hang until unfrozen */
void fl_consul_set_frozen(fl_consul_t *c, int frozen);
/* answers describe the catalog as it was ns ago (0: current) */
void fl_consul_set_stale(fl_consul_t *c, uint64_t ns);
/* the checks of every instance of service alternate passing/critical every period
 * (0: stop, and their own status returns) */
int fl_consul_flap(fl_consul_t *c, const char *service, uint64_t period_ns);

/* What the harness reads. */
/* IDs of the service's instances whose checks all pass, into ids (up to max); returns the
 * count (which may exceed max). Sorted by node, then ID; the strings stay valid until the
 * catalog next changes (do not keep them across loop iterations). */
size_t fl_consul_passing(fl_consul_t *c, const char *service, const char **ids, size_t max);
/* The same, giving the node (agent) of each passing instance instead of its ID. */
size_t fl_consul_passing_nodes(fl_consul_t *c, const char *service, const char **nodes, size_t max);
/* The JSON text node's agent would answer now to GET /v1/health/service/<service>?passing
 * (with the rewrite applied, and lagging under the stale fault), or NULL on FL_ENOMEM. The
 * caller frees it. */
char *fl_consul_view(fl_consul_t *c, const char *node, const char *service);
/* The service's instances whatever their checks say (registered at all), as
 * fl_consul_passing_nodes gives the passing ones. */
size_t fl_consul_registered_nodes(fl_consul_t *c, const char *service, const char **nodes,
                                  size_t max);

/* The last answer node's agent served over HTTP to a health query about service
 * (GET /v1/health/service/<service>, blocking or not): what that node's discovery was last
 * told. Made when the answer was rendered (under the latency fault it leaves that much later). */
typedef struct {
    uint64_t index; /* its X-Consul-Index */
    uint64_t at_ns; /* uv_hrtime() when it was made */
    uint64_t
        answers; /* answers made for node about service so far (waiters sharing one count once) */
    int passing; /* the query asked for passing instances only */
    const char *const *ids;   /* the service IDs it listed, in its order */
    const char *const *nodes; /* the node of each (an agent's node: its instance's name) */
    size_t nids;
} fl_consul_served_t;
/* 1 and *out (valid until the next answer to node about service, or the close), or 0 when
 * node's agent never answered a health query about service. */
int fl_consul_last_served(const fl_consul_t *c, const char *node, const char *service,
                          fl_consul_served_t *out);

/* The catalog's raft index (X-Consul-Index). */
uint64_t fl_consul_index(const fl_consul_t *c);

/* One answer of an agent, as fl_consul_serve gives it. */
typedef struct {
    int status;
    const char *content_type; /* a constant string, NULL for none */
    char *headers;            /* Consul's headers, "Name: value\r\n" each */
    char *body;               /* body_len bytes, NUL-terminated after them */
    size_t body_len;
} fl_consul_answer_t;

/* Answers one request as node's agent would, synchronously and without a socket: what the
 * agent's HTTP server would hand over (method, target as sent, e.g. "/v1/kv/a%2Fb?recurse",
 * and the decoded body of len bytes), through the same routing and handlers, with the same
 * status, headers and body. Writes change the catalog as they would over HTTP. What needs a
 * socket does not apply: a blocking query answers at once, as when its wait is over; the
 * latency and freeze faults, which hold answers back, are ignored, and so is down. For tools
 * and fuzzing. Returns 0 and fills *out (free it with fl_consul_answer_free), FL_EINVAL (no
 * agent of that node, a NULL argument, closing) or FL_ENOMEM. */
int fl_consul_serve(fl_consul_t *c, const char *node, const char *method, const char *target,
                    const void *body, size_t len, fl_consul_answer_t *out);
void fl_consul_answer_free(fl_consul_answer_t *ans);

/* `faultline fake consul --listen HOST:PORT [--nodes N] [--seed N] [--quiet]` (argv[0] is
 * "consul"): standalone agents node-1..node-N sharing one catalog, on consecutive ports from
 * PORT (0: each any free port), each address printed to stdout, until SIGINT or SIGTERM.
 * Returns the exit code: 0 after a signal, 2 for bad usage or an address it cannot listen on. */
int fl_consul_main(int argc, char **argv);

#endif

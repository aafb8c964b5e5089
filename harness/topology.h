/* The topology a scenario file declares with topology{...}: services, their commands,
 * replicas, environment and static dependencies (needs). Parsed and validated once per file,
 * at load time, so a typo fails the run before any process starts. */
#ifndef FL_TOPOLOGY_H
#define FL_TOPOLOGY_H

#include <lua.h>
#include <stdint.h>

#include "harness/supervisor.h"

#define FL_MAX_REPLICAS 254
#define FL_MAX_SERVICES 254

typedef struct {
    char *name;
    char **cmd;   /* NULL-terminated; cmd[0] resolved to an executable path */
    char **env;   /* NULL-terminated "K=V" from the service's env table */
    char **needs; /* NULL-terminated service names */
    int replicas;
    int index; /* S in 127.X.S.I: 1-based position in name order */
    int depth; /* start wave: 0 for services that need nothing */
    int autostart;
    fl_ready_t ready;
    uint64_t ready_timeout_ns;
    uint64_t grace_ns;
} fl_service_t;

typedef enum {
    FL_CONSUL_FAKE, /* the embedded fake: an agent per instance (the default) */
    FL_CONSUL_REAL, /* a real agent at consul_addr: instances register for real */
    FL_CONSUL_NONE, /* no Consul: no CONSUL_HTTP_ADDR */
} fl_consul_mode_t;

typedef enum {
    FL_AMQP_FAKE, /* the embedded broker, reached through a link per instance (the default) */
    FL_AMQP_REAL, /* a real broker: AMQP_URL is amqp_url as given */
    FL_AMQP_NONE, /* no broker: no AMQP_URL */
} fl_amqp_mode_t;

typedef struct {
    fl_consul_mode_t consul;
    fl_amqp_mode_t amqp;
    char amqp_url[256];     /* FL_AMQP_REAL */
    char consul_addr[128];  /* FL_CONSUL_REAL: "host:port" */
    fl_service_t *services; /* sorted by name */
    int nservices;
    char **mutants; /* NULL-terminated: the FAULTLINE_BUG values its services implement */
    int declared;   /* topology{} was called */
    char where[256];
} fl_topology_t;

/* Lua: topology{...} — parses the table at index 1 into topo. bin_dir is searched first
 * for bare command names (then PATH). Raises usage errors (never returns) on bad input. */
void fl_topology_parse(lua_State *L, fl_topology_t *topo, const char *bin_dir);
/* A list of mutant names (FAULTLINE_BUG values) at idx, for topology mutants and scenario
 * catches (what names it in errors): strings of 1-64 letters, digits, '-', '_' or '.', each
 * once. Returns a malloc'd NULL-terminated vector (empty for nil); raises usage errors. */
char **fl_mutants_parse(lua_State *L, int idx, const char *what);
/* 1 when names (NULL-terminated, may be NULL) holds name. */
int fl_mutants_has(char *const *names, const char *name);
/* The service called name, or NULL. */
fl_service_t *fl_topology_find(fl_topology_t *topo, const char *name);
void fl_topology_free(fl_topology_t *topo);
/* One line for reports: "client (needs echo), echo x3; consul: fake; amqp: fake" (services in
 * name order), then "; mutants: no-retry, sticky-lb" when it declares some. Returns a malloc'd
 * string, or NULL on FL_ENOMEM. */
char *fl_topology_describe(const fl_topology_t *topo);

#endif

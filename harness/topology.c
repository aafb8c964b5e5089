/* topology{...} parsing and validation (topology.h). Everything here runs at load time:
 * each mistake is raised as a usage error at the topology{} call, naming the service and
 * the key. */
#include "harness/topology.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/luax.h"
#include "lib/buf.h"
#include "lib/hostport.h"
#include "lib/strv.h"

#define DEFAULT_READY_TIMEOUT_NS 10000000000ull
#define DEFAULT_GRACE_NS 3000000000ull

static const char *const topology_keys[] = {"services", "grace", "consul", "amqp", "mutants", NULL};
static const char *const service_keys[] = {"cmd",           "replicas", "env",   "needs", "ready",
                                           "ready_timeout", "grace",    "start", NULL};

/* Strings pushed into C memory while the parse may still raise: the topology owns them
 * from the start, so an error leaves nothing unreachable (fl_topology_free cleans up). */
static char *own(lua_State *L, const char *s)
{
    char *p = strdup(s);
    if (!p)
        luaL_error(L, "out of memory");
    return p;
}

static char **new_strv(lua_State *L, size_t n)
{
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        luaL_error(L, "out of memory");
    return v;
}

static int is_executable(const char *path)
{
    return access(path, X_OK) == 0;
}

/* Resolves a command name as execvp would, with bin_dir searched before PATH. */
static char *resolve_exe(const char *name, const char *bin_dir)
{
    if (strchr(name, '/'))
        return is_executable(name) ? strdup(name) : NULL;
    const char *path = getenv("PATH");
    fl_buf_t dirs = FL_BUF_INIT, cand = FL_BUF_INIT;
    fl_buf_printf(&dirs, "%s:%s", bin_dir ? bin_dir : "", path ? path : "/usr/bin:/bin");
    char *result = NULL, *save = NULL;
    for (char *d = strtok_r(dirs.data, ":", &save); d && !result; d = strtok_r(NULL, ":", &save)) {
        fl_buf_reset(&cand);
        fl_buf_printf(&cand, "%s/%s", d, name);
        if (is_executable(cand.data))
            result = strdup(cand.data);
    }
    fl_buf_free(&dirs);
    fl_buf_free(&cand);
    return result;
}

static void parse_cmd(lua_State *L, fl_service_t *s, const char *bin_dir)
{
    lua_getfield(L, -1, "cmd");
    if (lua_isnil(L, -1))
        fl_lua_usage(L, "service '%s' has no cmd (e.g. cmd = { \"my-service\", \"--flag\" })",
                     s->name);
    if (lua_type(L, -1) == LUA_TSTRING) { /* cmd = "path" is a one-word command */
        s->cmd = new_strv(L, 1);
        s->cmd[0] = own(L, lua_tostring(L, -1));
    } else if (lua_istable(L, -1)) {
        size_t n = lua_rawlen(L, -1);
        if (n == 0)
            fl_lua_usage(L, "service '%s': cmd is empty", s->name);
        s->cmd = new_strv(L, n);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, (lua_Integer)i);
            if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
                fl_lua_usage(L, "service '%s': cmd[%zu] must be a string, got %s", s->name, i,
                             fl_lua_typename(L, -1));
            s->cmd[i - 1] = own(L, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else {
        fl_lua_usage(L, "service '%s': cmd must be a list of strings, got %s", s->name,
                     fl_lua_typename(L, -1));
    }
    lua_pop(L, 1);
    char *exe = resolve_exe(s->cmd[0], bin_dir);
    if (!exe)
        fl_lua_usage(L, "service '%s': cannot find executable '%s'%s", s->name, s->cmd[0],
                     strchr(s->cmd[0], '/') ? " (paths are relative to the current directory)"
                                            : " in faultline's bin directory or PATH");
    free(s->cmd[0]);
    s->cmd[0] = exe;
}

static void parse_env(lua_State *L, fl_service_t *s)
{
    lua_getfield(L, -1, "env");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        s->env = new_strv(L, 0);
        return;
    }
    if (!lua_istable(L, -1))
        fl_lua_usage(L, "service '%s': env must be a table of NAME = value, got %s", s->name,
                     fl_lua_typename(L, -1));
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        n++;
        lua_pop(L, 1);
    }
    s->env = new_strv(L, n);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || !*lua_tostring(L, -2) ||
            strchr(lua_tostring(L, -2), '='))
            fl_lua_usage(L, "service '%s': env keys must be variable names", s->name);
        int t = lua_type(L, -1);
        if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
            fl_lua_usage(L, "service '%s': env.%s must be a string or number, got %s", s->name,
                         lua_tostring(L, -2), fl_lua_typename(L, -1));
        const char *v =
            t == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "1" : "0") : lua_tostring(L, -1);
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), v);
        s->env[i++] = own(L, lua_tostring(L, -1));
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
}

static void parse_needs(lua_State *L, fl_service_t *s)
{
    lua_getfield(L, -1, "needs");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        s->needs = new_strv(L, 0);
        return;
    }
    if (!lua_istable(L, -1))
        fl_lua_usage(L, "service '%s': needs must be a list of service names, got %s", s->name,
                     fl_lua_typename(L, -1));
    size_t n = lua_rawlen(L, -1);
    s->needs = new_strv(L, n);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            fl_lua_usage(L, "service '%s': needs[%zu] must be a service name, got %s", s->name, i,
                         fl_lua_typename(L, -1));
        s->needs[i - 1] = own(L, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static void parse_service(lua_State *L, fl_service_t *s, uint64_t grace, const char *bin_dir)
{
    if (!lua_istable(L, -1))
        fl_lua_usage(L, "service '%s' must be a table like { cmd = {...}, replicas = 2 }, got %s",
                     s->name, fl_lua_typename(L, -1));
    char what[128];
    snprintf(what, sizeof what, "service '%s'", s->name);
    fl_lua_check_keys(L, -1, what, service_keys);
    parse_cmd(L, s, bin_dir);
    parse_env(L, s);
    parse_needs(L, s);

    lua_getfield(L, -1, "replicas");
    s->replicas = 1;
    if (!lua_isnil(L, -1)) {
        int isint = 0;
        lua_Integer r = lua_tointegerx(L, -1, &isint);
        if (!isint || r < 0 || r > FL_MAX_REPLICAS)
            fl_lua_usage(L, "service '%s': replicas must be a whole number from 0 to %d, got %s",
                         s->name, FL_MAX_REPLICAS, luaL_tolstring(L, -1, NULL));
        s->replicas = (int)r;
    }
    lua_pop(L, 1);

    lua_getfield(L, -1, "ready");
    s->ready = FL_READY_PORT;
    if (!lua_isnil(L, -1)) {
        const char *r = lua_tostring(L, -1);
        if (lua_type(L, -1) != LUA_TSTRING ||
            (strcmp(r, "port") && strcmp(r, "none") && strcmp(r, "healthy")))
            fl_lua_usage(L, "service '%s': ready must be \"port\", \"healthy\" or \"none\"",
                         s->name);
        s->ready = strcmp(r, "none") == 0      ? FL_READY_NONE
                   : strcmp(r, "healthy") == 0 ? FL_READY_CHECK
                                               : FL_READY_PORT;
    }
    lua_pop(L, 1);

    snprintf(what, sizeof what, "ready_timeout of service '%s'", s->name);
    lua_getfield(L, -1, "ready_timeout");
    s->ready_timeout_ns = fl_lua_opt_dur(L, -1, what, DEFAULT_READY_TIMEOUT_NS);
    lua_pop(L, 1);
    snprintf(what, sizeof what, "grace of service '%s'", s->name);
    lua_getfield(L, -1, "grace");
    s->grace_ns = fl_lua_opt_dur(L, -1, what, grace);
    lua_pop(L, 1);
    lua_getfield(L, -1, "start");
    s->autostart = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_pop(L, 1);
}

/* consul = "fake" (the default), "none", or "host:port" of a real agent. */
static void parse_consul(lua_State *L, fl_topology_t *topo)
{
    lua_getfield(L, 1, "consul");
    topo->consul = FL_CONSUL_FAKE;
    if (!lua_isnil(L, -1)) {
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        char host[96];
        int port;
        if (v && strcmp(v, "fake") == 0) {
            topo->consul = FL_CONSUL_FAKE;
        } else if (v && strcmp(v, "none") == 0) {
            topo->consul = FL_CONSUL_NONE;
        } else if (v && fl_hostport_parse(v, 0, host, sizeof host, &port) == 0) {
            topo->consul = FL_CONSUL_REAL;
            snprintf(topo->consul_addr, sizeof topo->consul_addr, "%s", v);
        } else {
            fl_lua_usage(L,
                         "topology consul must be \"fake\", \"none\" or the \"host:port\" of a "
                         "real agent, got %s",
                         luaL_tolstring(L, -1, NULL));
        }
    }
    lua_pop(L, 1);
}

/* amqp = "fake" (the default), "none", or the amqp:// or amqps:// URL of a real broker. */
static void parse_amqp(lua_State *L, fl_topology_t *topo)
{
    lua_getfield(L, 1, "amqp");
    topo->amqp = FL_AMQP_FAKE;
    if (!lua_isnil(L, -1)) {
        const char *v = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (v && strcmp(v, "fake") == 0) {
            topo->amqp = FL_AMQP_FAKE;
        } else if (v && strcmp(v, "none") == 0) {
            topo->amqp = FL_AMQP_NONE;
        } else if (v && (strncmp(v, "amqp://", 7) == 0 || strncmp(v, "amqps://", 8) == 0) &&
                   strlen(v) < sizeof topo->amqp_url) {
            topo->amqp = FL_AMQP_REAL;
            snprintf(topo->amqp_url, sizeof topo->amqp_url, "%s", v);
        } else {
            fl_lua_usage(L,
                         "topology amqp must be \"fake\", \"none\" or the amqp:// URL of a real "
                         "broker, got %s",
                         luaL_tolstring(L, -1, NULL));
        }
    }
    lua_pop(L, 1);
}

#define MUTANT_NAME_MAX 64
#define MUTANT_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

int fl_mutants_has(char *const *names, const char *name)
{
    for (size_t i = 0; names && names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* Everything is checked before anything is allocated, so a usage error leaks nothing. */
char **fl_mutants_parse(lua_State *L, int idx, const char *what)
{
    idx = lua_absindex(L, idx);
    size_t n = 0;
    if (!lua_isnil(L, idx)) {
        if (!lua_istable(L, idx))
            fl_lua_usage(L, "%s must be a list of mutant names like { \"no-retry\" }, got %s", what,
                         fl_lua_typename(L, idx));
        n = lua_rawlen(L, idx);
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
            if (k < 1 || (size_t)k > n)
                fl_lua_usage(L, "%s must be a list (1, 2, 3... keys), not a table with key %s",
                             what, luaL_tolstring(L, -2, NULL));
            lua_pop(L, 1);
        }
    }
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            fl_lua_usage(L, "%s[%zu] must be a mutant name (a string), got %s", what, i,
                         fl_lua_typename(L, -1));
        const char *s = lua_tostring(L, -1);
        size_t len = strlen(s);
        if (len == 0 || len > MUTANT_NAME_MAX || strspn(s, MUTANT_NAME_CHARS) != len)
            fl_lua_usage(L,
                         "%s[%zu]: bad mutant name '%s' (a FAULTLINE_BUG value: 1-%d letters, "
                         "digits, '-', '_' or '.')",
                         what, i, s, MUTANT_NAME_MAX);
        for (size_t j = 1; j < i; j++) {
            lua_rawgeti(L, idx, (lua_Integer)j);
            int same = strcmp(lua_tostring(L, -1), s) == 0;
            lua_pop(L, 1);
            if (same)
                fl_lua_usage(L, "%s names '%s' twice (items %zu and %zu)", what, s, j, i);
        }
        lua_pop(L, 1);
    }
    char **v = calloc(n + 1, sizeof *v);
    if (!v)
        luaL_error(L, "out of memory");
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i);
        v[i - 1] = strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
        if (!v[i - 1]) {
            fl_strv_free(v);
            luaL_error(L, "out of memory");
        }
    }
    return v;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const fl_service_t *)a)->name, ((const fl_service_t *)b)->name);
}

fl_service_t *fl_topology_find(fl_topology_t *topo, const char *name)
{
    for (int i = 0; i < topo->nservices; i++)
        if (strcmp(topo->services[i].name, name) == 0)
            return &topo->services[i];
    return NULL;
}

/* Depth of s in the needs graph; usage error on an unknown name or a cycle. Each depth is
 * computed once (depth -1: not yet, -2: on the current path), so dense needs stay linear. */
static int depth_of(lua_State *L, fl_topology_t *topo, fl_service_t *s)
{
    if (s->depth >= 0)
        return s->depth;
    if (s->depth == -2)
        fl_lua_usage(L, "services' needs form a cycle (through '%s')", s->name);
    s->depth = -2;
    int d = 0;
    for (char **n = s->needs; *n; n++) {
        fl_service_t *dep = fl_topology_find(topo, *n);
        if (!dep) {
            const char **names = calloc((size_t)topo->nservices + 1, sizeof *names);
            for (int i = 0; names && i < topo->nservices; i++)
                names[i] = topo->services[i].name;
            const char *sug = names ? fl_lua_suggest(*n, names) : NULL;
            char hint[160] = "";
            if (sug)
                snprintf(hint, sizeof hint, " (did you mean '%s'?)", sug);
            free(names);
            fl_lua_usage(L, "service '%s' needs '%s', which is not a service of this topology%s",
                         s->name, *n, hint);
        }
        if (dep == s)
            fl_lua_usage(L, "service '%s' needs itself", s->name);
        int dd = depth_of(L, topo, dep) + 1;
        if (dd > d)
            d = dd;
    }
    s->depth = d;
    return d;
}

void fl_topology_parse(lua_State *L, fl_topology_t *topo, const char *bin_dir)
{
    if (topo->declared)
        fl_lua_usage(L, "topology declared twice (first at %s)", topo->where);
    fl_lua_where(L, topo->where, sizeof topo->where);
    topo->declared = 1;
    if (!lua_istable(L, 1))
        fl_lua_usage(L, "topology expects a table: topology { services = { ... } }, got %s",
                     fl_lua_typename(L, 1));
    fl_lua_check_keys(L, 1, "topology", topology_keys);

    lua_getfield(L, 1, "grace");
    uint64_t grace = fl_lua_opt_dur(L, -1, "topology grace", DEFAULT_GRACE_NS);
    lua_pop(L, 1);
    parse_consul(L, topo);
    parse_amqp(L, topo);
    lua_getfield(L, 1, "mutants");
    topo->mutants = fl_mutants_parse(L, -1, "topology mutants");
    lua_pop(L, 1);

    lua_getfield(L, 1, "services");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        fl_lua_usage(L, "topology services must be a table of name = { cmd = ... }, got %s",
                     fl_lua_typename(L, -1));
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            fl_lua_usage(L, "topology services: keys must be service names, got %s",
                         fl_lua_typename(L, -2));
        const char *name = lua_tostring(L, -2);
        size_t len = strlen(name);
        if (len == 0 || len > 40 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
            fl_lua_usage(L, "bad service name '%s': use 1-40 lowercase letters, digits, - or _",
                         name);
        n++;
        lua_pop(L, 1);
    }
    if (n > FL_MAX_SERVICES)
        fl_lua_usage(L, "too many services (%d, at most %d)", n, FL_MAX_SERVICES);
    topo->services = calloc((size_t)n + 1, sizeof *topo->services);
    if (!topo->services)
        luaL_error(L, "out of memory");
    /* Names first, sorted, so that indices (and addresses) do not depend on table order. */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        topo->services[topo->nservices++].name = own(L, lua_tostring(L, -2));
        lua_pop(L, 1);
    }
    qsort(topo->services, (size_t)topo->nservices, sizeof *topo->services, by_name);
    for (int i = 0; i < topo->nservices; i++) {
        fl_service_t *s = &topo->services[i];
        s->index = i + 1;
        lua_getfield(L, -1, s->name);
        parse_service(L, s, grace, bin_dir);
        lua_pop(L, 1);
    }
    for (int i = 0; i < topo->nservices; i++)
        topo->services[i].depth = -1;
    for (int i = 0; i < topo->nservices; i++) {
        depth_of(L, topo, &topo->services[i]);
        if (topo->services[i].ready == FL_READY_CHECK && topo->consul != FL_CONSUL_FAKE)
            fl_lua_usage(L,
                         "service '%s': ready = \"healthy\" needs the fake Consul "
                         "(topology consul = \"fake\", the default)",
                         topo->services[i].name);
    }
    lua_pop(L, 1);
}

char *fl_topology_describe(const fl_topology_t *topo)
{
    fl_buf_t b = FL_BUF_INIT;
    int rc = 0;
    for (int i = 0; !rc && i < topo->nservices; i++) {
        const fl_service_t *s = &topo->services[i];
        rc = fl_buf_printf(&b, "%s%s", i ? ", " : "", s->name);
        if (!rc && s->replicas != 1)
            rc = fl_buf_printf(&b, " x%d", s->replicas);
        for (int j = 0; !rc && s->needs && s->needs[j]; j++)
            rc = fl_buf_printf(&b, "%s%s", j ? ", " : " (needs ", s->needs[j]);
        if (!rc && s->needs && s->needs[0])
            rc = fl_buf_puts(&b, ")");
    }
    static const char *const consul[] = {"fake", "real", "none"};
    static const char *const amqp[] = {"fake", "real", "none"};
    if (!rc)
        rc = fl_buf_printf(&b, "%sconsul: %s%s%s; amqp: %s", topo->nservices ? "; " : "",
                           (unsigned)topo->consul < 3 ? consul[topo->consul] : "?",
                           topo->consul == FL_CONSUL_REAL ? " " : "",
                           topo->consul == FL_CONSUL_REAL ? topo->consul_addr : "",
                           (unsigned)topo->amqp < 3 ? amqp[topo->amqp] : "?");
    for (size_t i = 0; !rc && topo->mutants && topo->mutants[i]; i++)
        rc = fl_buf_printf(&b, "%s%s", i ? ", " : "; mutants: ", topo->mutants[i]);
    if (rc) {
        fl_buf_free(&b);
        return NULL;
    }
    return b.data;
}

void fl_topology_free(fl_topology_t *topo)
{
    for (int i = 0; i < topo->nservices; i++) {
        fl_service_t *s = &topo->services[i];
        free(s->name);
        fl_strv_free(s->cmd);
        fl_strv_free(s->env);
        fl_strv_free(s->needs);
    }
    free(topo->services);
    fl_strv_free(topo->mutants);
    topo->mutants = NULL;
    topo->services = NULL;
    topo->nservices = 0;
}

/* The fake Consul in scenarios: one catalog per scenario and one agent per instance, on the
 * instance's own address (so the node address Consul reports is the instance's), handed to
 * it as CONSUL_HTTP_ADDR. Discovery answers go through links: when a node asks for a
 * service, each instance address it would be told is rewritten to that node's link to the
 * instance, where one exists (the asker `needs` that service); other addresses are answered
 * as registered. Also the Lua side: t.consul faults, t:healthy, t:consul_view. */
#include <jansson.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/consul/consul.h"
#include "harness/luax.h"
#include "harness/scenario.h"
#include "lib/err.h"

/* ------------------------------------------------------------ lifecycle ---- */

static fl_instance_t *instance_at(fl_scenario_t *sc, const char *addr, int port)
{
    for (size_t i = 0; i < sc->ninst; i++)
        if (sc->inst[i].port == port && strcmp(sc->inst[i].host, addr) == 0)
            return &sc->inst[i];
    return NULL;
}

static fl_instance_t *instance_named(fl_scenario_t *sc, const char *name)
{
    for (size_t i = 0; i < sc->ninst; i++)
        if (strcmp(sc->inst[i].name, name) == 0)
            return &sc->inst[i];
    return NULL;
}

/* cfg.rewrite: the asking node's link to the instance at addr:port, if it has one. */
static int rewrite(void *arg, const char *node, const char *addr, int port, char *out_addr,
                   size_t out_len, int *out_port)
{
    fl_scenario_t *sc = arg;
    fl_instance_t *asker = instance_named(sc, node), *target = instance_at(sc, addr, port);
    if (!asker || !target)
        return 0;
    size_t ci = (size_t)(asker - sc->inst), si = (size_t)(target - sc->inst);
    for (size_t k = 0; k < sc->nlinks; k++) {
        fl_sc_link_t *sl = &sc->links[k];
        if (sl->client == ci && sl->server == si) {
            snprintf(out_addr, out_len, "%s", sl->link.listen_host);
            *out_port = sl->link.listen_port;
            return 1;
        }
    }
    return 0;
}

static void consul_event(void *arg, const char *node, const char *text)
{
    fl_scenario_t *sc = arg;
    if (node && *node)
        fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, node, NULL, "consul: %s", text);
    else
        fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "consul", NULL, "%s", text);
}

int fl_sc_consul_open(fl_scenario_t *sc)
{
    if (sc->e->topo.consul != FL_CONSUL_FAKE || sc->ninst == 0)
        return 0;
    fl_consul_config_t cfg = {
        .seed = fl_rng_next(&sc->rng),
        .rewrite = rewrite,
        .rewrite_arg = sc,
        .on_event = consul_event,
        .event_arg = sc,
    };
    int rc = fl_consul_new(sc->e->run->loop, &cfg, &sc->consul);
    if (rc)
        return rc;
    sc->agents = calloc(sc->ninst, sizeof *sc->agents);
    if (!sc->agents)
        return FL_ENOMEM;
    for (size_t i = 0; i < sc->ninst; i++) {
        fl_instance_t *inst = &sc->inst[i];
        rc = fl_consul_add_agent(sc->consul, inst->name, inst->host, 0, &sc->agents[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int fl_sc_consul_ready(fl_instance_t *inst, void *arg)
{
    fl_scenario_t *sc = arg;
    if (!sc->consul)
        return 0;
    const char *nodes[FL_MAX_REPLICAS * 4];
    size_t n =
        fl_consul_passing_nodes(sc->consul, inst->service, nodes, sizeof nodes / sizeof nodes[0]);
    for (size_t i = 0; i < n && i < sizeof nodes / sizeof nodes[0]; i++)
        if (strcmp(nodes[i], inst->name) == 0)
            return 1;
    return 0;
}

void fl_sc_consul_addr(fl_scenario_t *sc, size_t i, char *out, size_t n)
{
    out[0] = '\0';
    if (sc->e->topo.consul == FL_CONSUL_REAL)
        snprintf(out, n, "%s", sc->e->topo.consul_addr);
    else if (sc->agents && sc->agents[i])
        snprintf(out, n, "%s:%d", sc->inst[i].host, fl_consul_agent_port(sc->agents[i]));
}

static void consul_closed(void *arg)
{
    fl_scenario_t *sc = arg;
    sc->consul = NULL;
    free(sc->agents);
    sc->agents = NULL;
    sc->consul_closed(sc);
}

void fl_sc_consul_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc))
{
    if (!sc->consul) {
        free(sc->agents);
        sc->agents = NULL;
        cb(sc);
        return;
    }
    sc->consul_closed = cb;
    fl_consul_close(sc->consul, consul_closed, sc);
}

/* ------------------------------------------------------------ Lua ---- */

static fl_consul_t *check_fake(lua_State *L, fl_scenario_t *sc, const char *what)
{
    if (!sc->consul)
        fl_lua_usage(L, "%s needs the fake Consul (topology consul = \"fake\", the default)%s",
                     what,
                     sc->e->topo.consul == FL_CONSUL_REAL ? ": this topology uses a real one" : "");
    return sc->consul;
}

/* C.consul(t, fault, ...): down(bool) | latency(seconds) | freeze(bool) | stale(seconds) |
 * flap(service, seconds); every fault is on the timeline at the user's line. */
static int c_consul(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *fault = luaL_checkstring(L, 2);
    char what[64];
    snprintf(what, sizeof what, "t.consul:%s", fault);
    fl_consul_t *c = check_fake(L, sc, what);
    char where[256], detail[160] = "";
    fl_sc_where(L, sc, where, sizeof where);
    if (strcmp(fault, "down") == 0) {
        int rc = fl_consul_set_down(c, lua_toboolean(L, 3));
        if (rc)
            return luaL_error(L, "t.consul: %s", fl_strerror(rc));
        snprintf(detail, sizeof detail, "%s", lua_toboolean(L, 3) ? "down" : "up");
    } else if (strcmp(fault, "latency") == 0 || strcmp(fault, "stale") == 0) {
        uint64_t ns = (uint64_t)(luaL_checknumber(L, 3) * 1e9);
        if (fault[0] == 'l')
            fl_consul_set_latency(c, ns);
        else
            fl_consul_set_stale(c, ns);
        snprintf(detail, sizeof detail, "%s %gs", fault, luaL_checknumber(L, 3));
    } else if (strcmp(fault, "freeze") == 0) {
        fl_consul_set_frozen(c, lua_toboolean(L, 3));
        snprintf(detail, sizeof detail, "%s", lua_toboolean(L, 3) ? "frozen" : "thawed");
    } else if (strcmp(fault, "flap") == 0) {
        const char *service = fl_lua_check_string(L, 3, "t.consul:flap service");
        double period = luaL_checknumber(L, 4);
        if (fl_topology_find(&sc->e->topo, service) == NULL) {
            const char *names[FL_MAX_SERVICES + 1] = {NULL};
            for (int i = 0; i < sc->e->topo.nservices; i++)
                names[i] = sc->e->topo.services[i].name;
            const char *sug = fl_lua_suggest(service, names);
            fl_lua_usage(L, "t.consul:flap: no service named '%s' in this topology%s%s%s", service,
                         sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
        }
        int rc = fl_consul_flap(c, service, (uint64_t)(period * 1e9));
        if (rc)
            return luaL_error(L, "t.consul:flap: %s", fl_strerror(rc));
        snprintf(detail, sizeof detail, period > 0 ? "flap %s every %gs" : "steady %s", service,
                 period);
    } else {
        return luaL_error(L, "internal error: unknown consul fault %s", fault);
    }
    if (strcmp(fault, "flap") == 0) {
        char key[32];
        snprintf(key, sizeof key, "consul:flap:%.18s", luaL_checkstring(L, 3));
        fl_sc_fault_switch(sc, "consul", key, luaL_checknumber(L, 4) > 0, where, detail);
    } else {
        char key[32];
        snprintf(key, sizeof key, "consul:%s", fault);
        int on = lua_isnumber(L, 3) ? lua_tonumber(L, 3) != 0 : lua_toboolean(L, 3);
        fl_sc_fault_switch(sc, "consul", key, on, where, detail);
    }
    return 0;
}

/* Pushes a JSON value as a Lua value (objects and arrays as tables, null as nil). */
static void push_json(lua_State *L, json_t *j)
{
    luaL_checkstack(L, 4, "JSON too deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            push_json(L, v);
            lua_setfield(L, -2, k);
        }
        break;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(j), 0);
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            push_json(L, v);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(j));
        break;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        break;
    default:
        lua_pushnil(L);
    }
}

/* One entry of a health answer, the way a scenario wants it: id, service, node, address,
 * port, tags. */
static void push_entry(lua_State *L, json_t *entry)
{
    json_t *svc = json_object_get(entry, "Service"), *node = json_object_get(entry, "Node");
    const char *addr = json_string_value(json_object_get(svc, "Address"));
    if (!addr || !*addr)
        addr = json_string_value(json_object_get(node, "Address"));
    lua_createtable(L, 0, 6);
    lua_pushstring(L, json_string_value(json_object_get(svc, "ID")));
    lua_setfield(L, -2, "id");
    lua_pushstring(L, json_string_value(json_object_get(svc, "Service")));
    lua_setfield(L, -2, "service");
    lua_pushstring(L, json_string_value(json_object_get(node, "Node")));
    lua_setfield(L, -2, "node");
    lua_pushstring(L, addr ? addr : "");
    lua_setfield(L, -2, "address");
    lua_pushinteger(L, (lua_Integer)json_integer_value(json_object_get(svc, "Port")));
    lua_setfield(L, -2, "port");
    push_json(L, json_object_get(svc, "Tags"));
    lua_setfield(L, -2, "tags");
}

/* C.consul_view(t, inst, service) → list of { id, service, node, address, port, tags }: what
 * inst's agent answers now to a passing-only health query for service. */
static int c_consul_view(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "t:consul_view");
    const char *service = fl_lua_check_string(L, 3, "t:consul_view service");
    fl_consul_t *c = check_fake(L, sc, "t:consul_view");
    char *text = fl_consul_view(c, inst->name, service);
    if (!text)
        return luaL_error(L, "out of memory");
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    free(text);
    if (!json_is_array(j)) {
        json_decref(j);
        return luaL_error(L, "internal error: the fake Consul answered something not a list");
    }
    lua_createtable(L, (int)json_array_size(j), 0);
    size_t i;
    json_t *entry;
    json_array_foreach(j, i, entry)
    {
        push_entry(L, entry);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    json_decref(j);
    return 1;
}

/* C.healthy(t, service) → the instances of service whose registration at their own agent
 * passes every check, in instance order. */
static int c_healthy(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *service = fl_lua_check_string(L, 2, "t:healthy service");
    fl_consul_t *c = check_fake(L, sc, "t:healthy");
    const char *nodes[FL_MAX_REPLICAS * 4];
    size_t n = fl_consul_passing_nodes(c, service, nodes, sizeof nodes / sizeof nodes[0]);
    if (n > sizeof nodes / sizeof nodes[0])
        n = sizeof nodes / sizeof nodes[0];
    lua_newtable(L);
    lua_Integer k = 0;
    for (size_t i = 0; i < sc->ninst; i++) {
        for (size_t j = 0; j < n; j++) {
            if (strcmp(nodes[j], sc->inst[i].name) != 0)
                continue;
            fl_sc_push_inst(L, sc, &sc->inst[i]);
            lua_rawseti(L, -2, ++k);
            break;
        }
    }
    return 1;
}

/* C.consul_index(t) → the catalog's index */
static int c_consul_index(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    lua_pushinteger(L, (lua_Integer)fl_consul_index(check_fake(L, sc, "t.consul:index")));
    return 1;
}

void fl_sc_consul_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"consul", c_consul},   {"consul_view", c_consul_view},
        {"healthy", c_healthy}, {"consul_index", c_consul_index},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}

/* The fake AMQP broker in scenarios: one broker per scenario on the harness address
 * 127.X.0.3, reached by every instance through its own link (so t:link(inst, "broker") and
 * partitions can cut one instance off the broker), handed to it as AMQP_URL. Also the Lua
 * side: the C primitives behind t.broker's faults and stats. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/amqp.h"
#include "harness/luax.h"
#include "harness/scenario.h"
#include "lib/err.h"

/* The harness address the broker listens on: 127.X.0.3 (.1 is the run's lock, .2 links). */
#define BROKER_HOST_INDEX 3

static void broker_event(void *arg, const char *text)
{
    fl_scenario_t *sc = arg;
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "broker", NULL, "%s", text);
}

int fl_sc_broker_open(fl_scenario_t *sc)
{
    if (sc->e->topo.amqp != FL_AMQP_FAKE || sc->ninst == 0)
        return 0;
    fl_amqp_config_t cfg = {
        .seed = fl_rng_next(&sc->rng),
        .on_event = broker_event,
        .event_arg = sc,
    };
    int rc = fl_amqp_new(sc->e->run->loop, &cfg, &sc->broker);
    if (rc)
        return rc;
    fl_addr_harness(&sc->e->run->addr, BROKER_HOST_INDEX, sc->broker_host, sizeof sc->broker_host);
    return fl_amqp_listen(sc->broker, sc->broker_host, 0);
}

int fl_sc_broker_port(fl_scenario_t *sc)
{
    return sc->broker ? fl_amqp_port(sc->broker) : 0;
}

void fl_sc_broker_url(fl_scenario_t *sc, size_t i, char *out, size_t n)
{
    out[0] = '\0';
    if (sc->e->topo.amqp == FL_AMQP_REAL) {
        snprintf(out, n, "%s", sc->e->topo.amqp_url);
        return;
    }
    if (!sc->broker)
        return;
    for (size_t k = 0; k < sc->nlinks; k++) {
        fl_sc_link_t *sl = &sc->links[k];
        if (sl->client == i && sl->server == sc->ninst) {
            snprintf(out, n, "amqp://guest:guest@%s:%d", sl->link.listen_host,
                     sl->link.listen_port);
            return;
        }
    }
}

static void broker_closed(void *arg)
{
    fl_scenario_t *sc = arg;
    sc->broker = NULL;
    sc->broker_closed(sc);
}

void fl_sc_broker_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc))
{
    if (!sc->broker) {
        cb(sc);
        return;
    }
    sc->broker_closed = cb;
    fl_amqp_close(sc->broker, broker_closed, sc);
}

/* ------------------------------------------------------------ Lua ---- */

static fl_amqp_t *check_fake(lua_State *L, fl_scenario_t *sc, const char *what)
{
    if (!sc->broker)
        fl_lua_usage(L, "%s needs the fake broker (topology amqp = \"fake\", the default)%s", what,
                     sc->e->topo.amqp == FL_AMQP_REAL   ? ": this topology uses a real one"
                     : sc->e->topo.amqp == FL_AMQP_NONE ? ": this topology has amqp = \"none\""
                                                        : "");
    return sc->broker;
}

static double check_rate(lua_State *L, int idx, const char *what)
{
    double r = luaL_checknumber(L, idx);
    if (!(r >= 0 && r <= 1))
        fl_lua_usage(L, "%s: rate must be between 0 and 1, got %g", what, r);
    return r;
}

/* C.broker(t, fault, ...): down(bool) | restart() | drop_connections() | block(bool) |
 * delay(seconds) | duplicate(rate) | drop(rate); each on the timeline at the user's line. */
static int c_broker(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *fault = luaL_checkstring(L, 2);
    char what[64];
    snprintf(what, sizeof what, "t.broker:%s", fault);
    fl_amqp_t *b = check_fake(L, sc, what);
    char where[256], detail[160] = "";
    fl_sc_where(L, sc, where, sizeof where);
    if (strcmp(fault, "down") == 0) {
        int rc = fl_amqp_set_down(b, lua_toboolean(L, 3));
        if (rc)
            return luaL_error(L, "t.broker:%s: %s", lua_toboolean(L, 3) ? "down" : "up",
                              fl_strerror(rc));
        snprintf(detail, sizeof detail, "%s", lua_toboolean(L, 3) ? "down" : "up");
    } else if (strcmp(fault, "restart") == 0) {
        fl_amqp_restart(b);
        snprintf(detail, sizeof detail, "restart");
    } else if (strcmp(fault, "drop_connections") == 0) {
        int n = fl_amqp_drop_connections(b);
        snprintf(detail, sizeof detail, "dropped %d connection%s", n, n == 1 ? "" : "s");
        lua_pushinteger(L, n);
        fl_timeline_fault(&sc->tl, "broker", where, FL_FAULT_ONCE, fl_sc_fault_id(sc), NULL, "%s",
                          detail);
        return 1;
    } else if (strcmp(fault, "block") == 0) {
        fl_amqp_set_blocked(b, lua_toboolean(L, 3));
        snprintf(detail, sizeof detail, "%s", lua_toboolean(L, 3) ? "block publishers" : "unblock");
    } else if (strcmp(fault, "delay") == 0) {
        double s = luaL_checknumber(L, 3);
        fl_amqp_set_delay(b, (uint64_t)(s * 1e9));
        snprintf(detail, sizeof detail, "delay deliveries %gs", s);
    } else if (strcmp(fault, "duplicate") == 0 || strcmp(fault, "drop") == 0) {
        double r = check_rate(L, 3, what);
        if (fault[1] == 'u')
            fl_amqp_set_duplicate(b, r);
        else
            fl_amqp_set_drop(b, r);
        snprintf(detail, sizeof detail, "%s deliveries at rate %g", fault, r);
    } else {
        return luaL_error(L, "internal error: unknown broker fault %s", fault);
    }
    if (strcmp(fault, "restart") == 0) {
        fl_timeline_fault(&sc->tl, "broker", where, FL_FAULT_ONCE, fl_sc_fault_id(sc), NULL, "%s",
                          detail);
    } else { /* a switch: on until turned off (false or 0) */
        char key[32];
        snprintf(key, sizeof key, "broker:%s", fault);
        int on = lua_isnumber(L, 3) ? lua_tonumber(L, 3) != 0 : lua_toboolean(L, 3);
        fl_sc_fault_switch(sc, "broker", key, on, where, detail);
    }
    return 0;
}

/* C.broker_stats(t, queue[, vhost]) → table, or nil when there is no such queue */
static int c_broker_stats(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *queue = fl_lua_check_string(L, 2, "t.broker:stats queue");
    const char *vhost = luaL_optstring(L, 3, "/");
    fl_amqp_queue_stats_t st;
    if (fl_amqp_queue_stats(check_fake(L, sc, "t.broker:stats"), vhost, queue, &st) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 14);
    const struct {
        const char *name;
        uint64_t v;
    } fields[] = {
        {"ready", st.ready},
        {"unacked", st.unacked},
        {"consumers", st.consumers},
        {"published", st.published},
        {"delivered", st.delivered},
        {"acked", st.acked},
        {"redelivered", st.redelivered},
        {"dropped", st.dropped},
        {"duplicated", st.duplicated},
        {"dead_lettered", st.dead_lettered},
        {"expired", st.expired},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        lua_pushinteger(L, (lua_Integer)fields[i].v);
        lua_setfield(L, -2, fields[i].name);
    }
    return 1;
}

/* C.broker_info(t) → { connections = n, address = "host:port" } */
static int c_broker_info(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_amqp_t *b = check_fake(L, sc, "t.broker:connections");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, fl_amqp_connections(b));
    lua_setfield(L, -2, "connections");
    lua_pushfstring(L, "%s:%d", sc->broker_host, fl_amqp_port(b));
    lua_setfield(L, -2, "address");
    return 1;
}

void fl_sc_broker_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"broker", c_broker},
        {"broker_stats", c_broker_stats},
        {"broker_info", c_broker_info},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}

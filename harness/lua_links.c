/* Links in scenarios: one fault proxy per (client instance → server instance) of every
 * `needs`, opened before the instances start so that <NEED>_ADDR can name them, closed at
 * teardown. The C primitives here (C.links, C.toxic, ...) are what prelude.lua builds
 * t:link, t:partition, t:isolate and t:heal on. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "harness/luax.h"
#include "harness/scenario.h"
#include "lib/buf.h"
#include "lib/err.h"

/* The harness address links listen on: 127.X.0.2 (127.X.0.1 holds the run's lock). */
#define LINK_HOST_INDEX 2

/* ------------------------------------------------------------ lifecycle ---- */

static size_t count_links(fl_scenario_t *sc)
{
    size_t n = sc->broker ? sc->ninst : 0; /* every instance reaches the broker */
    for (size_t ci = 0; ci < sc->ninst; ci++) {
        fl_service_t *svc = fl_topology_find(&sc->e->topo, sc->inst[ci].service);
        for (char **need = svc->needs; *need; need++)
            for (size_t si = 0; si < sc->ninst; si++)
                n += strcmp(sc->inst[si].service, *need) == 0;
    }
    return n;
}

int fl_sc_links_open(fl_scenario_t *sc)
{
    fl_run_t *run = sc->e->run;
    size_t n = count_links(sc);
    if (n == 0)
        return 0;
    sc->links = calloc(n, sizeof *sc->links);
    if (!sc->links)
        return FL_ENOMEM;
    char host[32];
    fl_addr_harness(&run->addr, LINK_HOST_INDEX, host, sizeof host);
    for (size_t ci = 0; ci < sc->ninst; ci++) {
        fl_instance_t *c = &sc->inst[ci];
        fl_service_t *svc = fl_topology_find(&sc->e->topo, c->service);
        for (char **need = svc->needs; *need; need++) {
            for (size_t si = 0; si < sc->ninst; si++) {
                fl_instance_t *s = &sc->inst[si];
                if (strcmp(s->service, *need) != 0)
                    continue;
                fl_sc_link_t *sl = &sc->links[sc->nlinks++];
                sl->client = ci;
                sl->server = si;
                fl_link_t *l = &sl->link;
                snprintf(l->name, sizeof l->name, "%s->%s", c->name, s->name);
                snprintf(l->client, sizeof l->client, "%s", c->name);
                snprintf(l->server, sizeof l->server, "%s", s->name);
                l->tl = &sc->tl;
                l->data = sc;
                int rc = fl_link_open(run->loop, l, host, 0, s->host, s->port, &sc->link_rng);
                if (rc)
                    return rc; /* counted in nlinks: teardown closes it */
            }
        }
        if (sc->broker) {
            fl_sc_link_t *sl = &sc->links[sc->nlinks++];
            sl->client = ci;
            sl->server = sc->ninst;
            fl_link_t *l = &sl->link;
            snprintf(l->name, sizeof l->name, "%s->broker", c->name);
            snprintf(l->client, sizeof l->client, "%s", c->name);
            snprintf(l->server, sizeof l->server, "broker");
            l->tl = &sc->tl;
            l->data = sc;
            int rc = fl_link_open(run->loop, l, host, 0, sc->broker_host, fl_sc_broker_port(sc),
                                  &sc->link_rng);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void fl_sc_links_addr(fl_scenario_t *sc, size_t ci, const char *service, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t k = 0; k < sc->nlinks; k++) {
        fl_sc_link_t *sl = &sc->links[k];
        if (sl->client != ci || sl->server == sc->ninst ||
            strcmp(sc->inst[sl->server].service, service) != 0)
            continue;
        int w = snprintf(out + len, n - len, "%s%s:%d", len ? "," : "", sl->link.listen_host,
                         sl->link.listen_port);
        if (w < 0 || (size_t)w >= n - len)
            return;
        len += (size_t)w;
    }
}

static void link_closed(fl_link_t *l)
{
    fl_scenario_t *sc = l->data;
    if (--sc->links_left == 0)
        sc->links_closed(sc);
}

/* Faults still on at the end go on the timeline with what they did, one event per fault
 * (its toxics summed over all its links, named after the first toxic) closing its interval by
 * id, so a report can tell whether each fault fired even if it was never removed. Toxics
 * added without a fault id are grouped by name. */
static void record_leftovers(fl_scenario_t *sc)
{
    struct {
        const char *name;
        uint64_t fault_id;
        size_t links;
        fl_toxic_stats_t sum;
    } seen[64];
    size_t nseen = 0;
    for (size_t k = 0; k < sc->nlinks; k++) {
        for (fl_toxic_t *t = sc->links[k].link.toxics; t; t = t->next) {
            size_t i = 0;
            while (i < nseen && (seen[i].fault_id != t->fault_id ||
                                 (!t->fault_id && strcmp(seen[i].name, t->name) != 0)))
                i++;
            if (i == nseen) {
                if (nseen == sizeof seen / sizeof seen[0])
                    continue;
                memset(&seen[nseen], 0, sizeof seen[0]);
                seen[nseen].fault_id = t->fault_id;
                seen[nseen++].name = t->name;
            }
            seen[i].links++;
            seen[i].sum.connections += t->stats.connections;
            seen[i].sum.chunks += t->stats.chunks;
            seen[i].sum.bytes += t->stats.bytes;
            seen[i].sum.dropped += t->stats.dropped;
            seen[i].sum.resets += t->stats.resets;
            seen[i].sum.closes += t->stats.closes;
            seen[i].sum.refused += t->stats.refused;
        }
    }
    for (size_t i = 0; i < nseen; i++) {
        const fl_toxic_stats_t *st = &seen[i].sum;
        int fired = st->chunks || st->bytes || st->resets || st->closes || st->refused;
        fl_fault_counts_t c = {1,           st->connections, st->chunks, st->bytes,
                               st->dropped, st->resets,      st->closes, st->refused};
        fl_timeline_fault(
            &sc->tl, seen[i].name, NULL, seen[i].fault_id ? FL_FAULT_OFF : FL_FAULT_NONE,
            seen[i].fault_id, &c,
            "still on at the end on %zu link%s: applied to %llu connections, chunks "
            "%llu, bytes %llu, dropped %llu, resets %llu, closes %llu, refused %llu%s",
            seen[i].links, seen[i].links == 1 ? "" : "s", (unsigned long long)st->connections,
            (unsigned long long)st->chunks, (unsigned long long)st->bytes,
            (unsigned long long)st->dropped, (unsigned long long)st->resets,
            (unsigned long long)st->closes, (unsigned long long)st->refused,
            fired ? "" : " (never fired)");
    }
}

void fl_sc_links_close(fl_scenario_t *sc, void (*cb)(fl_scenario_t *sc))
{
    record_leftovers(sc);
    sc->links_closed = cb;
    sc->links_left = sc->nlinks;
    if (sc->nlinks == 0) {
        cb(sc);
        return;
    }
    for (size_t k = 0; k < sc->nlinks; k++)
        fl_link_close(&sc->links[k].link, link_closed);
}

/* ------------------------------------------------------------ selecting ---- */

static void suggest_name(lua_State *L, fl_scenario_t *sc, const char *name, const char *what)
{
    size_t n = (size_t)sc->e->topo.nservices + sc->ninst;
    const char **names = calloc(n + 1, sizeof *names);
    size_t k = 0;
    for (int i = 0; names && i < sc->e->topo.nservices; i++)
        names[k++] = sc->e->topo.services[i].name;
    for (size_t i = 0; names && i < sc->ninst; i++)
        names[k++] = sc->inst[i].name;
    const char *sug = names ? fl_lua_suggest(name, names) : NULL;
    char hint[128] = "";
    if (sug)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", sug);
    free(names);
    fl_lua_usage(L, "%s: no service or instance named '%s'%s", what, name, hint);
}

/* Marks in sel the instances the value at idx names: an instance handle, a service or
 * instance name, or a list of those. */
static void select_set(lua_State *L, fl_scenario_t *sc, int idx, char *sel, const char *what)
{
    idx = lua_absindex(L, idx);
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        int found = 0;
        if (sc->broker && strcmp(name, "broker") == 0) {
            sel[sc->ninst] = 1; /* the fake broker, one past the instances */
            return;
        }
        for (size_t i = 0; i < sc->ninst; i++)
            if (strcmp(sc->inst[i].service, name) == 0 || strcmp(sc->inst[i].name, name) == 0)
                sel[i] = found = 1;
        if (!found)
            suggest_name(L, sc, name, what);
        return;
    }
    if (lua_istable(L, idx)) {
        size_t n = lua_rawlen(L, idx);
        if (n == 0)
            fl_lua_usage(L, "%s: the list is empty", what);
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            if (lua_istable(L, -1))
                fl_lua_usage(L, "%s: lists must hold instances or names, not lists", what);
            select_set(L, sc, -1, sel, what);
            lua_pop(L, 1);
        }
        return;
    }
    if (lua_isuserdata(L, idx)) {
        fl_instance_t *inst = fl_sc_check_inst(L, idx, what);
        sel[inst - sc->inst] = 1;
        return;
    }
    fl_lua_usage(L,
                 "%s: expected an instance, a service or instance name, or a list of them, got %s",
                 what, fl_lua_typename(L, idx));
}

static char *new_selection(lua_State *L, fl_scenario_t *sc)
{
    /* a userdata, so the memory goes with the Lua stack even if a usage error is raised */
    char *sel = lua_newuserdatauv(L, sc->ninst + 1, 0);
    memset(sel, 0, sc->ninst + 1);
    return sel;
}

/* C.links(t, a, b, what, allow_empty) → list of link ids from instances in a to ones in b */
static int c_links(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *what = luaL_checkstring(L, 4);
    int allow_empty = lua_toboolean(L, 5);
    char *from = new_selection(L, sc), *to = new_selection(L, sc);
    select_set(L, sc, 2, from, what);
    select_set(L, sc, 3, to, what);
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t k = 0; k < sc->nlinks; k++)
        if (from[sc->links[k].client] && to[sc->links[k].server]) {
            lua_pushinteger(L, (lua_Integer)k + 1);
            lua_rawseti(L, -2, ++n);
        }
    if (n == 0 && !allow_empty)
        fl_lua_usage(L,
                     "%s: no link from %s to %s (links exist only where a service `needs` "
                     "the other)",
                     what, luaL_tolstring(L, 2, NULL), luaL_tolstring(L, 3, NULL));
    return 1;
}

/* C.others(t, a, what) → list of every instance not in a */
static int c_others(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    char *sel = new_selection(L, sc);
    select_set(L, sc, 2, sel, luaL_checkstring(L, 3));
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t i = 0; i < sc->ninst; i++)
        if (!sel[i]) {
            lua_pushstring(L, sc->inst[i].name);
            lua_rawseti(L, -2, ++n);
        }
    if (sc->broker && !sel[sc->ninst]) {
        lua_pushstring(L, "broker");
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static fl_link_t *check_link(lua_State *L, fl_scenario_t *sc, int idx)
{
    lua_Integer k = luaL_checkinteger(L, idx);
    if (k < 1 || (size_t)k > sc->nlinks)
        luaL_error(L, "internal error: bad link id %d", (int)k);
    return &sc->links[k - 1].link;
}

/* ------------------------------------------------------------ toxics ---- */

static const char *const common_keys[] = {"direction", "toxicity", "first", "name", NULL};

static int is_common(const char *k)
{
    for (size_t i = 0; common_keys[i]; i++)
        if (strcmp(k, common_keys[i]) == 0)
            return 1;
    return 0;
}

/* Reads opts (a table at idx) into spec for a toxic of the given type: usage errors for
 * unknown keys (with a suggestion) and for values of the wrong type. Strings in spec point
 * into the Lua table, which stays on the stack. */
static void read_spec(lua_State *L, int idx, const fl_toxic_type_t *type, fl_toxic_spec_t *spec)
{
    const char *known[FL_TOXIC_MAX_PARAMS + 5];
    size_t nk = 0;
    for (int i = 0; i < FL_TOXIC_MAX_PARAMS && type->params[i].name; i++)
        known[nk++] = type->params[i].name;
    for (size_t i = 0; common_keys[i]; i++)
        known[nk++] = common_keys[i];
    known[nk] = NULL;
    char what[64];
    snprintf(what, sizeof what, "%s option", type->name);
    fl_lua_check_keys(L, idx, what, known);

    lua_getfield(L, idx, "direction");
    if (!lua_isnil(L, -1)) {
        const char *d = lua_tostring(L, -1);
        spec->dirs = lua_type(L, -1) == LUA_TSTRING ? fl_dirs_parse(d) : 0;
        if (!spec->dirs)
            fl_lua_usage(L,
                         "%s: direction must be \"upstream\", \"downstream\" or \"both\", got %s",
                         type->name, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "toxicity");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            fl_lua_usage(L, "%s: toxicity must be a number from 0 to 1, got %s", type->name,
                         fl_lua_typename(L, -1));
        spec->toxicity = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "first");
    if (!lua_isnil(L, -1)) {
        int isint = 0;
        lua_Integer f = lua_tointegerx(L, -1, &isint);
        if (!isint || f < 0)
            fl_lua_usage(L, "%s: first must be a whole number of connections (0 or more), got %s",
                         type->name, luaL_tolstring(L, -1, NULL));
        spec->first = (long)f;
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "name");
    if (!lua_isnil(L, -1))
        spec->name = fl_lua_check_string(L, -1, "toxic name");
    lua_pop(L, 1);

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *k = lua_tostring(L, -2);
        if (!is_common(k)) {
            if (lua_type(L, -1) != LUA_TNUMBER)
                fl_lua_usage(L, "%s: %s must be a number, got %s", type->name, k,
                             fl_lua_typename(L, -1));
            spec->pname[spec->nparams] = k;
            spec->pvalue[spec->nparams++] = lua_tonumber(L, -1);
        }
        lua_pop(L, 1);
    }
}

/* C.toxic(t, ids, kind, opts, [fault_id]) → list of { id = link id, name = toxic name }; the
 * toxics remember fault_id, so a fault still on at the end closes its timeline interval. */
static int c_toxic(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *kind = luaL_checkstring(L, 3);
    uint64_t fault_id = lua_isinteger(L, 5) ? (uint64_t)lua_tointeger(L, 5) : 0;
    const fl_toxic_type_t *type = fl_toxic_type_find(kind);
    if (!type)
        return luaL_error(L, "internal error: unknown toxic %s", kind);
    if (!lua_isnoneornil(L, 4) && !lua_istable(L, 4))
        fl_lua_usage(L, "%s expects a table of options like { %s = ... }, got %s", kind,
                     type->params[0].name ? type->params[0].name : "first", fl_lua_typename(L, 4));
    if (lua_isnoneornil(L, 4)) {
        lua_settop(L, 3);
        lua_newtable(L);
    }
    fl_toxic_spec_t spec;
    fl_toxic_spec_init(&spec, kind);
    read_spec(L, 4, type, &spec);

    size_t n = lua_rawlen(L, 2);
    long *shared = NULL;
    if (spec.first >= 0 && n > 1) { /* one `first` budget across all the links */
        long **c = realloc(sc->counters, (sc->ncounters + 1) * sizeof *c);
        if (!c || !(shared = calloc(1, sizeof *shared))) {
            if (c)
                sc->counters = c;
            return luaL_error(L, "out of memory");
        }
        sc->counters = c;
        sc->counters[sc->ncounters++] = shared;
    }
    spec.shared = shared;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, (lua_Integer)i);
        fl_link_t *l = check_link(L, sc, -1);
        lua_Integer id = lua_tointeger(L, -1);
        lua_pop(L, 1);
        char err[256];
        fl_toxic_t *t = NULL;
        int rc = fl_link_add_toxic(l, &spec, &t, err, sizeof err);
        if (rc) {
            /* undo the links done so far: a fault is all or nothing */
            for (size_t j = 1; j < i; j++) {
                lua_rawgeti(L, -1, (lua_Integer)j);
                lua_getfield(L, -1, "id");
                lua_getfield(L, -2, "name");
                fl_link_remove_toxic(&sc->links[lua_tointeger(L, -2) - 1].link,
                                     lua_tostring(L, -1));
                lua_pop(L, 3);
            }
            if (rc == FL_EINVAL)
                fl_lua_usage(L, "%s", err);
            return luaL_error(L, "%s", fl_strerror(rc));
        }
        t->fault_id = fault_id;
        lua_createtable(L, 0, 2);
        lua_pushinteger(L, id);
        lua_setfield(L, -2, "id");
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_rawseti(L, -2, (lua_Integer)i);
    }
    return 1;
}

static void push_toxic_stats(lua_State *L, const fl_toxic_t *t)
{
    const fl_toxic_stats_t *s = &t->stats;
    lua_createtable(L, 0, 10);
    lua_pushstring(L, t->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, t->type->name);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, fl_dirs_name(t->dirs));
    lua_setfield(L, -2, "direction");
#define FIELD(f)                                                                                   \
    lua_pushinteger(L, (lua_Integer)s->f);                                                         \
    lua_setfield(L, -2, #f)
    FIELD(connections);
    FIELD(chunks);
    FIELD(bytes);
    FIELD(dropped);
    FIELD(resets);
    FIELD(closes);
    FIELD(refused);
#undef FIELD
}

/* C.toxic_stats(t, id, name) → stats table, or nil when the toxic is gone */
static int c_toxic_stats(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_link_t *l = check_link(L, sc, 2);
    fl_toxic_t *t = fl_link_find_toxic(l, luaL_checkstring(L, 3));
    if (!t)
        return 0;
    push_toxic_stats(L, t);
    return 1;
}

/* C.untoxic(t, id, name) → the toxic's final stats (nil if it was already gone) */
static int c_untoxic(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_link_t *l = check_link(L, sc, 2);
    const char *name = luaL_checkstring(L, 3);
    fl_toxic_t *t = fl_link_find_toxic(l, name);
    if (!t)
        return 0;
    push_toxic_stats(L, t);
    fl_link_remove_toxic(l, name);
    return 1;
}

/* C.link_stats(t, id) → table */
static int c_link_stats(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_link_t *l = check_link(L, sc, 2);
    lua_createtable(L, 0, 12);
    lua_pushstring(L, l->name);
    lua_setfield(L, -2, "name");
    lua_pushfstring(L, "%s:%d", l->listen_host, l->listen_port);
    lua_setfield(L, -2, "listen");
    lua_pushfstring(L, "%s:%d", l->up_host, l->up_port);
    lua_setfield(L, -2, "upstream");
#define FIELD(name, v)                                                                             \
    lua_pushinteger(L, (lua_Integer)(v));                                                          \
    lua_setfield(L, -2, name)
    FIELD("accepted", l->stats.accepted);
    FIELD("active", l->stats.active);
    FIELD("upstream_failed", l->stats.upstream_failed);
    FIELD("refused", l->stats.refused);
    FIELD("resets", l->stats.resets);
    FIELD("bytes_up", l->stats.bytes[FL_DIR_UP]);
    FIELD("bytes_down", l->stats.bytes[FL_DIR_DOWN]);
#undef FIELD
    lua_newtable(L);
    for (fl_toxic_t *t = l->toxics; t; t = t->next) {
        push_toxic_stats(L, t);
        lua_setfield(L, -2, t->name);
    }
    lua_setfield(L, -2, "toxics");
    return 1;
}

/* C.heal(t, id) → number of toxics removed */
static int c_heal(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_link_t *l = check_link(L, sc, 2);
    lua_Integer n = 0;
    for (fl_toxic_t *t = l->toxics; t; t = t->next)
        n++;
    fl_link_heal(l);
    lua_pushinteger(L, n);
    return 1;
}

/* C.drop(t, id, reset) */
static int c_drop(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_link_drop_connections(check_link(L, sc, 2), lua_toboolean(L, 3));
    return 0;
}

/* C.all_links(t) → list of every link id */
static int c_all_links(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    lua_createtable(L, (int)sc->nlinks, 0);
    for (size_t k = 0; k < sc->nlinks; k++) {
        lua_pushinteger(L, (lua_Integer)k + 1);
        lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
    return 1;
}

/* C.link_name(t, id) */
static int c_link_name(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    lua_pushstring(L, check_link(L, sc, 2)->name);
    return 1;
}

/* C.toxic_kinds() → list of toxic names, in registry order */
static int c_toxic_kinds(lua_State *L)
{
    lua_newtable(L);
    for (size_t i = 0; fl_toxic_types[i]; i++) {
        lua_pushstring(L, fl_toxic_types[i]->name);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static uint64_t count_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v > 0 ? (uint64_t)v : 0;
}

/* C.fault(t, subject, text, [phase], [id], [stats]): a fault event on the timeline, at the
 * user's line; phase "on" opens the interval of fault id, "off" closes it with its stats
 * (fault:stats() fields). Returns the id (a new one when none is given). */
static int c_fault(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *subject = luaL_checkstring(L, 2), *text = luaL_checkstring(L, 3);
    fl_fault_phase_t phase = fl_sc_check_phase(L, 4);
    uint64_t id = lua_isnoneornil(L, 5) ? fl_sc_fault_id(sc) : (uint64_t)luaL_checkinteger(L, 5);
    fl_fault_counts_t counts = {0};
    if (lua_istable(L, 6)) {
        counts.known = 1;
        counts.connections = count_field(L, 6, "connections");
        counts.chunks = count_field(L, 6, "chunks");
        counts.bytes = count_field(L, 6, "bytes");
        counts.dropped = count_field(L, 6, "dropped");
        counts.resets = count_field(L, 6, "resets");
        counts.closes = count_field(L, 6, "closes");
        counts.refused = count_field(L, 6, "refused");
    }
    char where[256];
    fl_sc_where(L, sc, where, sizeof where);
    fl_timeline_fault(&sc->tl, subject, where, phase, id, &counts, "%s", text);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* C.no_key(what, key, methods): usage error for an unknown method of a Lua-side object */
static int c_no_key(lua_State *L)
{
    const char *what = luaL_checkstring(L, 1);
    const char *key = luaL_tolstring(L, 2, NULL);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *sug = fl_lua_suggest_key(L, 3, key);
    if (sug)
        return fl_lua_usage(L, "%s has no method or field '%s' (did you mean '%s'?)", what, key,
                            sug);
    return fl_lua_usage(L, "%s has no method or field '%s'", what, key);
}

void fl_sc_links_register(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"links", c_links},
        {"others", c_others},
        {"toxic", c_toxic},
        {"toxic_stats", c_toxic_stats},
        {"untoxic", c_untoxic},
        {"link_stats", c_link_stats},
        {"heal", c_heal},
        {"drop", c_drop},
        {"all_links", c_all_links},
        {"link_name", c_link_name},
        {"toxic_kinds", c_toxic_kinds},
        {"fault", c_fault},
        {"no_key", c_no_key},
        {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}

/* The scenario engine (engine.h): Lua state per file, the `t` object, and the coroutine
 * that runs each scenario. Waiting calls are C functions that record what they wait for in
 * sc->wait and yield; a libuv callback (a timer, an instance's state change) resumes the
 * coroutine with (ok, message). The parts of the API that read best in Lua live in
 * prelude.lua on top of the primitives registered here in the table C. */
#include "harness/engine.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "harness/luax.h"
#include "harness/scenario.h"
#include "harness/run.h"
#include "harness/supervisor.h"
#include "harness/topology.h"
#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/err.h"
#include "lib/strv.h"

#define T_MT "faultline.t"
#define INSTANCE_MT "faultline.instance"
#define METHODS_KEY "faultline.t.methods"
#define MAIN_KEY "faultline.main"
#define FIELDS_KEY "faultline.fields"
#define BACKGROUND_KEY "faultline.background"
#define ENDING_KEY "faultline.ending"
#define RNG_MT "faultline.rng"
#define HOOK_EVERY 10000           /* instructions between deadline checks */
#define LOG_KEEP_BYTES (16 * 1024) /* of each instance's output, kept for reports */
#define LOG_BEFORE_FAILURE 4096    /* ...or more, to keep this much from before a failure */
#define LOG_KEEP_MAX (64 * 1024)   /* ...but never more than this */

extern const unsigned char fl_prelude_lua[];
extern const size_t fl_prelude_lua_len;

/* ---------------------------------------------------------------- access helpers ---- */

static fl_engine_t *engine_of(lua_State *L)
{
    return *(fl_engine_t **)lua_getextraspace(L);
}

fl_scenario_t *fl_sc_check_t(lua_State *L, int idx)
{
    t_box_t *b = luaL_testudata(L, idx, T_MT);
    if (!b)
        fl_lua_usage(L, "expected the scenario object t (call methods as t:name(...)), got %s",
                     fl_lua_typename(L, idx));
    if (!b->e->cur || b->e->gen != b->gen)
        fl_lua_usage(L, "this t belongs to a scenario that has ended");
    return b->e->cur;
}

fl_instance_t *fl_sc_check_inst(lua_State *L, int idx, const char *what)
{
    fl_engine_t *e = engine_of(L);
    fl_scenario_t *sc = e->cur;
    if (sc && lua_type(L, idx) == LUA_TSTRING) { /* "users-2" is accepted too */
        const char *name = lua_tostring(L, idx);
        for (size_t i = 0; i < sc->ninst; i++)
            if (strcmp(sc->inst[i].name, name) == 0)
                return &sc->inst[i];
        fl_lua_usage(L, "bad %s argument: no instance named '%s'", what, name);
    }
    inst_box_t *b = luaL_testudata(L, idx, INSTANCE_MT);
    if (!b)
        fl_lua_usage(L,
                     "bad %s argument: expected an instance (from t:instance(service, n)), got %s",
                     what, fl_lua_typename(L, idx));
    if (!sc || b->gen != e->gen)
        fl_lua_usage(L, "bad %s argument: this instance belongs to a scenario that has ended",
                     what);
    return &sc->inst[b->idx];
}

void fl_sc_push_inst(lua_State *L, fl_scenario_t *sc, fl_instance_t *inst)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, sc->t_ref);
    lua_getiuservalue(L, -1, 1);
    lua_rawgeti(L, -1, (lua_Integer)(inst - sc->inst) + 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

void fl_sc_where(lua_State *L, fl_scenario_t *sc, char *out, size_t n)
{
    fl_lua_where(L, out, n);
    if (!out[0])
        snprintf(out, n, "%s",
                 sc->in_background && sc->bg_where[0] ? sc->bg_where : sc->decl->where);
}

/* Where each instance's log stood when the scenario first failed, so the reports can show
 * the lines around the failure rather than only the last ones. */
static void mark_logs(fl_scenario_t *sc)
{
    if (sc->fail_marks || !sc->ninst)
        return;
    sc->fail_marks = calloc(sc->ninst, sizeof *sc->fail_marks);
    for (size_t i = 0; sc->fail_marks && i < sc->ninst; i++)
        sc->fail_marks[i] = sc->inst[i].log.total;
}

/* Records a failed assertion: the first one becomes the scenario's message. */
static void record_failure(fl_scenario_t *sc, const char *where, const char *msg)
{
    mark_logs(sc);
    sc->nfailed++;
    if (!sc->res->message) {
        sc->res->message = strdup(msg);
        sc->res->where = strdup(where);
    }
}

static void assertion(lua_State *L, fl_scenario_t *sc, int ok, const char *msg, int stop)
{
    char where[256];
    fl_sc_where(L, sc, where, sizeof where);
    fl_timeline_add(&sc->tl, FL_EV_ASSERT, ok, "", where, "%s", msg);
    if (ok)
        return;
    record_failure(sc, where, msg);
    if (stop)
        fl_lua_raise(L, FL_LUA_FAILURE_MT, where, msg);
}

/* ---------------------------------------------------------------- waiting ---- */

static void resume(fl_scenario_t *sc, int nargs);
static void time_out(fl_scenario_t *sc, const char *how);

/* Yields the scenario coroutine; it is resumed with (ok, message) or nothing (sleep). */
static int wait_yield(lua_State *L, fl_scenario_t *sc, lua_KFunction k)
{
    if (L != sc->co)
        fl_lua_usage(L, "waiting calls (t:sleep, t:start, t:eventually...) must run in the "
                        "scenario itself, not in a coroutine it created or a load's request "
                        "function");
    return lua_yieldk(L, 0, 0, k);
}

static void wake_cb(uv_timer_t *t);

int fl_sc_wait_external(lua_State *L, fl_scenario_t *sc, void *token, lua_KFunction k,
                        lua_KContext ctx)
{
    if (L != sc->co)
        fl_lua_usage(L, "waiting calls (t:sleep, t:http, load:wait...) must run in the scenario "
                        "itself, not in a coroutine it created or a load's request function");
    sc->wait.kind = WAIT_EXTERNAL;
    sc->wait.inst = NULL;
    sc->wait.ext = token;
    return lua_yieldk(L, 0, ctx, k);
}

void fl_sc_wake(fl_scenario_t *sc, void *token)
{
    if (sc->phase != SC_RUNNING || sc->wait.kind != WAIT_EXTERNAL || sc->wait.ext != token)
        return;
    /* resumed from the timer, never from inside the caller's callback */
    sc->wait.kind = WAIT_SLEEP;
    sc->wait.ext = NULL;
    uv_timer_start(&sc->wake, wake_cb, 0, 0);
}

static void wait_done(fl_scenario_t *sc, int ok, const char *msg)
{
    if (sc->wait.kind == WAIT_NONE || sc->in_resume || sc->phase != SC_RUNNING)
        return;
    wait_kind_t kind = sc->wait.kind;
    sc->wait.kind = WAIT_NONE;
    sc->wait.inst = NULL;
    uv_timer_stop(&sc->wake);
    if (kind == WAIT_SLEEP) {
        resume(sc, 0);
        return;
    }
    lua_pushboolean(sc->co, ok);
    lua_pushstring(sc->co, msg ? msg : "");
    resume(sc, 2);
}

static void wake_cb(uv_timer_t *t)
{
    fl_scenario_t *sc = t->data;
    if (sc->wait.kind == WAIT_SLEEP) {
        wait_done(sc, 1, NULL);
        return;
    }
    fl_instance_t *inst = sc->wait.inst;
    char dur[32], msg[256];
    fl_dur_format(sc->wait.timeout_ns, dur, sizeof dur);
    if (sc->wait.kind == WAIT_READY)
        snprintf(msg, sizeof msg, "%s%s not ready within %s (state: %s)", sc->wait.prefix,
                 inst->name, dur, fl_inst_state_name(inst->state));
    else
        snprintf(msg, sizeof msg, "%s%s still running %s after it was told to stop",
                 sc->wait.prefix, inst->name, dur);
    wait_done(sc, 0, msg);
}

/* Is the wait on inst over? 1 yes (ok), -1 yes (failed, msg set), 0 not yet. */
static int wait_check(fl_scenario_t *sc, fl_instance_t *inst, wait_kind_t kind, char *msg,
                      size_t msglen)
{
    if (kind == WAIT_DOWN)
        return inst->state == FL_INST_DOWN;
    if (inst->state == FL_INST_UP)
        return 1;
    if (inst->state == FL_INST_DOWN) {
        char how[64];
        fl_instance_describe_exit(inst, how, sizeof how);
        snprintf(msg, msglen, "%s%s %s before it was ready", sc->wait.prefix, inst->name, how);
        return -1;
    }
    return 0;
}

static void on_change(fl_instance_t *inst, void *arg);

static void all_down_then_close(fl_scenario_t *sc);

static void on_change(fl_instance_t *inst, void *arg)
{
    fl_scenario_t *sc = arg;
    if (sc->phase == SC_STOPPING) {
        all_down_then_close(sc);
        return;
    }
    if (sc->wait.inst != inst || sc->in_resume || sc->in_background)
        return; /* a background task's change is looked at once the task returns */
    char msg[256] = "";
    int r = wait_check(sc, inst, sc->wait.kind, msg, sizeof msg);
    if (r)
        wait_done(sc, r > 0, msg);
}

static int k_wait_result(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (!lua_toboolean(L, -2)) {
        fl_scenario_t *sc = engine_of(L)->cur;
        char where[256];
        fl_sc_where(L, sc, where, sizeof where);
        const char *msg = lua_tostring(L, -1);
        fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "%s", msg);
        record_failure(sc, where, msg);
        return fl_lua_raise(L, FL_LUA_FAILURE_MT, where, msg);
    }
    return 0;
}

static int k_nothing(lua_State *L, int status, lua_KContext ctx)
{
    (void)L;
    (void)status;
    (void)ctx;
    return 0;
}

/* ---------------------------------------------------------------- C primitives ---- */

static int c_usage(lua_State *L)
{
    return fl_lua_usage(L, "%s", luaL_checkstring(L, 1));
}

static int c_typename(lua_State *L)
{
    lua_pushstring(L, fl_lua_typename(L, 1));
    return 1;
}

static int c_seconds(lua_State *L)
{
    const char *what = luaL_optstring(L, 2, "duration");
    lua_pushnumber(L, fl_lua_check_dur(L, 1, what) / 1e9);
    return 1;
}

static int c_fmt(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    char out[32];
    fl_dur_format(s > 0 ? (uint64_t)(s * 1e9) : 0, out, sizeof out);
    lua_pushstring(L, out);
    return 1;
}

static int c_now(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    lua_pushnumber(L, (uv_hrtime() - sc->start_ns) / 1e9);
    return 1;
}

static int c_record(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    assertion(L, sc, lua_toboolean(L, 2), luaL_checkstring(L, 3), 0);
    return 0;
}

static int c_fail(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    assertion(L, sc, 0, luaL_checkstring(L, 2), 1);
    return 0;
}

static int c_ours(lua_State *L)
{
    const char *m, *w;
    lua_pushboolean(L, fl_lua_error_kind(L, 1, &m, &w) != NULL);
    return 1;
}

/* The strings of the list at idx into out, NULL-terminated (at most max - 1 of them); they
 * stay valid while the list does. */
static void string_list(lua_State *L, int idx, const char **out, size_t max)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    size_t n = lua_rawlen(L, idx), k = 0;
    for (size_t i = 0; i < n && k + 1 < max; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        out[k++] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    out[k] = NULL;
}

static int c_keys(lua_State *L)
{
    if (lua_isnil(L, 1))
        return 0;
    const char *what = luaL_checkstring(L, 2);
    const char *allowed[16];
    string_list(L, 3, allowed, sizeof allowed / sizeof allowed[0]);
    fl_lua_check_keys(L, 1, what, allowed);
    return 0;
}

static int c_instance(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, luaL_checkstring(L, 3));
    fl_sc_push_inst(L, engine_of(L)->cur, inst);
    return 1;
}

static int c_grace(lua_State *L)
{
    fl_instance_t *inst = fl_sc_check_inst(L, 1, "grace");
    lua_pushnumber(L, inst->grace_ns / 1e9);
    return 1;
}

fl_fault_phase_t fl_sc_check_phase(lua_State *L, int idx)
{
    static const char *const names[] = {"once", "on", "off", NULL};
    static const fl_fault_phase_t phases[] = {FL_FAULT_ONCE, FL_FAULT_ON, FL_FAULT_OFF};
    return phases[luaL_checkoption(L, idx, "once", names)];
}

uint64_t fl_sc_fault_id(fl_scenario_t *sc)
{
    return ++sc->next_fault_id;
}

void fl_sc_fault_switch(fl_scenario_t *sc, const char *subject, const char *key, int on,
                        const char *where, const char *text)
{
    size_t i = 0;
    while (i < sc->nswitches && strcmp(sc->switches[i].key, key) != 0)
        i++;
    if (i < sc->nswitches) { /* close the interval that is open under key */
        uint64_t id = sc->switches[i].id;
        sc->switches[i] = sc->switches[--sc->nswitches];
        fl_timeline_fault(&sc->tl, subject, where, FL_FAULT_OFF, id, NULL, "%s",
                          on ? "replaced" : text);
    } else if (!on) { /* nothing was on: an instant, as before */
        fl_timeline_fault(&sc->tl, subject, where, FL_FAULT_ONCE, fl_sc_fault_id(sc), NULL, "%s",
                          text);
        return;
    }
    if (!on)
        return;
    uint64_t id = fl_sc_fault_id(sc);
    if (sc->nswitches < sizeof sc->switches / sizeof sc->switches[0]) {
        snprintf(sc->switches[sc->nswitches].key, sizeof sc->switches[0].key, "%s", key);
        sc->switches[sc->nswitches++].id = id;
    }
    fl_timeline_fault(&sc->tl, subject, where, FL_FAULT_ON, id, NULL, "%s", text);
}

/* C.fault_id(t) → a new fault id */
static int c_fault_id(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)fl_sc_fault_id(fl_sc_check_t(L, 1)));
    return 1;
}

/* C.act(t, inst, text, [phase], [id]): a process fault (crash, pause...) on the timeline */
static int c_act(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "action");
    const char *text = luaL_checkstring(L, 3);
    fl_fault_phase_t phase = fl_sc_check_phase(L, 4);
    uint64_t id = lua_isnoneornil(L, 5) ? fl_sc_fault_id(sc) : (uint64_t)luaL_checkinteger(L, 5);
    char where[256];
    fl_sc_where(L, sc, where, sizeof where);
    fl_timeline_fault(&sc->tl, inst->name, where, phase, id, NULL, "%s", text);
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static int c_phase(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "", NULL, "%s started", luaL_checkstring(L, 2));
    sc->body_ns = uv_hrtime() - sc->start_ns;
    return 0;
}

/* A Lua error (not a usage error) located at the user's line, not the prelude's. */
static int user_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int user_error(lua_State *L, const char *fmt, ...)
{
    char where[256], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fl_lua_where(L, where, sizeof where);
    lua_pushfstring(L, "%s%s%s", where, where[0] ? ": " : "", msg);
    return lua_error(L);
}

static int not_running(lua_State *L, fl_instance_t *inst, const char *verb)
{
    return user_error(L, "cannot %s %s: it is %s", verb, inst->name,
                      fl_inst_state_name(inst->state));
}

static int c_spawn(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "start");
    int rc = fl_instance_start(inst);
    if (rc == FL_ESTATE)
        return user_error(L, "cannot start %s: it is already %s", inst->name,
                          fl_inst_state_name(inst->state));
    if (rc)
        return user_error(L, "cannot start %s: %s", inst->name, fl_strerror(rc));
    return 0;
}

static int c_kill(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "crash");
    if (fl_instance_crash(inst) != 0)
        return not_running(L, inst, "crash");
    return 0;
}

static int c_term(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "stop");
    double grace = luaL_checknumber(L, 3);
    if (fl_instance_stop(inst, (uint64_t)(grace * 1e9)) != 0)
        return not_running(L, inst, "stop");
    return 0;
}

static int c_pause(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "pause");
    if (fl_instance_pause(inst) != 0)
        return not_running(L, inst, "pause");
    return 0;
}

/* C.stopped(t, inst) → true once every process of a paused instance has stopped */
static int c_stopped(lua_State *L)
{
    fl_sc_check_t(L, 1);
    lua_pushboolean(L, fl_instance_stopped(fl_sc_check_inst(L, 2, "pause")));
    return 1;
}

static int c_resume(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "resume");
    if (fl_instance_resume(inst) != 0)
        return user_error(L, "cannot resume %s: it is %s, not paused", inst->name,
                          fl_inst_state_name(inst->state));
    return 0;
}

/* C.await(t, inst, "ready"|"down", [timeout seconds], [message prefix]) */
static int c_await(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "await");
    const char *what = luaL_checkstring(L, 3);
    wait_kind_t kind = strcmp(what, "ready") == 0 ? WAIT_READY : WAIT_DOWN;
    fl_service_t *svc = fl_topology_find(&sc->e->topo, inst->service);
    uint64_t timeout =
        lua_isnoneornil(L, 4) ? svc->ready_timeout_ns : (uint64_t)(luaL_checknumber(L, 4) * 1e9);
    snprintf(sc->wait.prefix, sizeof sc->wait.prefix, "%s", luaL_optstring(L, 5, ""));
    char msg[256] = "";
    int r = wait_check(sc, inst, kind, msg, sizeof msg);
    if (r) {
        lua_pushboolean(L, r > 0);
        lua_pushstring(L, msg);
        return k_wait_result(L, LUA_OK, 0);
    }
    sc->wait.kind = kind;
    sc->wait.inst = inst;
    sc->wait.timeout_ns = timeout;
    uv_timer_start(&sc->wake, wake_cb, timeout / 1000000 + 1, 0);
    return wait_yield(L, sc, k_wait_result);
}

/* C.where(t) → the user's file:line now (the scenario's declaration when there is none) */
static int c_where(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    char where[256];
    fl_sc_where(L, sc, where, sizeof where);
    lua_pushstring(L, where);
    return 1;
}

/* C.bg_where(t, where): the line the background task about to run was started from */
static int c_bg_where(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    snprintf(sc->bg_where, sizeof sc->bg_where, "%s", luaL_optstring(L, 2, ""));
    return 0;
}

static void background_cb(uv_timer_t *h);

/* C.wake_at(t, [seconds]): C.background(t) runs once the scenario is that old (seconds since
 * it started; at once when that is past); nil: not at all. */
static int c_wake_at(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    if (lua_isnoneornil(L, 2)) {
        uv_timer_stop(&sc->bg);
        return 0;
    }
    double at = luaL_checknumber(L, 2);
    uint64_t due = sc->start_ns + (at > 0 ? (uint64_t)(at * 1e9) : 0), now = uv_hrtime();
    uv_timer_start(&sc->bg, background_cb, due > now ? (due - now + 999999) / 1000000 : 0, 0);
    return 0;
}

/* C.fakes(t) → { consul = bool, broker = bool }: which fakes this scenario has */
static int c_fakes(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, sc->consul != NULL);
    lua_setfield(L, -2, "consul");
    lua_pushboolean(L, sc->broker != NULL);
    lua_setfield(L, -2, "broker");
    return 1;
}

/* C.suggest(name, list) → the entry of list nearest to name, or nil */
static int c_suggest(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *names[33];
    string_list(L, 2, names, sizeof names / sizeof names[0]);
    const char *sug = fl_lua_suggest(name, names);
    if (sug)
        lua_pushstring(L, sug);
    else
        lua_pushnil(L);
    return 1;
}

/* C.rng(seed) → a generator of its own (lib/rng.h), apart from t:random's sequence:
 * r:float() in [0, 1), r:below(n) in [0, n). */
static int c_rng(lua_State *L)
{
    lua_Integer seed = luaL_checkinteger(L, 1);
    fl_rng_t *r = lua_newuserdatauv(L, sizeof *r, 0);
    fl_rng_seed(r, (uint64_t)seed);
    luaL_setmetatable(L, RNG_MT);
    return 1;
}

static int rng_float(lua_State *L)
{
    lua_pushnumber(L, fl_rng_double(luaL_checkudata(L, 1, RNG_MT)));
    return 1;
}

static int rng_below(lua_State *L)
{
    fl_rng_t *r = luaL_checkudata(L, 1, RNG_MT);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n > 0, 2, "must be positive");
    lua_pushinteger(L, (lua_Integer)fl_rng_below(r, (uint64_t)n));
    return 1;
}

/* ---------------------------------------------------------------- t methods in C ---- */

static int t_sleep(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    uint64_t ns = fl_lua_check_dur(L, 2, "t:sleep duration");
    sc->wait.kind = WAIT_SLEEP;
    sc->wait.inst = NULL;
    uv_timer_start(&sc->wake, wake_cb, (ns + 999999) / 1000000, 0);
    return wait_yield(L, sc, k_nothing);
}

static const char *opt_message(lua_State *L, int idx, const char *what, const char *def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    if (lua_type(L, idx) != LUA_TSTRING)
        fl_lua_usage(L, "bad %s message: expected a string, got %s", what, fl_lua_typename(L, idx));
    return lua_tostring(L, idx);
}

static int t_expect(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *msg = opt_message(L, 3, "t:expect", "expectation");
    assertion(L, sc, lua_toboolean(L, 2), msg, 0);
    lua_pushboolean(L, lua_toboolean(L, 2));
    return 1;
}

static int t_assert(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *msg = opt_message(L, 3, "t:assert", "assertion");
    assertion(L, sc, lua_toboolean(L, 2), msg, 1);
    lua_settop(L, 2);
    return 1;
}

static int t_note(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    const char *msg = luaL_tolstring(L, 2, NULL);
    char where[256];
    fl_sc_where(L, sc, where, sizeof where);
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "", where, "%s", msg);
    return 0;
}

static const char **service_names(fl_engine_t *e)
{
    const char **names = calloc((size_t)e->topo.nservices + 1, sizeof *names);
    for (int i = 0; names && i < e->topo.nservices; i++)
        names[i] = e->topo.services[i].name;
    return names;
}

fl_service_t *fl_sc_check_service(lua_State *L, fl_engine_t *e, int idx, const char *what)
{
    const char *name = fl_lua_check_string(L, idx, what);
    fl_service_t *s = fl_topology_find(&e->topo, name);
    if (s)
        return s;
    const char **names = service_names(e);
    const char *sug = names ? fl_lua_suggest(name, names) : NULL;
    char hint[128] = "";
    if (sug)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", sug);
    free(names);
    fl_lua_usage(L, "%s: no service named '%s'%s", what, name, hint);
    return NULL;
}

static int t_instance(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *s = fl_sc_check_service(L, sc->e, 2, "t:instance service");
    int isint = 0;
    lua_Integer n = lua_isnoneornil(L, 3) ? 1 : lua_tointegerx(L, 3, &isint);
    if (!lua_isnoneornil(L, 3) && !isint)
        fl_lua_usage(L, "bad t:instance replica: expected a whole number, got %s",
                     fl_lua_typename(L, 3));
    if (n < 1 || n > s->replicas)
        fl_lua_usage(L, "t:instance: service '%s' has replicas 1 to %d, not %lld", s->name,
                     s->replicas, (long long)n);
    for (size_t i = 0; i < sc->ninst; i++)
        if (strcmp(sc->inst[i].service, s->name) == 0 && sc->inst[i].index == n) {
            fl_sc_push_inst(L, sc, &sc->inst[i]);
            return 1;
        }
    return luaL_error(L, "internal error: instance %s-%lld missing", s->name, (long long)n);
}

static int t_instances(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    fl_service_t *s =
        lua_isnoneornil(L, 2) ? NULL : fl_sc_check_service(L, sc->e, 2, "t:instances");
    lua_newtable(L);
    lua_Integer n = 0;
    for (size_t i = 0; i < sc->ninst; i++) {
        if (s && strcmp(sc->inst[i].service, s->name) != 0)
            continue;
        fl_sc_push_inst(L, sc, &sc->inst[i]);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

static int t_log(lua_State *L)
{
    fl_sc_check_t(L, 1);
    fl_instance_t *inst = fl_sc_check_inst(L, 2, "t:log");
    size_t len = 0;
    char *text = fl_ring_tail(&inst->log, 0, &len);
    if (!text)
        return luaL_error(L, "out of memory");
    lua_pushlstring(L, text, len);
    free(text);
    return 1;
}

static int t_now(lua_State *L)
{
    return c_now(L);
}

/* t:random() → [0,1); t:random(n) → [1,n]; t:random(m, n) → [m,n]: like math.random, from
 * the scenario's seeded generator. */
static int t_random(lua_State *L)
{
    fl_scenario_t *sc = fl_sc_check_t(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_pushnumber(L, fl_rng_double(&sc->rng));
        return 1;
    }
    lua_Integer lo = 1, hi;
    if (lua_isnoneornil(L, 3)) {
        hi = luaL_checkinteger(L, 2);
    } else {
        lo = luaL_checkinteger(L, 2);
        hi = luaL_checkinteger(L, 3);
    }
    if (lo > hi)
        fl_lua_usage(L, "bad t:random interval: %lld > %lld", (long long)lo, (long long)hi);
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    uint64_t r = span ? fl_rng_below(&sc->rng, span) : fl_rng_next(&sc->rng);
    lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
    return 1;
}

static const luaL_Reg t_methods[] = {
    {"sleep", t_sleep}, {"expect", t_expect},     {"assert", t_assert},
    {"note", t_note},   {"instance", t_instance}, {"instances", t_instances},
    {"log", t_log},     {"now", t_now},           {"random", t_random},
    {NULL, NULL},
};

static const luaL_Reg c_primitives[] = {
    {"usage", c_usage},       {"typename", c_typename},
    {"seconds", c_seconds},   {"fmt", c_fmt},
    {"now", c_now},           {"record", c_record},
    {"fail", c_fail},         {"ours", c_ours},
    {"keys", c_keys},         {"instance", c_instance},
    {"grace", c_grace},       {"act", c_act},
    {"fault_id", c_fault_id}, {"phase", c_phase},
    {"spawn", c_spawn},       {"kill", c_kill},
    {"term", c_term},         {"pause", c_pause},
    {"stopped", c_stopped},   {"resume", c_resume},
    {"await", c_await},       {"where", c_where},
    {"bg_where", c_bg_where}, {"wake_at", c_wake_at},
    {"fakes", c_fakes},       {"suggest", c_suggest},
    {"rng", c_rng},           {NULL, NULL},
};

/* t.<key>: a method, or one of the fields name / file / seed; anything else is a usage
 * error with the nearest method name. */
static int t_index(lua_State *L)
{
    t_box_t *b = luaL_checkudata(L, 1, T_MT);
    const char *key = lua_tostring(L, 2);
    lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
    if (key) {
        lua_getfield(L, -1, key);
        if (!lua_isnil(L, -1))
            return 1;
        lua_pop(L, 1);
        fl_scenario_t *sc = b->e->gen == b->gen ? b->e->cur : NULL;
        if (sc && strcmp(key, "name") == 0) {
            lua_pushstring(L, sc->decl->name);
            return 1;
        }
        if (strcmp(key, "file") == 0) {
            lua_pushstring(L, b->e->path);
            return 1;
        }
        if (strcmp(key, "seed") == 0) {
            lua_pushinteger(L, (lua_Integer)b->e->run->opt.seed);
            return 1;
        }
        if (sc && lua_getiuservalue(L, 1, 2) == LUA_TTABLE) { /* t.consul and friends */
            lua_getfield(L, -1, key);
            if (!lua_isnil(L, -1))
                return 1;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    const char *sug = key ? fl_lua_suggest_key(L, -1, key) : NULL;
    if (sug)
        return fl_lua_usage(L, "t has no method or field '%s' (did you mean '%s'?)", key, sug);
    return fl_lua_usage(L, "t has no method or field '%s'", key ? key : luaL_typename(L, 2));
}

static int t_newindex(lua_State *L)
{
    return fl_lua_usage(L, "t is read-only: cannot set t.%s (keep your own state in locals)",
                        luaL_tolstring(L, 2, NULL));
}

static int t_tostring(lua_State *L)
{
    t_box_t *b = luaL_checkudata(L, 1, T_MT);
    fl_scenario_t *sc = b->e->gen == b->gen ? b->e->cur : NULL;
    lua_pushfstring(L, "scenario(%s)", sc ? sc->decl->name : "ended");
    return 1;
}

static const char *const inst_fields[] = {"name",      "service", "index",  "host",
                                          "port",      "addr",    "pid",    "state",
                                          "exit_code", "signal",  "starts", NULL};

static int inst_index(lua_State *L)
{
    fl_instance_t *inst = fl_sc_check_inst(L, 1, "instance");
    const char *key = luaL_checkstring(L, 2);
    if (strcmp(key, "name") == 0)
        lua_pushstring(L, inst->name);
    else if (strcmp(key, "service") == 0)
        lua_pushstring(L, inst->service);
    else if (strcmp(key, "index") == 0)
        lua_pushinteger(L, inst->index);
    else if (strcmp(key, "host") == 0)
        lua_pushstring(L, inst->host);
    else if (strcmp(key, "port") == 0)
        lua_pushinteger(L, inst->port);
    else if (strcmp(key, "addr") == 0)
        lua_pushfstring(L, "%s:%d", inst->host, inst->port);
    else if (strcmp(key, "pid") == 0)
        inst->pid ? lua_pushinteger(L, inst->pid) : lua_pushnil(L);
    else if (strcmp(key, "state") == 0)
        lua_pushstring(L, fl_inst_state_name(inst->state));
    else if (strcmp(key, "exit_code") == 0)
        inst->exited && !inst->term_signal ? lua_pushinteger(L, inst->exit_status) : lua_pushnil(L);
    else if (strcmp(key, "signal") == 0)
        inst->exited && inst->term_signal ? lua_pushinteger(L, inst->term_signal) : lua_pushnil(L);
    else if (strcmp(key, "starts") == 0)
        lua_pushinteger(L, inst->starts);
    else {
        const char *sug = fl_lua_suggest(key, inst_fields);
        if (sug)
            return fl_lua_usage(L, "an instance has no field '%s' (did you mean '%s'?)", key, sug);
        return fl_lua_usage(L,
                            "an instance has no field '%s' (fields: name, service, index, "
                            "host, port, addr, pid, state, exit_code, signal, starts)",
                            key);
    }
    return 1;
}

static int inst_tostring(lua_State *L)
{
    inst_box_t *b = luaL_checkudata(L, 1, INSTANCE_MT);
    if (b->e->cur && b->gen == b->e->gen)
        lua_pushstring(L, b->e->cur->inst[b->idx].name);
    else
        lua_pushliteral(L, "instance(ended)");
    return 1;
}

/* ---------------------------------------------------------------- file level ---- */

static int g_topology(lua_State *L)
{
    fl_engine_t *e = engine_of(L);
    fl_topology_parse(L, &e->topo, e->run->bin_dir);
    return 0;
}

/* scenario(name, [opts], fn) */
static int g_scenario(lua_State *L)
{
    fl_engine_t *e = engine_of(L);
    const char *name = fl_lua_check_string(L, 1, "scenario name");
    if (!*name)
        fl_lua_usage(L, "scenario name is empty");
    int fn = lua_istable(L, 2) ? 3 : 2;
    if (lua_type(L, fn) != LUA_TFUNCTION)
        fl_lua_usage(L, "scenario \"%s\": expected a function as the %s argument, got %s", name,
                     fn == 2 ? "second" : "third", fl_lua_typename(L, fn));
    for (size_t i = 0; i < e->ndecls; i++)
        if (strcmp(e->decls[i].name, name) == 0)
            fl_lua_usage(L, "scenario \"%s\" declared twice (first at %s)", name,
                         e->decls[i].where);
    uint64_t timeout = 0;
    char *skip = NULL;
    char **catches = NULL;
    if (fn == 3) {
        static const char *const keys[] = {"timeout", "skip", "catches", NULL};
        fl_lua_check_keys(L, 2, "scenario option", keys);
        lua_getfield(L, 2, "timeout");
        timeout = fl_lua_opt_dur(L, -1, "scenario timeout", 0);
        lua_getfield(L, 2, "catches");
        char what[128];
        snprintf(what, sizeof what, "scenario \"%.80s\": catches", name);
        catches = fl_mutants_parse(L, -1, what); /* last to raise: nothing else to free */
        lua_getfield(L, 2, "skip");
        if (lua_type(L, -1) == LUA_TSTRING)
            skip = strdup(lua_tostring(L, -1));
        else if (lua_toboolean(L, -1))
            skip = strdup("skipped");
        lua_pop(L, 3);
    }
    scenario_decl_t *d = realloc(e->decls, (e->ndecls + 1) * sizeof *d);
    if (!d) {
        free(skip);
        fl_strv_free(catches);
        return luaL_error(L, "out of memory");
    }
    e->decls = d;
    d = &e->decls[e->ndecls];
    memset(d, 0, sizeof *d);
    d->name = strdup(name);
    d->timeout_ns = timeout;
    d->skip = skip;
    d->catches = catches ? catches : calloc(1, sizeof *catches);
    fl_lua_where(L, d->where, sizeof d->where);
    lua_pushvalue(L, fn);
    d->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    e->ndecls++;
    return 0;
}

/* Past the deadline, Lua code is stopped by yielding from this hook: unlike an error, a
 * yield cannot be caught by pcall, and resume() treats a yield with hook_fired set as the
 * timeout. Where yielding is impossible (inside a C call), an error is the fallback. */
static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    fl_engine_t *e = engine_of(L);
    if (!e->deadline_ns || uv_hrtime() <= e->deadline_ns)
        return;
    e->hook_fired = 1;
    /* where it was, now: once suspended, Lua reports the line of the instruction before */
    fl_lua_where(L, e->hook_where, sizeof e->hook_where);
    /* Only the scenario's own coroutine is yielded: a coroutine it created would hand the
     * yield to the scenario, which would run on as if it had yielded a value. */
    if (lua_isyieldable(L) && (!e->cur || L == e->cur->co)) {
        lua_yield(L, 0);
        return;
    }
    fl_lua_raise(L, FL_LUA_TIMEOUT_MT, e->hook_where,
                 "timed out while running Lua code (a loop that never waits?)");
}

static int traceback(lua_State *L)
{
    const char *m, *w;
    if (fl_lua_error_kind(L, 1, &m, &w))
        return 1; /* ours: already says where */
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg ? msg : luaL_tolstring(L, 1, NULL), 1);
    return 1;
}

static void error_text(lua_State *L, int idx, char *err, size_t errlen)
{
    const char *m, *w;
    if (fl_lua_error_kind(L, idx, &m, &w))
        snprintf(err, errlen, "%s%s%s", w && *w ? w : "", w && *w ? ": " : "", m ? m : "?");
    else
        snprintf(err, errlen, "%s", lua_tostring(L, idx) ? lua_tostring(L, idx) : "error");
}

static void open_state(fl_engine_t *e)
{
    lua_State *L = e->L;
    *(fl_engine_t **)lua_getextraspace(L) = e; /* copied into every thread */
    luaL_openlibs(L);
    fl_lua_open_errors(L);

    luaL_newmetatable(L, T_MT);
    lua_pushcfunction(L, t_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, t_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, t_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "faultline.t");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    luaL_newmetatable(L, INSTANCE_MT);
    lua_pushcfunction(L, inst_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, inst_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "faultline.instance");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    static const luaL_Reg rng_methods[] = {
        {"float", rng_float}, {"below", rng_below}, {NULL, NULL}};
    luaL_newmetatable(L, RNG_MT);
    luaL_newlib(L, rng_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_register(L, "topology", g_topology);
    lua_register(L, "scenario", g_scenario);

    /* math.random follows --seed too */
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, (lua_Integer)e->run->opt.seed);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static int load_prelude(fl_engine_t *e, char *err, size_t errlen)
{
    lua_State *L = e->L;
    if (luaL_loadbufferx(L, (const char *)fl_prelude_lua, fl_prelude_lua_len, "=faultline", "t")) {
        snprintf(err, errlen, "faultline prelude: %s", lua_tostring(L, -1));
        return FL_ESYNTAX;
    }
    luaL_newlib(L, t_methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
    luaL_newlib(L, c_primitives);
    fl_sc_links_register(L);
    fl_sc_consul_register(L);
    fl_sc_broker_register(L);
    fl_sc_collector_register(L);
    fl_sc_workload_register(L);
    fl_sc_checks_register(L);
    lua_pushvalue(L, -1);
    lua_insert(L, -4); /* keep C below the chunk for C.main */
    if (lua_pcall(L, 2, 0, 0)) {
        snprintf(err, errlen, "faultline prelude: %s", lua_tostring(L, -1));
        return FL_ESYNTAX;
    }
    lua_getfield(L, -1, "main");
    lua_setfield(L, LUA_REGISTRYINDEX, MAIN_KEY);
    lua_getfield(L, -1, "fields");
    lua_setfield(L, LUA_REGISTRYINDEX, FIELDS_KEY);
    lua_getfield(L, -1, "background");
    lua_setfield(L, LUA_REGISTRYINDEX, BACKGROUND_KEY);
    lua_getfield(L, -1, "ending");
    lua_setfield(L, LUA_REGISTRYINDEX, ENDING_KEY);
    lua_pop(L, 1);
    return 0;
}

/* require "x" finds x.lua in lib/ beside the scenario file or beside its folder
 * (scenarios/lib/ for the files in scenarios/shop/), before Lua's usual places. */
static void set_package_path(lua_State *L, const char *path)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 1;
    const char *dir = slash ? path : ".";
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_printf(&b, "%.*s/lib/?.lua;%.*s/../lib/?.lua;%s", dirlen, dir, dirlen, dir,
                  lua_tostring(L, -1));
    lua_pushstring(L, b.data ? b.data : "");
    fl_buf_free(&b);
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* Every mutant a scenario claims to catch is one the topology declares (the topology may
 * come after the scenarios, so this waits for the end of the file). */
static int check_catches(fl_engine_t *e, char *err, size_t errlen)
{
    for (size_t i = 0; i < e->ndecls; i++)
        for (char **c = e->decls[i].catches; c && *c; c++) {
            if (fl_mutants_has(e->topo.mutants, *c))
                continue;
            fl_buf_t known = FL_BUF_INIT;
            for (char **m = e->topo.mutants; m && *m; m++)
                fl_buf_printf(&known, "%s%s", m == e->topo.mutants ? "" : ", ", *m);
            snprintf(err, errlen,
                     "%s: scenario \"%s\": catches '%s', which is not one of the topology's "
                     "mutants (%s%s)",
                     e->decls[i].where, e->decls[i].name, *c, known.data ? "mutants: " : "",
                     known.data ? known.data : "it declares none: topology { mutants = {...} }");
            fl_buf_free(&known);
            return FL_ESYNTAX;
        }
    return 0;
}

int fl_engine_load(fl_run_t *run, const char *path, fl_engine_t **out, char *err, size_t errlen)
{
    fl_engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return FL_ENOMEM;
    e->run = run;
    e->path = strdup(path);
    e->L = luaL_newstate();
    if (!e->path || !e->L) {
        fl_engine_free(e);
        return FL_ENOMEM;
    }
    open_state(e);
    int rc = load_prelude(e, err, errlen);
    if (rc)
        goto fail;
    lua_State *L = e->L;
    set_package_path(L, path);
    lua_pushcfunction(L, traceback);
    if (luaL_loadfilex(L, path, "t") != LUA_OK) {
        /* "cannot open x.lua" or "x.lua:3: syntax error", where Lua may have shortened a
         * long path to "...end/of/path.lua:3:": put the whole path back */
        const char *msg = lua_tostring(L, -1);
        const char *line = strncmp(msg, "...", 3) == 0 ? strstr(msg, ".lua:") : NULL;
        if (line)
            snprintf(err, errlen, "%s%s", path, line + 4);
        else
            snprintf(err, errlen, "%s", msg);
        rc = FL_ESYNTAX;
        goto fail;
    }
    /* The top level runs in a coroutine too, so the hook can stop an endless loop there. */
    lua_State *co = lua_newthread(L);
    lua_insert(L, -2);
    lua_xmove(L, co, 1);
    e->deadline_ns = uv_hrtime() + run->opt.timeout_ns;
    e->hook_fired = 0;
    int nres = 0;
    int st = lua_resume(co, L, 0, &nres);
    e->deadline_ns = 0;
    if (st == LUA_YIELD) {
        snprintf(err, errlen, "%s", e->hook_fired ? e->hook_where : "");
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, "%s%s", n ? ": " : "",
                 e->hook_fired ? "loading the file timed out (a loop that never ends?)"
                               : "a scenario file cannot yield at its top level");
        rc = FL_ESYNTAX;
        goto fail;
    }
    if (st != LUA_OK) {
        error_text(co, -1, err, errlen);
        rc = FL_ESYNTAX;
        goto fail;
    }
    if ((rc = check_catches(e, err, errlen)) != 0)
        goto fail;
    lua_settop(L, 0);
    *out = e;
    return 0;
fail:
    fl_engine_free(e);
    return rc;
}

size_t fl_engine_count(const fl_engine_t *e)
{
    return e->ndecls;
}

const char *fl_engine_path(const fl_engine_t *e)
{
    return e->path;
}

char *fl_engine_topology(const fl_engine_t *e)
{
    return fl_topology_describe(&e->topo);
}

char *const *fl_engine_mutants(const fl_engine_t *e)
{
    static char *const none[] = {NULL};
    return e->topo.mutants ? e->topo.mutants : none;
}

char *const *fl_engine_catches(const fl_engine_t *e, size_t i)
{
    static char *const none[] = {NULL};
    return e->decls[i].catches ? e->decls[i].catches : none;
}

const char *fl_engine_name(const fl_engine_t *e, size_t i)
{
    return e->decls[i].name;
}

int fl_engine_matches(fl_engine_t *e, size_t i, const char *pattern)
{
    lua_State *L = e->L;
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "find");
    lua_pushfstring(L, "%s: %s", e->path, e->decls[i].name);
    lua_pushstring(L, pattern);
    int ok = lua_pcall(L, 2, 1, 0) == LUA_OK && !lua_isnil(L, -1);
    lua_pop(L, 2);
    return ok;
}

void fl_engine_free(fl_engine_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->ndecls; i++) {
        free(e->decls[i].name);
        free(e->decls[i].skip);
        fl_strv_free(e->decls[i].catches);
    }
    free(e->decls);
    fl_topology_free(&e->topo);
    if (e->L)
        lua_close(e->L);
    free(e->path);
    free(e);
}

/* ---------------------------------------------------------------- running ---- */

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static void set_var(fl_buf_t *b, char ***v, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets NAME=value in the NULL-terminated vector *v (replacing an earlier NAME). */
static void set_var(fl_buf_t *b, char ***v, const char *name, const char *fmt, ...)
{
    fl_buf_reset(b);
    fl_buf_printf(b, "%s=", name);
    va_list ap;
    va_start(ap, fmt);
    fl_buf_vprintf(b, fmt, ap);
    va_end(ap);
    if (!b->data || !*v)
        return;
    size_t n = strlen(name), len = fl_strv_len(*v);
    for (size_t i = 0; i < len; i++)
        if (strncmp((*v)[i], name, n) == 0 && (*v)[i][n] == '=') {
            free((*v)[i]);
            (*v)[i] = strdup(b->data);
            return;
        }
    char **nv = realloc(*v, (len + 2) * sizeof *nv);
    if (!nv)
        return;
    nv[len] = strdup(b->data);
    nv[len + 1] = NULL;
    *v = nv;
}

/* The wiring contract (DESIGN.md): what every instance finds in its environment. */
static char **wiring_env(fl_scenario_t *sc, fl_service_t *svc, fl_instance_t *inst)
{
    extern char **environ;
    char **env = fl_strv_dup(environ, 0);
    fl_buf_t b = FL_BUF_INIT, list = FL_BUF_INIT;
    set_var(&b, &env, "SERVICE_NAME", "%s", svc->name);
    set_var(&b, &env, "INSTANCE_ID", "%s", inst->name);
    set_var(&b, &env, "BIND", "%s", inst->host);
    set_var(&b, &env, "PORT", "%d", inst->port);
    set_var(&b, &env, "OTEL_SERVICE_NAME", "%s", svc->name);
    set_var(&b, &env, "OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=%s", inst->name);
    char consul[160];
    fl_sc_consul_addr(sc, (size_t)(inst - sc->inst), consul, sizeof consul);
    if (consul[0])
        set_var(&b, &env, "CONSUL_HTTP_ADDR", "%s", consul);
    char otlp[96];
    fl_sc_collector_endpoint(sc, otlp, sizeof otlp);
    if (otlp[0])
        set_var(&b, &env, "OTEL_EXPORTER_OTLP_ENDPOINT", "%s", otlp);
    char amqp[300];
    fl_sc_broker_url(sc, (size_t)(inst - sc->inst), amqp, sizeof amqp);
    if (amqp[0])
        set_var(&b, &env, "AMQP_URL", "%s", amqp);
    for (char **need = svc->needs; *need; need++) {
        char addrs[4096];
        fl_sc_links_addr(sc, (size_t)(inst - sc->inst), *need, addrs, sizeof addrs);
        fl_buf_reset(&list);
        fl_buf_puts(&list, addrs);
        char var[96];
        snprintf(var, sizeof var, "%s_ADDR", *need);
        for (char *p = var; *p; p++)
            *p = (*p == '-') ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        set_var(&b, &env, var, "%s", list.data ? list.data : "");
    }
    for (char **kv = svc->env; *kv; kv++) {
        const char *eq = strchr(*kv, '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *kv), *kv);
        set_var(&b, &env, name, "%s", eq + 1);
    }
    if (sc->e->run->mutant) /* --mutants: the harness's FAULTLINE_BUG wins over the topology's */
        set_var(&b, &env, "FAULTLINE_BUG", "%s", sc->e->run->mutant);
    fl_buf_free(&b);
    fl_buf_free(&list);
    return env;
}

static int build_instances(fl_scenario_t *sc)
{
    fl_engine_t *e = sc->e;
    fl_run_t *run = e->run;
    size_t n = 0;
    for (int s = 0; s < e->topo.nservices; s++)
        n += (size_t)e->topo.services[s].replicas;
    sc->inst = calloc(n ? n : 1, sizeof *sc->inst);
    if (!sc->inst)
        return FL_ENOMEM;
    /* addresses and ports first: wiring needs every instance's address */
    fl_addr_forget_ports(&run->addr);
    for (int s = 0; s < e->topo.nservices; s++) {
        fl_service_t *svc = &e->topo.services[s];
        for (int r = 1; r <= svc->replicas; r++) {
            fl_instance_t *inst = &sc->inst[sc->ninst++];
            snprintf(inst->name, sizeof inst->name, "%s-%d", svc->name, r);
            snprintf(inst->service, sizeof inst->service, "%s", svc->name);
            inst->index = r;
            fl_addr_instance(&run->addr, svc->index, r, inst->host, sizeof inst->host);
            int rc = fl_addr_next_port(&run->addr, &inst->port);
            if (rc) {
                sc->ninst = 0; /* none initialised yet: nothing to close */
                return rc;
            }
        }
    }
    int rc = fl_sc_broker_open(sc);
    if (!rc)
        rc = fl_sc_links_open(sc);
    if (!rc)
        rc = fl_sc_consul_open(sc);
    if (!rc)
        rc = fl_sc_collector_open(sc);
    if (rc) {
        sc->ninst = 0;
        return rc;
    }
    for (size_t i = 0; i < sc->ninst; i++) {
        fl_instance_t *inst = &sc->inst[i];
        fl_service_t *svc = fl_topology_find(&e->topo, inst->service);
        char **argv = fl_strv_dup(svc->cmd, 0);
        char **env = wiring_env(sc, svc, inst);
        if (!argv || !env || fl_instance_init(run->loop, inst, argv, env) != 0) {
            fl_strv_free(argv);
            fl_strv_free(env);
            /* instances from i on were never initialised: forget them */
            sc->ninst = i;
            return FL_ENOMEM;
        }
        inst->shim_exe = run->self_exe;
        inst->ready = svc->ready;
        inst->ready_check = fl_sc_consul_ready;
        inst->ready_check_arg = sc;
        inst->grace_ns = svc->grace_ns;
        inst->tl = &sc->tl;
        inst->on_change = on_change;
        inst->on_change_arg = sc;
    }
    return 0;
}

/* The t userdata, with a uservalue table of instance handles (index i+1 → inst[i]). */
static void push_t(lua_State *L, fl_scenario_t *sc)
{
    t_box_t *b = lua_newuserdatauv(L, sizeof *b, 2);
    b->e = sc->e;
    b->gen = sc->e->gen;
    luaL_setmetatable(L, T_MT);
    lua_createtable(L, (int)sc->ninst, 0);
    for (size_t i = 0; i < sc->ninst; i++) {
        inst_box_t *ib = lua_newuserdatauv(L, sizeof *ib, 0);
        ib->e = sc->e;
        ib->gen = sc->e->gen;
        ib->idx = i;
        luaL_setmetatable(L, INSTANCE_MT);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setiuservalue(L, -2, 1);
    /* the object fields (t.consul, ...) the prelude builds for this t */
    lua_getfield(L, LUA_REGISTRYINDEX, FIELDS_KEY);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_setiuservalue(L, -2, 2);
}

/* Start waves: wave d holds the autostart instances of services at needs-depth d. */
static void push_waves(lua_State *L, fl_scenario_t *sc)
{
    int maxdepth = 0;
    for (int s = 0; s < sc->e->topo.nservices; s++)
        if (sc->e->topo.services[s].depth > maxdepth)
            maxdepth = sc->e->topo.services[s].depth;
    lua_createtable(L, maxdepth + 1, 0);
    for (int d = 0; d <= maxdepth; d++) {
        lua_newtable(L);
        lua_Integer n = 0;
        for (size_t i = 0; i < sc->ninst; i++) {
            fl_service_t *svc = fl_topology_find(&sc->e->topo, sc->inst[i].service);
            if (svc->depth != d || !svc->autostart)
                continue;
            fl_sc_push_inst(L, sc, &sc->inst[i]);
            lua_rawseti(L, -2, ++n);
        }
        lua_rawseti(L, -2, d + 1);
    }
}

static void finish(fl_scenario_t *sc, fl_verdict_t v);

static void timer_closed(uv_handle_t *h)
{
    fl_scenario_t *sc = h->data;
    if (--sc->timers_open > 0)
        return;
    void (*done)(void *) = sc->done;
    void *arg = sc->done_arg;
    free(sc->inst);
    free(sc->links);
    for (size_t i = 0; i < sc->ncounters; i++)
        free(sc->counters[i]);
    free(sc->counters);
    free(sc->fail_marks);
    free(sc);
    done(arg);
}

/* Teardown, last step: the timers go, then the scenario's memory. */
static void closed_one(fl_scenario_t *sc)
{
    if (sc->closing_left > 0 && --sc->closing_left > 0)
        return;
    uv_close((uv_handle_t *)&sc->wake, timer_closed);
    uv_close((uv_handle_t *)&sc->deadline, timer_closed);
    uv_close((uv_handle_t *)&sc->bg, timer_closed);
}

static void instance_closed(fl_instance_t *inst)
{
    closed_one(inst->on_change_arg);
}

static void links_closed(fl_scenario_t *sc)
{
    closed_one(sc);
}

static void consul_closed(fl_scenario_t *sc)
{
    closed_one(sc);
}

static void broker_closed(fl_scenario_t *sc)
{
    closed_one(sc);
}

static void collector_closed(fl_scenario_t *sc)
{
    closed_one(sc);
}

static void workload_closed(fl_scenario_t *sc)
{
    closed_one(sc);
}

static void keep_logs(fl_scenario_t *sc)
{
    fl_scenario_result_t *res = sc->res;
    res->logs = calloc(sc->ninst ? sc->ninst : 1, sizeof *res->logs);
    if (!res->logs)
        return;
    for (size_t i = 0; i < sc->ninst; i++) {
        fl_instance_t *inst = &sc->inst[i];
        if (!inst->starts)
            continue;
        fl_log_t *log = &res->logs[res->nlogs];
        log->instance = strdup(inst->name);
        /* the last LOG_KEEP_BYTES, reaching back to LOG_BEFORE_FAILURE before the failure */
        size_t keep = LOG_KEEP_BYTES;
        uint64_t mark = sc->fail_marks ? sc->fail_marks[i] : 0;
        if (sc->fail_marks && inst->log.total - mark + LOG_BEFORE_FAILURE > keep)
            keep = (size_t)(inst->log.total - mark + LOG_BEFORE_FAILURE);
        if (keep > LOG_KEEP_MAX)
            keep = LOG_KEEP_MAX;
        log->text = fl_ring_tail(&inst->log, keep, &log->len);
        log->truncated = inst->log.total > log->len;
        if (sc->fail_marks && mark >= inst->log.total - log->len) {
            log->marked = 1;
            log->failure_at = (size_t)(mark - (inst->log.total - log->len));
        }
        if (log->instance && log->text)
            res->nlogs++;
        else {
            free(log->instance);
            free(log->text);
        }
    }
}

/* Teardown, second half: everything is down; keep the logs, then close every handle. */
static void all_down_then_close(fl_scenario_t *sc)
{
    if (sc->phase != SC_STOPPING)
        return;
    for (size_t i = 0; i < sc->ninst; i++)
        if (sc->inst[i].state != FL_INST_DOWN)
            return;
    sc->phase = SC_CLOSING;
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "", NULL, "teardown done");
    keep_logs(sc);
    sc->res->seconds = (uv_hrtime() - sc->start_ns) / 1e9;
    /* every instance, the links as one, the fake Consul, the fake broker, the collector,
     * the loads and calls */
    sc->closing_left = sc->ninst + 5;
    for (size_t i = 0; i < sc->ninst; i++)
        fl_instance_close(&sc->inst[i], instance_closed);
    fl_sc_links_close(sc, links_closed);
    fl_sc_consul_close(sc, consul_closed);
    fl_sc_broker_close(sc, broker_closed);
    fl_sc_collector_close(sc, collector_closed);
    fl_sc_workload_close(sc, workload_closed);
}

/* Calls the prelude's function under key with t, outside the scenario's coroutine; an error
 * fails the scenario (what is the error about: `what`). */
static void call_prelude(fl_scenario_t *sc, const char *key, const char *what)
{
    lua_State *L = sc->e->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_getfield(L, LUA_REGISTRYINDEX, key);
    lua_rawgeti(L, LUA_REGISTRYINDEX, sc->t_ref);
    sc->in_background = 1;
    if (lua_pcall(L, 1, 0, top + 1) != LUA_OK) {
        char err[512], where[256];
        error_text(L, -1, err, sizeof err);
        snprintf(where, sizeof where, "%s", sc->bg_where[0] ? sc->bg_where : sc->decl->where);
        fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "%s failed: %s", what, err);
        char msg[600];
        snprintf(msg, sizeof msg, "%s failed: %s", what, err);
        record_failure(sc, where, msg);
    }
    sc->in_background = 0;
    lua_settop(L, top);
}

/* Teardown, first half: the verdict is in; stop every running instance. */
static void finish(fl_scenario_t *sc, fl_verdict_t v)
{
    if (sc->phase != SC_RUNNING)
        return;
    sc->phase = SC_STOPPING;
    uv_timer_stop(&sc->wake);
    uv_timer_stop(&sc->deadline);
    uv_timer_stop(&sc->bg);
    sc->wait.kind = WAIT_NONE;
    sc->e->deadline_ns = 0;
    if (sc->t_ref != LUA_NOREF) { /* the background stops: faults it holds are healed */
        int failed = sc->nfailed;
        call_prelude(sc, ENDING_KEY, "ending the background tasks");
        if (sc->nfailed > failed && v == FL_VERDICT_PASS)
            v = FL_VERDICT_FAIL;
    }
    sc->res->verdict = v;
    if (sc->nfailed > 1 && v == FL_VERDICT_FAIL && sc->res->message) {
        fl_buf_t b = FL_BUF_INIT;
        fl_buf_printf(&b, "%s (and %d more failed expectations)", sc->res->message,
                      sc->nfailed - 1);
        if (b.data) {
            free(sc->res->message);
            sc->res->message = b.data;
        }
    }
    lua_State *L = sc->e->L;
    luaL_unref(L, LUA_REGISTRYINDEX, sc->co_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, sc->t_ref);
    sc->e->deadline_ns = 0;
    fl_sc_workload_stop(sc); /* no request leaves once the verdict is in */
    sc->e->cur = NULL;       /* every t and instance handle of this scenario is now stale... */
    sc->e->gen++;
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "", NULL, "scenario ended: %s; teardown",
                    fl_verdict_name(v));
    /* ...but the instances are still ours until closed */
    for (size_t i = 0; i < sc->ninst; i++)
        if (sc->inst[i].state != FL_INST_DOWN)
            fl_instance_stop(&sc->inst[i], sc->inst[i].grace_ns);
    all_down_then_close(sc);
    lua_gc(L, LUA_GCCOLLECT);
}

/* Runs the background tasks that are due (the prelude's C.background). They run outside the
 * scenario's coroutine and cannot wait; a wait of the scenario that one of them ended (an
 * instance it resumed became ready) ends once it has returned. */
static void background_cb(uv_timer_t *h)
{
    fl_scenario_t *sc = h->data;
    if (sc->phase != SC_RUNNING || sc->in_resume)
        return;
    call_prelude(sc, BACKGROUND_KEY, "background task");
    if (sc->phase == SC_RUNNING && sc->wait.inst) {
        char msg[256] = "";
        int r = wait_check(sc, sc->wait.inst, sc->wait.kind, msg, sizeof msg);
        if (r)
            wait_done(sc, r > 0, msg);
    }
}

static void set_error(fl_scenario_t *sc, const char *msg, const char *where, const char *tb)
{
    fl_scenario_result_t *res = sc->res;
    mark_logs(sc);
    if (!res->message || sc->nfailed == 0) {
        free(res->message);
        free(res->where);
        res->message = strdup(msg ? msg : "error");
        res->where = strdup(where ? where : "");
    }
    if (tb)
        res->traceback = strdup(tb);
}

/* A usage or Lua error is what its verdict is about: its message replaces that of a failed
 * expectation before it (which stays on the timeline). */
static void forget_message(fl_scenario_result_t *res)
{
    free(res->message);
    free(res->where);
    res->message = res->where = NULL;
}

/* The coroutine died with the error object on top of co's stack: classify it. */
static void scenario_error(fl_scenario_t *sc)
{
    lua_State *co = sc->co;
    const char *msg = NULL, *where = NULL;
    const char *kind = fl_lua_error_kind(co, -1, &msg, &where);
    if (kind && strcmp(kind, FL_LUA_FAILURE_MT) == 0) {
        finish(sc, FL_VERDICT_FAIL); /* already recorded by assertion() */
        return;
    }
    if (kind && strcmp(kind, FL_LUA_USAGE_MT) == 0) {
        forget_message(sc->res); /* the verdict is about this error, not an earlier failure */
        set_error(sc, msg, where, NULL);
        fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "usage error: %s", msg);
        finish(sc, FL_VERDICT_USAGE);
        return;
    }
    if (kind) { /* the instruction hook's timeout, where it could not yield */
        time_out(sc, "while running Lua code (a loop that never waits?)");
        return;
    }
    const char *text = lua_tostring(co, -1);
    if (!text)
        text = luaL_tolstring(co, -1, NULL);
    luaL_traceback(co, co, NULL, 0);
    char w[256];
    fl_lua_where(co, w, sizeof w);
    forget_message(sc->res);
    set_error(sc, text, w, lua_tostring(co, -1));
    fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", w, "Lua error: %s", text);
    finish(sc, FL_VERDICT_ERROR);
}

/* The scenario called coroutine.yield() itself (not one of its coroutines): a usage error. */
static void own_yield(fl_scenario_t *sc)
{
    char where[256];
    const char *msg = "the scenario itself cannot yield (coroutine.yield outside a coroutine it "
                      "created); to wait, use t:sleep";
    fl_sc_where(sc->co, sc, where, sizeof where);
    forget_message(sc->res);
    set_error(sc, msg, where, NULL);
    fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "usage error: %s", msg);
    finish(sc, FL_VERDICT_USAGE);
}

static void resume(fl_scenario_t *sc, int nargs)
{
    int nres = 0;
    sc->in_resume = 1;
    int st = lua_resume(sc->co, sc->e->L, nargs, &nres);
    sc->in_resume = 0;
    if (st == LUA_YIELD) {
        lua_pop(sc->co, nres);
        if (sc->e->hook_fired) /* the instruction hook stopped a loop that never waits */
            time_out(sc, "while running Lua code (a loop that never waits?)");
        else if (sc->wait.kind == WAIT_NONE) /* nothing would ever resume it */
            own_yield(sc);
        return;
    }
    if (st == LUA_OK)
        finish(sc, sc->nfailed ? FL_VERDICT_FAIL : FL_VERDICT_PASS);
    else
        scenario_error(sc);
}

/* Ends the scenario as timed out, wherever its coroutine stands. */
static void time_out(fl_scenario_t *sc, const char *how)
{
    char where[256], dur[32], msg[400];
    if (sc->e->hook_fired)
        snprintf(where, sizeof where, "%s", sc->e->hook_where);
    else /* in setup, no user line is on the stack: the scenario's declaration then */
        fl_sc_where(sc->co, sc, where, sizeof where);
    fl_dur_format(sc->decl->timeout_ns ? sc->decl->timeout_ns : sc->e->run->opt.timeout_ns, dur,
                  sizeof dur);
    snprintf(msg, sizeof msg, "timed out after %s %s%s%s", dur, how, where[0] ? " at " : "", where);
    fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "%s", msg);
    set_error(sc, msg, where, NULL);
    sc->nfailed++;
    sc->e->hook_fired = 0;
    lua_resetthread(sc->co); /* closes pending to-be-closed variables */
    finish(sc, FL_VERDICT_FAIL);
}

void fl_sc_abort(fl_scenario_t *sc, fl_verdict_t v, const char *where, const char *msg,
                 const char *traceback)
{
    if (sc->phase != SC_RUNNING || sc->in_resume)
        return;
    forget_message(sc->res);
    set_error(sc, msg, where, traceback);
    fl_timeline_add(&sc->tl, FL_EV_ASSERT, 0, "", where, "%s%s",
                    v == FL_VERDICT_USAGE ? "usage error: " : "Lua error: ", msg);
    if (v == FL_VERDICT_FAIL)
        sc->nfailed++;
    lua_resetthread(sc->co);
    finish(sc, v);
}

static void deadline_cb(uv_timer_t *t)
{
    time_out(t->data, "waiting");
}

static void live_event(void *arg, const fl_event_t *ev)
{
    fl_console_event(arg, ev);
}

void fl_engine_run(fl_engine_t *e, size_t i, fl_scenario_result_t *res, void (*done)(void *),
                   void *arg)
{
    fl_run_t *run = e->run;
    fl_scenario_t *sc = calloc(1, sizeof *sc);
    if (!sc) {
        res->verdict = FL_VERDICT_ERROR;
        res->message = strdup("out of memory");
        done(arg);
        return;
    }
    sc->e = e;
    sc->decl = &e->decls[i];
    sc->res = res;
    sc->done = done;
    sc->done_arg = arg;
    sc->start_ns = uv_hrtime();
    sc->tl.res = res;
    sc->tl.start_ns = sc->start_ns;
    if (run->opt.verbose) {
        sc->tl.on_event = live_event;
        sc->tl.on_event_arg = &run->console;
    }
    fl_rng_seed(&sc->rng,
                fnv1a(sc->decl->name, fnv1a(e->path, 0xcbf29ce484222325ull)) ^ run->opt.seed);
    fl_rng_seed(&sc->link_rng, fl_rng_next(&sc->rng));
    uv_timer_init(run->loop, &sc->wake);
    uv_timer_init(run->loop, &sc->deadline);
    uv_timer_init(run->loop, &sc->bg);
    sc->wake.data = sc->deadline.data = sc->bg.data = sc;
    sc->timers_open = 3;
    e->gen++;
    e->cur = sc;

    if (sc->decl->skip) {
        res->message = strdup(sc->decl->skip);
        sc->phase = SC_RUNNING;
        sc->co_ref = sc->t_ref = LUA_NOREF;
        finish(sc, FL_VERDICT_SKIP);
        return;
    }
    int rc = build_instances(sc);
    if (rc) {
        sc->co_ref = sc->t_ref = LUA_NOREF;
        set_error(sc, fl_strerror(rc), sc->decl->where, NULL);
        finish(sc, FL_VERDICT_ERROR);
        return;
    }
    lua_State *L = e->L;
    lua_Integer seed = (lua_Integer)fl_rng_next(&sc->rng);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, seed);
    lua_call(L, 1, 0);
    lua_pop(L, 1);

    sc->co = lua_newthread(L);
    sc->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    push_t(L, sc);
    sc->t_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    uint64_t timeout = sc->decl->timeout_ns ? sc->decl->timeout_ns : run->opt.timeout_ns;
    e->deadline_ns = sc->start_ns + timeout;
    e->hook_fired = 0;
    uv_timer_start(&sc->deadline, deadline_cb, timeout / 1000000 + 1, 0);
    fl_timeline_add(&sc->tl, FL_EV_NOTE, 1, "", sc->decl->where, "setup: %zu instances", sc->ninst);

    lua_getfield(sc->co, LUA_REGISTRYINDEX, MAIN_KEY);
    lua_rawgeti(sc->co, LUA_REGISTRYINDEX, sc->t_ref);
    lua_rawgeti(sc->co, LUA_REGISTRYINDEX, sc->decl->fn_ref);
    push_waves(sc->co, sc);
    resume(sc, 3);
}

/* Lua binding helpers (luax.h). */
#include "harness/luax.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/dur.h"
#include "lib/suggest.h"

void fl_lua_where(lua_State *L, char *out, size_t outlen)
{
    lua_Debug ar;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar))
            continue;
        if (ar.currentline > 0 && ar.source[0] == '@') { /* the full path, not short_src */
            snprintf(out, outlen, "%s:%d", ar.source + 1, ar.currentline);
            return;
        }
    }
    if (outlen)
        out[0] = '\0';
}

int fl_lua_raise(lua_State *L, const char *mt, const char *where, const char *message)
{
    lua_createtable(L, 0, 2);
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, where ? where : "");
    lua_setfield(L, -2, "where");
    luaL_setmetatable(L, mt);
    return lua_error(L);
}

int fl_lua_usage(lua_State *L, const char *fmt, ...)
{
    char where[512], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fl_lua_where(L, where, sizeof where);
    return fl_lua_raise(L, FL_LUA_USAGE_MT, where, msg);
}

static int error_tostring(lua_State *L)
{
    lua_getfield(L, 1, "where");
    lua_getfield(L, 1, "message");
    const char *where = lua_tostring(L, -2);
    const char *msg = lua_tostring(L, -1);
    if (where && *where)
        lua_pushfstring(L, "%s: %s", where, msg ? msg : "?");
    else
        lua_pushstring(L, msg ? msg : "?");
    return 1;
}

void fl_lua_open_errors(lua_State *L)
{
    const char *mts[] = {FL_LUA_USAGE_MT, FL_LUA_FAILURE_MT, FL_LUA_TIMEOUT_MT};
    for (size_t i = 0; i < sizeof mts / sizeof mts[0]; i++) {
        luaL_newmetatable(L, mts[i]);
        lua_pushcfunction(L, error_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pop(L, 1);
    }
}

const char *fl_lua_error_kind(lua_State *L, int idx, const char **message, const char **where)
{
    const char *mts[] = {FL_LUA_USAGE_MT, FL_LUA_FAILURE_MT, FL_LUA_TIMEOUT_MT};
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
        return NULL;
    const char *kind = NULL;
    for (size_t i = 0; i < sizeof mts / sizeof mts[0] && !kind; i++) {
        luaL_getmetatable(L, mts[i]);
        if (lua_rawequal(L, -1, -2))
            kind = mts[i];
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (kind) {
        lua_getfield(L, idx, "message");
        *message = lua_tostring(L, -1);
        lua_pop(L, 1); /* the string stays alive: the table still holds it */
        lua_getfield(L, idx, "where");
        *where = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return kind;
}

const char *fl_lua_suggest(const char *s, const char *const *names)
{
    return fl_suggest(s, names);
}

const char *fl_lua_suggest_key(lua_State *L, int idx, const char *s)
{
    const char *best = NULL;
    size_t bestd = 3;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -2);
            size_t d = fl_edit_distance(s, k);
            if (d < bestd && k[0] != '_') {
                bestd = d;
                best = k; /* stays valid: the table holds the key */
            }
        }
        lua_pop(L, 1);
    }
    return best;
}

const char *fl_lua_typename(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL:
        return "nil";
    case LUA_TNUMBER:
        return "a number";
    case LUA_TSTRING:
        return "a string";
    case LUA_TBOOLEAN:
        return "a boolean";
    case LUA_TTABLE:
        return "a table";
    case LUA_TFUNCTION:
        return "a function";
    default:
        return luaL_typename(L, idx);
    }
}

uint64_t fl_lua_check_dur(lua_State *L, int idx, const char *what)
{
    uint64_t ns = 0;
    int rc;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        rc = fl_dur_from_seconds(lua_tonumber(L, idx), &ns);
        if (rc)
            fl_lua_usage(L, "bad %s: %s is not a duration (it must be 0 or more seconds)", what,
                         lua_tostring(L, idx));
    } else if (lua_type(L, idx) == LUA_TSTRING) {
        rc = fl_dur_parse(lua_tostring(L, idx), &ns);
        if (rc)
            fl_lua_usage(L,
                         "bad %s: \"%s\" is not a duration (write a number of seconds, or a "
                         "string like \"250ms\", \"5s\", \"1m30s\")",
                         what, lua_tostring(L, idx));
    } else {
        fl_lua_usage(L, "bad %s: expected a duration (seconds or a string like \"5s\"), got %s",
                     what, fl_lua_typename(L, idx));
    }
    return ns;
}

uint64_t fl_lua_opt_dur(lua_State *L, int idx, const char *what, uint64_t def)
{
    return lua_isnoneornil(L, idx) ? def : fl_lua_check_dur(L, idx, what);
}

const char *fl_lua_check_string(lua_State *L, int idx, const char *what)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        fl_lua_usage(L, "bad %s: expected a string, got %s", what, fl_lua_typename(L, idx));
    return lua_tostring(L, idx);
}

void fl_lua_check_keys(lua_State *L, int idx, const char *what, const char *const *allowed)
{
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            fl_lua_usage(L, "bad %s: keys must be names, got %s", what, fl_lua_typename(L, -1));
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        if (!ok) {
            const char *s = fl_lua_suggest(k, allowed);
            fl_buf_t known = FL_BUF_INIT;
            for (size_t i = 0; allowed[i]; i++)
                fl_buf_printf(&known, "%s%s", i ? ", " : "", allowed[i]);
            char msg[768];
            if (s)
                snprintf(msg, sizeof msg, "unknown %s key '%s' (did you mean '%s'?)", what, k, s);
            else
                snprintf(msg, sizeof msg, "unknown %s key '%s' (known: %s)", what, k,
                         known.data ? known.data : "");
            fl_buf_free(&known);
            fl_lua_usage(L, "%s", msg);
        }
    }
}

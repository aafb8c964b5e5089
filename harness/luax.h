/* Helpers for the Lua bindings: where in the user's scenario a call came from, usage
 * errors that name the mistake (and suggest the nearest name), checked arguments
 * (durations, tables, strings). Usage errors make faultline exit 2; see engine.h. */
#ifndef FL_LUAX_H
#define FL_LUAX_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define FL_LUA_USAGE_MT "faultline.usage"
#define FL_LUA_FAILURE_MT "faultline.failure"
#define FL_LUA_TIMEOUT_MT "faultline.timeout"

/* "file:line" of the innermost frame that runs user code (not C, not faultline's prelude),
 * or "" when there is none. */
void fl_lua_where(lua_State *L, char *out, size_t outlen);
/* Raises a usage error: "FILE:LINE: message". Never returns. */
int fl_lua_usage(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raises an error object of metatable mt ({message=, where=}); never returns. */
int fl_lua_raise(lua_State *L, const char *mt, const char *where, const char *message);
/* Registers the three error metatables (with __tostring). */
void fl_lua_open_errors(lua_State *L);
/* If the value at idx is one of our error objects, returns its metatable name and sets
 * *message and *where (valid while the value is on the stack); else NULL. */
const char *fl_lua_error_kind(lua_State *L, int idx, const char **message, const char **where);

/* The closest of names (NULL-terminated) to s within edit distance 2, or NULL. */
const char *fl_lua_suggest(const char *s, const char *const *names);
/* Like fl_lua_suggest over the string keys of the table at idx. */
const char *fl_lua_suggest_key(lua_State *L, int idx, const char *s);

/* A duration argument: a number of seconds or a string ("250ms", "5s"). what names the
 * argument in the error ("t:sleep duration"). Raises a usage error on bad input. */
uint64_t fl_lua_check_dur(lua_State *L, int idx, const char *what);
/* Like fl_lua_check_dur, but returns def when the argument is nil or absent. */
uint64_t fl_lua_opt_dur(lua_State *L, int idx, const char *what, uint64_t def);
/* A string argument; usage error naming what otherwise. */
const char *fl_lua_check_string(lua_State *L, int idx, const char *what);
/* Checks that the table at idx has only string keys among allowed (NULL-terminated);
 * raises a usage error naming the first unknown key of what (with a suggestion). */
void fl_lua_check_keys(lua_State *L, int idx, const char *what, const char *const *allowed);
/* Lua type name for a usage message ("a number", "a string", "nil"). */
const char *fl_lua_typename(lua_State *L, int idx);

#endif

/* Unit tests for harness/luax.c, the helpers every Lua binding uses: name suggestions (edit
 * distance at most 2, none when far), durations (numbers and strings accepted, every bad value
 * a usage error whose message quotes it), table keys (unknown key named, with "did you mean"
 * or the list of known keys), and the usage error objects themselves: kind, message, and
 * "where" = "chunk:line" of the Lua caller when the chunk name starts with '@'. */
#include <check.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/luax.h"

static lua_State *LS; /* the fixture's state */

static int l_dur(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)fl_lua_check_dur(L, 1, "t:sleep duration"));
    return 1;
}

static int l_opt_dur(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)fl_lua_opt_dur(L, 1, "timeout", 42));
    return 1;
}

static int l_keys(lua_State *L)
{
    static const char *const allowed[] = {"rate", "duration", "to", NULL};
    fl_lua_check_keys(L, 1, "load", allowed);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_string(lua_State *L)
{
    lua_pushstring(L, fl_lua_check_string(L, 1, "service name"));
    return 1;
}

static int l_typename(lua_State *L)
{
    lua_pushstring(L, fl_lua_typename(L, 1));
    return 1;
}

static int l_suggest_key(lua_State *L)
{
    const char *s = fl_lua_suggest_key(L, 1, luaL_checkstring(L, 2));
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
    return 1;
}

static int l_fail(lua_State *L)
{
    return fl_lua_raise(L, FL_LUA_FAILURE_MT, "x.lua:9", "expected 3 healthy, saw 2");
}

static void setup(void)
{
    LS = luaL_newstate();
    luaL_openlibs(LS);
    fl_lua_open_errors(LS);
    lua_register(LS, "dur", l_dur);
    lua_register(LS, "opt_dur", l_opt_dur);
    lua_register(LS, "keys", l_keys);
    lua_register(LS, "str", l_string);
    lua_register(LS, "typename", l_typename);
    lua_register(LS, "suggest_key", l_suggest_key);
    lua_register(LS, "fail", l_fail);
}

static void teardown(void)
{
    lua_close(LS);
    LS = NULL;
}

/* Runs code as chunk name; returns the lua_pcall status, leaving the result (or the error)
 * on the stack. */
static int run(const char *code, const char *name)
{
    lua_settop(LS, 0);
    int rc = luaL_loadbuffer(LS, code, strlen(code), name);
    ck_assert_msg(rc == LUA_OK, "cannot load: %s", lua_tostring(LS, -1));
    return lua_pcall(LS, 0, 1, 0);
}

static lua_Integer run_int(const char *code)
{
    int rc = run(code, "@test.lua");
    ck_assert_msg(rc == LUA_OK, "%s: %s", code, luaL_tolstring(LS, -1, NULL));
    ck_assert_msg(lua_isinteger(LS, -1), "%s: not an integer", code);
    return lua_tointeger(LS, -1);
}

/* Runs code, which must raise a usage error whose message contains want and whose where is
 * want_where. */
static void expect_usage(const char *code, const char *name, const char *want,
                         const char *want_where)
{
    int rc = run(code, name);
    ck_assert_msg(rc == LUA_ERRRUN, "%s: no error", code);
    const char *msg = NULL, *where = NULL;
    const char *kind = fl_lua_error_kind(LS, -1, &msg, &where);
    ck_assert_msg(kind != NULL, "%s: not a faultline error: %s", code,
                  luaL_tolstring(LS, -1, NULL));
    ck_assert_str_eq(kind, FL_LUA_USAGE_MT);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(where);
    ck_assert_msg(strstr(msg, want) != NULL, "%s: message '%s' lacks '%s'", code, msg, want);
    ck_assert_str_eq(where, want_where);
}

START_TEST(suggest)
{
    const char *const names[] = {"services", "grace", "replicas", "ready", "ready_timeout", NULL};
    ck_assert_str_eq(fl_lua_suggest("servics", names), "services"); /* 1 deletion */
    ck_assert_str_eq(fl_lua_suggest("replica", names), "replicas"); /* 1 insertion */
    ck_assert_str_eq(fl_lua_suggest("grcae", names), "grace");      /* 2 substitutions */
    ck_assert_str_eq(fl_lua_suggest("grace", names), "grace");      /* exact */
    ck_assert_str_eq(fl_lua_suggest("redy", names), "ready");       /* nearest wins */
    ck_assert_ptr_null(fl_lua_suggest("gr", names));                /* distance 3 */
    ck_assert_ptr_null(fl_lua_suggest("zzzzzz", names));
    ck_assert_ptr_null(fl_lua_suggest("", names));
    const char *const none[] = {NULL};
    ck_assert_ptr_null(fl_lua_suggest("x", none));
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_ptr_null(fl_lua_suggest(longname, names)); /* no crash on long input */
}
END_TEST

START_TEST(suggest_key)
{
    ck_assert_int_eq(
        run("return suggest_key({ users = 1, orders = 2, payments = 3 }, 'user')", "@test.lua"),
        LUA_OK);
    ck_assert_str_eq(lua_tostring(LS, -1), "users");
    ck_assert_int_eq(run("return suggest_key({ users = 1, orders = 2 }, 'gateway')", "@test.lua"),
                     LUA_OK);
    ck_assert(lua_isnil(LS, -1));
    /* keys starting with '_' are private and never suggested; non-string keys are skipped */
    ck_assert_int_eq(
        run("return suggest_key({ _users = 1, [1] = 'users', [true] = 1 }, 'users')", "@test.lua"),
        LUA_OK);
    ck_assert(lua_isnil(LS, -1));
}
END_TEST

START_TEST(dur_numbers)
{
    ck_assert_int_eq(run_int("return dur(0)"), 0);
    ck_assert_int_eq(run_int("return dur(2)"), 2000000000);
    ck_assert_int_eq(run_int("return dur(1.5)"), 1500000000);
    ck_assert_int_eq(run_int("return dur(0.25)"), 250000000);
    ck_assert_int_eq(run_int("return dur(1e-9)"), 1);
}
END_TEST

START_TEST(dur_strings)
{
    ck_assert_int_eq(run_int("return dur('250ms')"), 250000000);
    ck_assert_int_eq(run_int("return dur('5s')"), 5000000000);
    ck_assert_int_eq(run_int("return dur('1m30s')"), 90000000000);
    ck_assert_int_eq(run_int("return dur('1.5s')"), 1500000000);
    ck_assert_int_eq(run_int("return dur('100us')"), 100000);
    ck_assert_int_eq(run_int("return dur('7')"), 7000000000); /* a bare number is seconds */
    ck_assert_int_eq(run_int("return dur('1h')"), 3600000000000);
}
END_TEST

START_TEST(dur_bad_values)
{
    expect_usage("return dur('5 s')", "@test.lua",
                 "bad t:sleep duration: \"5 s\" is not a duration", "test.lua:1");
    expect_usage("return dur('')", "@test.lua", "\"\" is not a duration", "test.lua:1");
    expect_usage("return dur('5x')", "@test.lua", "\"5x\" is not a duration", "test.lua:1");
    expect_usage("return dur('-5s')", "@test.lua", "\"-5s\" is not a duration", "test.lua:1");
    expect_usage("return dur('s')", "@test.lua", "\"s\" is not a duration", "test.lua:1");
    expect_usage("\n\nreturn dur(-1)", "@test.lua",
                 "bad t:sleep duration: -1 is not a duration (it must be 0 or more seconds)",
                 "test.lua:3");
    expect_usage("return dur(0/0)", "@test.lua", "is not a duration", "test.lua:1");
    expect_usage("return dur(1e300)", "@test.lua", "is not a duration", "test.lua:1");
    expect_usage("return dur(true)", "@test.lua",
                 "bad t:sleep duration: expected a duration (seconds or a string like \"5s\"), "
                 "got a boolean",
                 "test.lua:1");
    expect_usage("return dur()", "@test.lua", "got nil", "test.lua:1");
    expect_usage("return dur({})", "@test.lua", "got a table", "test.lua:1");
}
END_TEST

START_TEST(opt_dur)
{
    ck_assert_int_eq(run_int("return opt_dur()"), 42);
    ck_assert_int_eq(run_int("return opt_dur(nil)"), 42);
    ck_assert_int_eq(run_int("return opt_dur('1ms')"), 1000000);
    expect_usage("return opt_dur('soon')", "@test.lua", "bad timeout: \"soon\"", "test.lua:1");
}
END_TEST

/* where is the innermost frame of user code: the Lua caller, through nested functions, and
 * never a chunk that is not a file (not named with '@'). */
START_TEST(where_of_the_caller)
{
    expect_usage("local function f()\n  return dur('x')\nend\nreturn f()", "@scen/a.lua", "\"x\"",
                 "scen/a.lua:2");
    expect_usage("return dur('x')", "=prelude", "\"x\"", "");
    expect_usage("return dur('x')", "return dur('x')", "\"x\"", "");
    /* a prelude (not '@') called from a user file: the user's line */
    ck_assert_int_eq(luaL_loadbuffer(LS, "return function(v) return dur(v) end", 36, "=prelude"),
                     LUA_OK);
    ck_assert_int_eq(lua_pcall(LS, 0, 1, 0), LUA_OK);
    lua_setglobal(LS, "wrapped");
    expect_usage("\nlocal v = wrapped('nope')\nreturn v", "@user.lua", "\"nope\"", "user.lua:2");
}
END_TEST

START_TEST(error_object)
{
    int rc = run("\nreturn dur('5 s')", "@test.lua");
    ck_assert_int_eq(rc, LUA_ERRRUN);
    /* tostring gives "where: message" */
    const char *s = luaL_tolstring(LS, -1, NULL);
    ck_assert_str_eq(s, "test.lua:2: bad t:sleep duration: \"5 s\" is not a duration (write a "
                        "number of seconds, or a string like \"250ms\", \"5s\", \"1m30s\")");
    lua_pop(LS, 1);
    /* other kinds are told apart; plain errors are not ours */
    ck_assert_int_eq(run("return fail()", "@test.lua"), LUA_ERRRUN);
    const char *msg, *where;
    ck_assert_str_eq(fl_lua_error_kind(LS, -1, &msg, &where), FL_LUA_FAILURE_MT);
    ck_assert_str_eq(msg, "expected 3 healthy, saw 2");
    ck_assert_str_eq(where, "x.lua:9");
    ck_assert_int_eq(run("error('plain')", "@test.lua"), LUA_ERRRUN);
    ck_assert_ptr_null(fl_lua_error_kind(LS, -1, &msg, &where));
    ck_assert_int_eq(run("error({ message = 'lookalike', where = 'a:1' })", "@test.lua"),
                     LUA_ERRRUN);
    ck_assert_ptr_null(fl_lua_error_kind(LS, -1, &msg, &where));
    ck_assert_int_eq(run("error(setmetatable({}, { __index = {} }))", "@test.lua"), LUA_ERRRUN);
    ck_assert_ptr_null(fl_lua_error_kind(LS, -1, &msg, &where));
    /* the stack is left as it was */
    ck_assert_int_eq(lua_gettop(LS), 1);
    /* a Lua script can catch and inspect it too */
    ck_assert_int_eq(run("local ok, e = pcall(dur, 'x'); return tostring(e)", "@test.lua"), LUA_OK);
    ck_assert_ptr_nonnull(strstr(lua_tostring(LS, -1), "test.lua:1: bad t:sleep duration"));
}
END_TEST

START_TEST(check_keys)
{
    ck_assert_int_eq(run("return keys({ rate = 1, duration = '1s', to = 'x' })", "@test.lua"),
                     LUA_OK);
    ck_assert_int_eq(run("return keys({})", "@test.lua"), LUA_OK);
    expect_usage("return keys({ rate = 1, rat = 2 })", "@test.lua",
                 "unknown load key 'rat' (did you mean 'rate'?)", "test.lua:1");
    expect_usage("\nreturn keys({ duartion = 2 })", "@test.lua",
                 "unknown load key 'duartion' (did you mean 'duration'?)", "test.lua:2");
    expect_usage("return keys({ zzzzzz = 1 })", "@test.lua",
                 "unknown load key 'zzzzzz' (known: rate, duration, to)", "test.lua:1");
    expect_usage("return keys({ 1, 2 })", "@test.lua", "bad load: keys must be names, got a number",
                 "test.lua:1");
}
END_TEST

START_TEST(check_string_and_typename)
{
    ck_assert_int_eq(run("return str('users')", "@test.lua"), LUA_OK);
    ck_assert_str_eq(lua_tostring(LS, -1), "users");
    expect_usage("return str(3)", "@test.lua", "bad service name: expected a string, got a number",
                 "test.lua:1");
    expect_usage("return str(nil)", "@test.lua", "got nil", "test.lua:1");
    const char *cases[][2] = {
        {"return typename()", "nil"},
        {"return typename(nil)", "nil"},
        {"return typename(1)", "a number"},
        {"return typename('')", "a string"},
        {"return typename(false)", "a boolean"},
        {"return typename({})", "a table"},
        {"return typename(print)", "a function"},
        {"return typename(coroutine.create(print))", "thread"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(run(cases[i][0], "@test.lua"), LUA_OK);
        ck_assert_str_eq(lua_tostring(LS, -1), cases[i][1]);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("luax");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, suggest);
    tcase_add_test(tc, suggest_key);
    tcase_add_test(tc, dur_numbers);
    tcase_add_test(tc, dur_strings);
    tcase_add_test(tc, dur_bad_values);
    tcase_add_test(tc, opt_dur);
    tcase_add_test(tc, where_of_the_caller);
    tcase_add_test(tc, error_object);
    tcase_add_test(tc, check_keys);
    tcase_add_test(tc, check_string_and_typename);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for harness/topology.c: topology{...} parsed through a real Lua state, the way a
 * scenario file declares it (chunks named "@test.lua"). A valid topology gives services sorted
 * by name with 1-based indices, start waves (depth) from needs, the documented defaults, env
 * as "K=V", and commands resolved through bin_dir first, then PATH. Each bad input is a usage
 * error at the topology{} line whose message names the problem (with a suggestion for names),
 * and leaves nothing leaked (the suite runs under ASan/LSan too). */
#include <check.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/luax.h"
#include "harness/topology.h"
#include "lib/buf.h"

static lua_State *LS;
static fl_topology_t topo;
static char bin_dir[64];
static char bin_svc[128]; /* bin_dir/mysvc, an executable script */

static int l_topology(lua_State *L)
{
    fl_topology_parse(L, &topo, bin_dir);
    return 0;
}

static void write_exe(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

static void setup(void)
{
    snprintf(bin_dir, sizeof bin_dir, "/tmp/fl-topo-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(bin_dir));
    snprintf(bin_svc, sizeof bin_svc, "%s/mysvc", bin_dir);
    write_exe(bin_svc);
    memset(&topo, 0, sizeof topo);
    setenv("PATH", "/usr/local/bin:/usr/bin:/bin", 1);
    LS = luaL_newstate();
    luaL_openlibs(LS);
    fl_lua_open_errors(LS);
    lua_register(LS, "topology", l_topology);
}

static void teardown(void)
{
    lua_close(LS);
    fl_topology_free(&topo);
    char path[160];
    snprintf(path, sizeof path, "%s/sh", bin_dir);
    unlink(path);
    unlink(bin_svc);
    rmdir(bin_dir);
}

static int run(const char *code)
{
    lua_settop(LS, 0);
    int rc = luaL_loadbuffer(LS, code, strlen(code), "@test.lua");
    ck_assert_msg(rc == LUA_OK, "cannot load: %s", lua_tostring(LS, -1));
    return lua_pcall(LS, 0, 0, 0);
}

static void parse_ok(const char *code)
{
    int rc = run(code);
    ck_assert_msg(rc == LUA_OK, "unexpected error: %s", luaL_tolstring(LS, -1, NULL));
}

/* code must raise a usage error at test.lua:line whose message contains every want[]. */
static void expect_usage_at(const char *code, int line, const char *const *want)
{
    int rc = run(code);
    ck_assert_msg(rc == LUA_ERRRUN, "no error for: %s", code);
    const char *msg = NULL, *where = NULL;
    const char *kind = fl_lua_error_kind(LS, -1, &msg, &where);
    ck_assert_msg(kind != NULL, "not a usage error: %s", luaL_tolstring(LS, -1, NULL));
    ck_assert_str_eq(kind, FL_LUA_USAGE_MT);
    for (size_t i = 0; want[i]; i++)
        ck_assert_msg(strstr(msg, want[i]) != NULL, "message \"%s\" lacks \"%s\"", msg, want[i]);
    char want_where[32];
    snprintf(want_where, sizeof want_where, "test.lua:%d", line);
    ck_assert_str_eq(where, want_where);
    /* whatever was parsed before the error is owned by topo: free it for the next case */
    fl_topology_free(&topo);
    memset(&topo, 0, sizeof topo);
}

#define EXPECT_USAGE(code, ...)                                                                    \
    do {                                                                                           \
        const char *const want_[] = {__VA_ARGS__, NULL};                                           \
        expect_usage_at(code, 1, want_);                                                           \
    } while (0)

static int strv_has(char **v, const char *s)
{
    for (; v && *v; v++)
        if (strcmp(*v, s) == 0)
            return 1;
    return 0;
}

static const char *path_sh(void)
{
    return access("/usr/local/bin/sh", X_OK) == 0 ? "/usr/local/bin/sh"
           : access("/usr/bin/sh", X_OK) == 0     ? "/usr/bin/sh"
                                                  : "/bin/sh";
}

START_TEST(valid_topology)
{
    parse_ok("topology {\n"
             "  grace = '1s',\n"
             "  services = {\n"
             "    web = { cmd = { 'sh', '-c', 'exit 0' }, needs = { 'api' },\n"
             "            env = { K = 'V', N = 5, B = true } },\n"
             "    api = { cmd = 'mysvc', replicas = 3, needs = { 'db' }, ready = 'none',\n"
             "            ready_timeout = 2.5, grace = '500ms', start = false },\n"
             "    db = { cmd = { 'sh' }, replicas = 0 },\n"
             "    cache = { cmd = { '/bin/sh', 7 } },\n"
             "  },\n"
             "}\n");
    ck_assert_int_eq(topo.declared, 1);
    ck_assert_str_eq(topo.where, "test.lua:1");
    ck_assert_int_eq(topo.nservices, 4);
    const char *order[] = {"api", "cache", "db", "web"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(topo.services[i].name, order[i]);
        ck_assert_int_eq(topo.services[i].index, i + 1);
    }
    fl_service_t *api = fl_topology_find(&topo, "api");
    fl_service_t *cache = fl_topology_find(&topo, "cache");
    fl_service_t *db = fl_topology_find(&topo, "db");
    fl_service_t *web = fl_topology_find(&topo, "web");
    ck_assert_ptr_nonnull(api);
    ck_assert_ptr_null(fl_topology_find(&topo, "nope"));

    ck_assert_int_eq(db->depth, 0);
    ck_assert_int_eq(cache->depth, 0);
    ck_assert_int_eq(api->depth, 1);
    ck_assert_int_eq(web->depth, 2);

    ck_assert_str_eq(api->cmd[0], bin_svc); /* bin_dir first */
    ck_assert_ptr_null(api->cmd[1]);
    ck_assert_int_eq(api->replicas, 3);
    ck_assert_int_eq(api->ready, FL_READY_NONE);
    ck_assert_uint_eq(api->ready_timeout_ns, 2500000000ull);
    ck_assert_uint_eq(api->grace_ns, 500000000ull);
    ck_assert_int_eq(api->autostart, 0);
    ck_assert_str_eq(api->needs[0], "db");
    ck_assert_ptr_null(api->needs[1]);
    ck_assert_ptr_nonnull(api->env);
    ck_assert_ptr_null(api->env[0]);

    ck_assert_str_eq(web->cmd[0], path_sh()); /* then PATH */
    ck_assert_str_eq(web->cmd[1], "-c");
    ck_assert_str_eq(web->cmd[2], "exit 0");
    ck_assert_ptr_null(web->cmd[3]);
    ck_assert(strv_has(web->env, "K=V"));
    ck_assert(strv_has(web->env, "N=5"));
    ck_assert(strv_has(web->env, "B=1"));
    ck_assert_ptr_null(web->env[3]);

    ck_assert_int_eq(db->replicas, 0);
    ck_assert_str_eq(cache->cmd[0], "/bin/sh");
    ck_assert_str_eq(cache->cmd[1], "7");
    ck_assert_uint_eq(cache->grace_ns, 1000000000ull); /* the topology's grace */
}
END_TEST

START_TEST(defaults)
{
    parse_ok("topology { services = { one = { cmd = { 'sh' } } } }");
    ck_assert_int_eq(topo.nservices, 1);
    fl_service_t *s = &topo.services[0];
    ck_assert_int_eq(s->replicas, 1);
    ck_assert_int_eq(s->autostart, 1);
    ck_assert_int_eq(s->ready, FL_READY_PORT);
    ck_assert_uint_eq(s->grace_ns, 3000000000ull);
    ck_assert_uint_eq(s->ready_timeout_ns, 10000000000ull);
    ck_assert_int_eq(s->depth, 0);
    ck_assert_int_eq(s->index, 1);
    ck_assert_ptr_null(s->env[0]);
    ck_assert_ptr_null(s->needs[0]);
}
END_TEST

START_TEST(empty_topologies)
{
    parse_ok("topology {}");
    ck_assert_int_eq(topo.declared, 1);
    ck_assert_int_eq(topo.nservices, 0);
    fl_topology_free(&topo);
    memset(&topo, 0, sizeof topo);
    parse_ok("topology { services = {} }");
    ck_assert_int_eq(topo.nservices, 0);
}
END_TEST

START_TEST(bin_dir_before_path)
{
    char mine[160];
    snprintf(mine, sizeof mine, "%s/sh", bin_dir);
    write_exe(mine);
    parse_ok("topology { services = { a = { cmd = { 'sh' } } } }");
    ck_assert_str_eq(topo.services[0].cmd[0], mine);
}
END_TEST

START_TEST(start_wave_depth)
{
    /* a diamond: d needs b and c, both need a; e needs d and a */
    parse_ok("topology { services = {\n"
             "  a = { cmd = 'sh' }, b = { cmd = 'sh', needs = { 'a' } },\n"
             "  c = { cmd = 'sh', needs = { 'a' } }, d = { cmd = 'sh', needs = { 'b', 'c' } },\n"
             "  e = { cmd = 'sh', needs = { 'a', 'd' } },\n"
             "} }");
    int want[] = {0, 1, 1, 2, 3};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(topo.services[i].depth, want[i]);
}
END_TEST

/* Many services that each need all the previous ones: depth must be computed in time linear
 * in the edges, not by walking every path (2^n). */
START_TEST(dense_needs_are_fast)
{
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_puts(&b, "topology { services = {\n");
    for (int i = 0; i < 60; i++) {
        fl_buf_printf(&b, "  s%02d = { cmd = 'sh', needs = {", i);
        for (int j = 0; j < i; j++)
            fl_buf_printf(&b, " 's%02d',", j);
        fl_buf_puts(&b, " } },\n");
    }
    fl_buf_puts(&b, "} }\n");
    parse_ok(b.data);
    fl_buf_free(&b);
    ck_assert_int_eq(topo.nservices, 60);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(topo.services[i].depth, i);
}
END_TEST

START_TEST(unknown_keys)
{
    EXPECT_USAGE("topology { servics = {} }",
                 "unknown topology key 'servics' (did you mean 'services'?)");
    EXPECT_USAGE("topology { zzzzzzzz = 1 }", "unknown topology key 'zzzzzzzz'", "known: services");
    EXPECT_USAGE("topology { services = { a = { cmd = { 'sh' }, replica = 2 } } }",
                 "unknown service 'a' key 'replica' (did you mean 'replicas'?)");
    EXPECT_USAGE("topology { services = { a = { cmd = { 'sh' }, nedds = { 'b' } } } }",
                 "service 'a'", "'nedds'", "did you mean 'needs'?");
}
END_TEST

START_TEST(bad_cmd)
{
    EXPECT_USAGE("topology { services = { a = { replicas = 2 } } }", "service 'a' has no cmd");
    EXPECT_USAGE("topology { services = { a = { cmd = {} } } }", "service 'a': cmd is empty");
    EXPECT_USAGE("topology { services = { a = { cmd = { 'no-such-exe-zq' } } } }",
                 "service 'a': cannot find executable 'no-such-exe-zq'", "bin directory or PATH");
    EXPECT_USAGE("topology { services = { a = { cmd = { './no/such/path' } } } }",
                 "cannot find executable './no/such/path'", "relative to the current directory");
    EXPECT_USAGE("topology { services = { a = { cmd = { 'sh', {} } } } }",
                 "service 'a': cmd[2] must be a string, got a table");
    EXPECT_USAGE("topology { services = { a = { cmd = 5 } } }",
                 "service 'a': cmd must be a list of strings, got a number");
}
END_TEST

START_TEST(bad_durations)
{
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', grace = '5 s' } } }",
                 "bad grace of service 'a': \"5 s\" is not a duration");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', ready_timeout = -1 } } }",
                 "bad ready_timeout of service 'a': -1 is not a duration");
    EXPECT_USAGE("topology { grace = 'soon', services = {} }",
                 "bad topology grace: \"soon\" is not a duration");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', grace = {} } } }",
                 "bad grace of service 'a': expected a duration", "got a table");
}
END_TEST

START_TEST(bad_replicas)
{
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', replicas = 255 } } }",
                 "service 'a': replicas must be a whole number from 0 to 254, got 255");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', replicas = -1 } } }",
                 "replicas must be a whole number", "got -1");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', replicas = 1.5 } } }",
                 "replicas must be a whole number", "got 1.5");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', replicas = 'two' } } }",
                 "replicas must be a whole number", "got two");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', replicas = true } } }",
                 "replicas must be a whole number", "got true");
    parse_ok("topology { services = { a = { cmd = 'sh', replicas = 254 } } }");
    ck_assert_int_eq(topo.services[0].replicas, 254);
}
END_TEST

START_TEST(bad_needs)
{
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 'dbb' } },\n"
                 "                        db = { cmd = 'sh' } } }",
                 "service 'a' needs 'dbb', which is not a service of this topology",
                 "(did you mean 'db'?)");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 'zzzzzz' } } } }",
                 "service 'a' needs 'zzzzzz', which is not a service of this topology");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 'b' } },\n"
                 "                        b = { cmd = 'sh', needs = { 'a' } } } }",
                 "needs form a cycle");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 'b' } },\n"
                 "  b = { cmd = 'sh', needs = { 'c' } }, c = { cmd = 'sh', needs = { 'b' } } } }",
                 "needs form a cycle");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 'a' } } } }",
                 "service 'a' needs itself");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = 'b' } } }",
                 "service 'a': needs must be a list of service names, got a string");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', needs = { 3 } } } }",
                 "service 'a': needs[1] must be a service name, got a number");
}
END_TEST

START_TEST(bad_names_and_shapes)
{
    EXPECT_USAGE("topology { services = { Users = { cmd = 'sh' } } }", "bad service name 'Users'");
    EXPECT_USAGE("topology { services = { ['a b'] = { cmd = 'sh' } } }", "bad service name 'a b'");
    EXPECT_USAGE("topology { services = { [''] = { cmd = 'sh' } } }", "bad service name ''");
    EXPECT_USAGE("topology { services = { [string.rep('a', 41)] = { cmd = 'sh' } } }",
                 "bad service name");
    EXPECT_USAGE("topology { services = { { cmd = 'sh' } } }",
                 "keys must be service names, got a number");
    EXPECT_USAGE("topology { services = { a = 'sh' } }", "service 'a' must be a table",
                 "got a string");
    EXPECT_USAGE("topology { services = 3 }", "topology services must be a table", "got a number");
    EXPECT_USAGE("topology 'x'", "topology expects a table", "got a string");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', ready = 'http' } } }",
                 "service 'a': ready must be \"port\", \"healthy\" or \"none\"");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', env = { [1] = 'x' } } } }",
                 "service 'a': env keys must be variable names");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', env = { ['A=B'] = 'x' } } } }",
                 "env keys must be variable names");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', env = { X = {} } } } }",
                 "service 'a': env.X must be a string or number, got a table");
    EXPECT_USAGE("topology { services = { a = { cmd = 'sh', env = 'X=1' } } }",
                 "env must be a table");
}
END_TEST

START_TEST(declared_twice)
{
    const char *const want[] = {"topology declared twice (first at test.lua:1)", NULL};
    expect_usage_at("topology { services = { a = { cmd = 'sh' } } }\n"
                    "topology { services = { b = { cmd = 'sh' } } }\n",
                    2, want);
}
END_TEST

START_TEST(error_line_is_the_topology_call)
{
    const char *const want[] = {"unknown service 'a' key 'replica'", NULL};
    expect_usage_at("-- a scenario file\n"
                    "local x = 1\n"
                    "topology {\n"
                    "  services = {\n"
                    "    a = { cmd = 'sh', replica = 2 },\n"
                    "  },\n"
                    "}\n",
                    3, want);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("topology");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, valid_topology);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, empty_topologies);
    tcase_add_test(tc, bin_dir_before_path);
    tcase_add_test(tc, start_wave_depth);
    tcase_add_test(tc, dense_needs_are_fast);
    tcase_add_test(tc, unknown_keys);
    tcase_add_test(tc, bad_cmd);
    tcase_add_test(tc, bad_durations);
    tcase_add_test(tc, bad_replicas);
    tcase_add_test(tc, bad_needs);
    tcase_add_test(tc, bad_names_and_shapes);
    tcase_add_test(tc, declared_twice);
    tcase_add_test(tc, error_line_is_the_topology_call);
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

/* Unit tests for harness/lua_pb.c (t.pb): encode writes protobuf's wire format byte for byte
 * as protoc-generated code would for shop.proto's messages (checked against hand-computed
 * bytes), in field-number order; decode reads it back (varints, fixed32/64, length-delimited,
 * repeated fields as lists); round trips hold; and bad input — keys that are not field
 * numbers, values of other types, truncated or overlong bytes, groups — raises an error that
 * says what and where, never a crash. */
#include <check.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#include "harness/luax.h"
#include "harness/scenario.h"

static lua_State *LS;

static void setup(void)
{
    LS = luaL_newstate();
    luaL_openlibs(LS);
    fl_lua_open_errors(LS);
    fl_sc_pb_push(LS);
    lua_setglobal(LS, "pb");
}

static void teardown(void)
{
    lua_close(LS);
}

/* Runs chunk; returns its first result as a string ("" when none), or "ERR: message". */
static const char *run(const char *chunk)
{
    static char out[4096];
    lua_settop(LS, 0);
    if (luaL_loadstring(LS, chunk) || lua_pcall(LS, 0, 1, 0)) {
        const char *m, *w;
        if (fl_lua_error_kind(LS, -1, &m, &w))
            snprintf(out, sizeof out, "ERR: %s", m);
        else
            snprintf(out, sizeof out, "ERR: %s", lua_tostring(LS, -1));
        return out;
    }
    size_t len = 0;
    const char *s = lua_tolstring(LS, -1, &len);
    snprintf(out, sizeof out, "%s", s ? s : "");
    return out;
}

#define HEX                                                                                        \
    "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', "          \
    "c:byte()) end)) end "

START_TEST(encodes_like_protoc)
{
    /* CreateUserRequest { name = "alice", email = "a@b" } */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = 'alice', [2] = 'a@b' })"),
                     "0a05616c6963651203614062");
    /* order does not depend on the table: field 2 written after field 1 */
    ck_assert_str_eq(run(HEX "local t = {} t[2] = 'a@b' t[1] = 'alice' return hex(pb.encode(t))"),
                     "0a05616c6963651203614062");
    /* CreateOrderRequest { user_id = "u", item = "x", amount = 300 }: 300 = ac 02 */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = 'u', [2] = 'x', [3] = 300 })"),
                     "0a017512017818ac02");
    /* negative int64: ten bytes of two's complement */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = -1 })"), "08ffffffffffffffffff01");
    /* booleans, a double, a big field number, an empty string, zero */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = true, [2] = false })"), "08011000");
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = 1.5 })"), "09000000000000f83f");
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1000] = 1 })"), "c03e01");
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = '', [2] = 0 })"), "0a001000");
    /* nested message and repeated field */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = { [1] = 'a' } })"), "0a030a0161");
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [4] = pb.repeated{ 'a', 'b' } })"),
                     "220161220162");
    ck_assert_str_eq(run(HEX "return hex(pb.encode{})"), "");
    /* bytes with NULs go through unchanged */
    ck_assert_str_eq(run(HEX "return hex(pb.encode{ [1] = '\\0\\1' })"), "0a020001");
}
END_TEST

START_TEST(decodes_and_round_trips)
{
    ck_assert_str_eq(run("local m = pb.decode('\\x0a\\x05alice\\x12\\x03a@b') "
                         "return m[1] .. '|' .. m[2] .. '|' .. tostring(m[3])"),
                     "alice|a@b|nil");
    ck_assert_str_eq(run("local m = pb.decode(pb.encode{ [1] = 'id', [3] = 300, [4] = -5, "
                         "[5] = true }) return m[1] .. m[3] .. m[4] .. m[5]"),
                     "id300-51");
    /* fixed32 and fixed64 */
    ck_assert_str_eq(
        run("local m = pb.decode('\\x0d\\x01\\x00\\x00\\x00\\x11\\x02\\0\\0\\0\\0\\0\\0\\0') "
            "return m[1] .. ',' .. m[2]"),
        "1,2");
    /* a repeated field becomes a list, in order */
    ck_assert_str_eq(run("local m = pb.decode(pb.encode{ [4] = pb.repeated{ 'a', 'b', 'c' } }) "
                         "return type(m[4]) .. #m[4] .. m[4][1] .. m[4][2] .. m[4][3]"),
                     "table3abc");
    /* and a decoded list encodes back to the same bytes */
    ck_assert_str_eq(run("local b = pb.encode{ [4] = pb.repeated{ 'a', 'b' }, [1] = 7 } "
                         "return tostring(pb.encode(pb.decode(b)) == b)"),
                     "true");
    /* nested: decode the inner bytes again */
    ck_assert_str_eq(run("return pb.decode(pb.decode(pb.encode{ [2] = { [1] = 'in' } })[2])[1]"),
                     "in");
    ck_assert_str_eq(run("return tostring(next(pb.decode('')))"), "nil");
}
END_TEST

START_TEST(bad_input_is_an_error_not_a_crash)
{
    ck_assert_str_eq(run("return pb.encode{ name = 'x' }"),
                     "ERR: [string \"return pb.encode{ name = 'x' }\"]:1: t.pb.encode: bad key "
                     "name: keys are field numbers (1 to 536870911)");
    ck_assert(strstr(run("return pb.encode{ [0] = 1 }"), "bad key 0"));
    ck_assert(strstr(run("return pb.encode{ [1.5] = 1 }"), "bad key 1.5"));
    ck_assert(strstr(run("return pb.encode{ [1] = print }"), "field 1: cannot encode a function"));
    ck_assert(strstr(run("local t = {} t[1] = t return pb.encode(t)"), "nested more than 32"));
    ck_assert(strstr(run("return pb.encode('x')"), "ERR: bad t.pb.encode argument"));
    ck_assert(strstr(run("return pb.decode('\\x0a\\x05ali')"),
                     "field 1: length runs past the end at byte 0"));
    ck_assert(strstr(run("return pb.decode('\\x08')"), "field 1: truncated varint at byte 0"));
    ck_assert(strstr(run("return pb.decode('\\x08\\x01\\x80')"),
                     "truncated or overlong field key at byte 2"));
    ck_assert(strstr(run("return pb.decode(string.rep('\\xff', 11))"),
                     "truncated or overlong field key at byte 0"));
    ck_assert(strstr(run("return pb.decode('\\x0b')"), "wire type 3 at byte 0 is not supported"));
    ck_assert(strstr(run("return pb.decode('\\x00\\x01')"), "bad field number 0 at byte 0"));
    ck_assert(strstr(run("return pb.decode('\\x0d\\x01')"), "truncated fixed32"));
    ck_assert(strstr(run("return pb.decode(5)"), "ERR: bad t.pb.decode argument"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lua_pb");
    TCase *tc = tcase_create("pb");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, encodes_like_protoc);
    tcase_add_test(tc, decodes_and_round_trips);
    tcase_add_test(tc, bad_input_is_an_error_not_a_crash);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

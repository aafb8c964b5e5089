/* t.pb: protobuf's wire format without a schema, so scenarios can call gRPC services (a
 * message is bytes) without generated code. encode{ [1] = "alice", [2] = 42 } writes the
 * fields in field-number order: strings length-delimited (wire type 2), integers and booleans
 * as varints (0; negative integers as 64-bit two's complement, as int64 does), other numbers
 * as doubles (fixed64, 1), tables as nested messages (2), and pb.repeated{...} as the same
 * field once per item. decode(bytes) gives back { [n] = value }: varints as integers,
 * length-delimited fields as strings (decode them again for a nested message), fixed64 and
 * fixed32 as integers; a field seen more than once becomes a list of its values. Malformed
 * bytes raise an error naming the offset. */
#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/luax.h"
#include "harness/scenario.h"
#include "lib/buf.h"

#define REPEATED_MT "faultline.pb.repeated"
#define MAX_FIELD 536870911 /* 2^29 - 1 */
#define MAX_DEPTH 32

static void put_varint(luaL_Buffer *b, uint64_t v)
{
    while (v >= 0x80) {
        luaL_addchar(b, (char)(v | 0x80));
        v >>= 7;
    }
    luaL_addchar(b, (char)v);
}

static void encode_table(lua_State *L, int idx, luaL_Buffer *out, int depth);

/* One field's value at the top of the stack; pops it. */
static void encode_value(lua_State *L, lua_Integer field, luaL_Buffer *b, int depth)
{
    uint64_t key = (uint64_t)field << 3;
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        put_varint(b, key | 2);
        put_varint(b, len);
        luaL_addlstring(b, s, len);
        lua_pop(L, 1);
        return;
    }
    case LUA_TBOOLEAN:
        put_varint(b, key);
        put_varint(b, (uint64_t)lua_toboolean(L, -1));
        lua_pop(L, 1);
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, -1)) {
            put_varint(b, key);
            put_varint(b, (uint64_t)lua_tointeger(L, -1));
        } else {
            double d = lua_tonumber(L, -1);
            uint64_t bits;
            memcpy(&bits, &d, sizeof bits);
            put_varint(b, key | 1);
            for (int i = 0; i < 8; i++)
                luaL_addchar(b, (char)(bits >> (8 * i)));
        }
        lua_pop(L, 1);
        return;
    case LUA_TTABLE: {
        if (lua_getmetatable(L, -1)) {
            luaL_getmetatable(L, REPEATED_MT);
            int rep = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            if (rep) {
                int t = lua_gettop(L);
                lua_Integer n = (lua_Integer)lua_rawlen(L, t);
                for (lua_Integer i = 1; i <= n; i++) {
                    lua_rawgeti(L, t, i);
                    if (lua_istable(L, -1) && lua_getmetatable(L, -1)) {
                        lua_pop(L, 1);
                        luaL_error(L,
                                   "t.pb.encode: field %I: a repeated field cannot hold "
                                   "another repeated list",
                                   field);
                    }
                    encode_value(L, field, b, depth);
                }
                lua_pop(L, 1);
                return;
            }
        }
        /* a nested message: encoded apart, then added with its length */
        luaL_Buffer inner;
        int t = lua_gettop(L);
        luaL_buffinit(L, &inner);
        encode_table(L, t, &inner, depth + 1);
        luaL_pushresult(&inner);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        put_varint(b, key | 2);
        put_varint(b, len);
        luaL_addlstring(b, s, len);
        lua_pop(L, 2);
        return;
    }
    default:
        luaL_error(L,
                   "t.pb.encode: field %I: cannot encode %s (strings, integers, numbers, "
                   "booleans, tables and pb.repeated{...} can be)",
                   field, fl_lua_typename(L, -1));
    }
}

static int cmp_int(const void *a, const void *b)
{
    lua_Integer x = *(const lua_Integer *)a, y = *(const lua_Integer *)b;
    return x < y ? -1 : x > y;
}

static void encode_table(lua_State *L, int idx, luaL_Buffer *out, int depth)
{
    if (depth > MAX_DEPTH)
        luaL_error(L, "t.pb.encode: messages nested more than %d deep (a cycle?)", MAX_DEPTH);
    luaL_checkstack(L, 8, "t.pb.encode");
    /* the field numbers, sorted: the output does not depend on table order */
    fl_buf_t nums = FL_BUF_INIT;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int isint = 0;
        lua_Integer k = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
        if (!isint || k < 1 || k > MAX_FIELD) {
            fl_buf_free(&nums);
            const char *ks = luaL_tolstring(L, -1, NULL);
            luaL_error(L, "t.pb.encode: bad key %s: keys are field numbers (1 to %d)", ks,
                       MAX_FIELD);
        }
        fl_buf_append(&nums, &k, sizeof k);
    }
    size_t n = nums.len / sizeof(lua_Integer);
    lua_Integer *ks = (lua_Integer *)nums.data;
    if (n)
        qsort(ks, n, sizeof *ks, cmp_int);
    /* ks lives in a C buffer an error would leak: keep it in a Lua string instead */
    lua_pushlstring(L, nums.data ? nums.data : "", nums.len);
    fl_buf_free(&nums);
    ks = (lua_Integer *)(uintptr_t)lua_tostring(L, -1);
    int keep = lua_gettop(L);
    for (size_t i = 0; i < n; i++) {
        lua_Integer k;
        memcpy(&k, (const char *)ks + i * sizeof k, sizeof k);
        lua_rawgeti(L, idx, k);
        encode_value(L, k, out, depth);
    }
    lua_remove(L, keep);
}

/* pb.encode(table) → bytes */
static int pb_encode(lua_State *L)
{
    if (!lua_istable(L, 1))
        fl_lua_usage(L,
                     "bad t.pb.encode argument: expected a table like { [1] = \"alice\" }, "
                     "got %s",
                     fl_lua_typename(L, 1));
    lua_settop(L, 1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    encode_table(L, 1, &b, 0);
    luaL_pushresult(&b);
    return 1;
}

/* pb.repeated(list) → the list, marked as one repeated field */
static int pb_repeated(lua_State *L)
{
    if (!lua_istable(L, 1))
        fl_lua_usage(L, "bad t.pb.repeated argument: expected a list, got %s",
                     fl_lua_typename(L, 1));
    lua_settop(L, 1);
    luaL_setmetatable(L, REPEATED_MT);
    return 1;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len)
            return -1;
        uint8_t c = p[(*pos)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Sets t[field] = value (top of the stack), making a list when the field repeats. */
static void set_field(lua_State *L, int t, lua_Integer field)
{
    if (lua_rawgeti(L, t, field) == LUA_TNIL) {
        lua_pop(L, 1);
        lua_rawseti(L, t, field);
        return;
    }
    if (lua_istable(L, -1)) { /* already a list */
        lua_insert(L, -2);
        lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        lua_pop(L, 1);
        return;
    }
    lua_createtable(L, 2, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1); /* the earlier value */
    lua_insert(L, -2);
    lua_rawseti(L, -2, 2); /* this one */
    luaL_setmetatable(L, REPEATED_MT);
    lua_rawseti(L, t, field);
}

/* pb.decode(bytes) → { [field] = value } */
static int pb_decode(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        fl_lua_usage(L, "bad t.pb.decode argument: expected bytes (a string), got %s",
                     fl_lua_typename(L, 1));
    size_t len;
    const uint8_t *p = (const uint8_t *)lua_tolstring(L, 1, &len);
    lua_newtable(L);
    int t = lua_gettop(L);
    size_t pos = 0;
    while (pos < len) {
        size_t at = pos;
        uint64_t key, v;
        if (get_varint(p, len, &pos, &key))
            return luaL_error(L, "t.pb.decode: truncated or overlong field key at byte %d",
                              (int)at);
        uint64_t field = key >> 3;
        int wt = (int)(key & 7);
        if (field < 1 || field > MAX_FIELD)
            return luaL_error(L, "t.pb.decode: bad field number %I at byte %d", (lua_Integer)field,
                              (int)at);
        switch (wt) {
        case 0:
            if (get_varint(p, len, &pos, &v))
                return luaL_error(L, "t.pb.decode: field %I: truncated varint at byte %d",
                                  (lua_Integer)field, (int)at);
            lua_pushinteger(L, (lua_Integer)v);
            break;
        case 1:
        case 5: {
            size_t w = wt == 1 ? 8 : 4;
            if (len - pos < w)
                return luaL_error(L, "t.pb.decode: field %I: truncated fixed%d at byte %d",
                                  (lua_Integer)field, (int)(w * 8), (int)at);
            v = 0;
            for (size_t i = 0; i < w; i++)
                v |= (uint64_t)p[pos + i] << (8 * i);
            pos += w;
            lua_pushinteger(L, (lua_Integer)v);
            break;
        }
        case 2:
            if (get_varint(p, len, &pos, &v) || v > len - pos)
                return luaL_error(L,
                                  "t.pb.decode: field %I: length runs past the end at byte "
                                  "%d",
                                  (lua_Integer)field, (int)at);
            lua_pushlstring(L, (const char *)p + pos, (size_t)v);
            pos += (size_t)v;
            break;
        default:
            return luaL_error(L,
                              "t.pb.decode: field %I: wire type %d at byte %d is not "
                              "supported (groups are obsolete)",
                              (lua_Integer)field, wt, (int)at);
        }
        set_field(L, t, (lua_Integer)field);
    }
    return 1;
}

void fl_sc_pb_push(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"encode", pb_encode},
        {"decode", pb_decode},
        {"repeated", pb_repeated},
        {NULL, NULL},
    };
    luaL_newmetatable(L, REPEATED_MT);
    lua_pop(L, 1);
    luaL_newlib(L, fns);
}

/* AMQP 0-9-1 wire format: frames, method arguments from one table of signatures, field tables
 * with RabbitMQ's type codes (its errata to the 0-9-1 spec: 'b' is a signed octet, 's' a
 * signed short, 'x' a byte array; 'L', which RabbitMQ also passes through, an unsigned long
 * long), and basic properties. Pure functions over bytes:
 * every read is bounds-checked against the frame, nothing is allocated, nothing is copied on
 * decode. */
#include "fakes/amqp/codec.h"

#include <stdarg.h>
#include <string.h>

#include "lib/err.h"

const uint8_t fl_amqp_protocol_header[8] = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

static const struct {
    int code;
    const char *name;
} replies[] = {
    {200, "REPLY_SUCCESS"},       {311, "CONTENT_TOO_LARGE"}, {312, "NO_ROUTE"},
    {313, "NO_CONSUMERS"},        {320, "CONNECTION_FORCED"}, {402, "INVALID_PATH"},
    {403, "ACCESS_REFUSED"},      {404, "NOT_FOUND"},         {405, "RESOURCE_LOCKED"},
    {406, "PRECONDITION_FAILED"}, {501, "FRAME_ERROR"},       {502, "SYNTAX_ERROR"},
    {503, "COMMAND_INVALID"},     {504, "CHANNEL_ERROR"},     {505, "UNEXPECTED_FRAME"},
    {506, "RESOURCE_ERROR"},      {530, "NOT_ALLOWED"},       {540, "NOT_IMPLEMENTED"},
    {541, "INTERNAL_ERROR"},
};

const char *fl_amqp_reply_name(int code)
{
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++)
        if (replies[i].code == code)
            return replies[i].name;
    return "";
}

int fl_amqp_reply_is_hard(int code)
{
    switch (code) {
    case 320:
    case 402:
    case 501:
    case 502:
    case 503:
    case 504:
    case 505:
    case 506:
    case 530:
    case 540:
    case 541:
        return 1;
    default:
        return 0;
    }
}

/* Every method of AMQP 0-9-1 and RabbitMQ's extensions (exchange.bind/unbind, basic.nack,
 * confirm, connection.blocked/unblocked, connection.update-secret). */
static const fl_amqp_method_spec_t methods[] = {
    {10, 10, "connection.start", "ooTXX", 0},
    {10, 11, "connection.start-ok", "TSXS", 0},
    {10, 20, "connection.secure", "X", 0},
    {10, 21, "connection.secure-ok", "X", 0},
    {10, 30, "connection.tune", "sls", 0},
    {10, 31, "connection.tune-ok", "sls", 0},
    {10, 40, "connection.open", "SSb", 0},
    {10, 41, "connection.open-ok", "S", 0},
    {10, 50, "connection.close", "sSss", 0},
    {10, 51, "connection.close-ok", "", 0},
    {10, 60, "connection.blocked", "S", 0},
    {10, 61, "connection.unblocked", "", 0},
    {10, 70, "connection.update-secret", "XS", 0},
    {10, 71, "connection.update-secret-ok", "", 0},
    {20, 10, "channel.open", "S", 0},
    {20, 11, "channel.open-ok", "X", 0},
    {20, 20, "channel.flow", "b", 0},
    {20, 21, "channel.flow-ok", "b", 0},
    {20, 40, "channel.close", "sSss", 0},
    {20, 41, "channel.close-ok", "", 0},
    {30, 10, "access.request", "Sbbbbb", 0},
    {30, 11, "access.request-ok", "s", 0},
    {40, 10, "exchange.declare", "sSSbbbbbT", 0},
    {40, 11, "exchange.declare-ok", "", 0},
    {40, 20, "exchange.delete", "sSbb", 0},
    {40, 21, "exchange.delete-ok", "", 0},
    {40, 30, "exchange.bind", "sSSSbT", 0},
    {40, 31, "exchange.bind-ok", "", 0},
    {40, 40, "exchange.unbind", "sSSSbT", 0},
    {40, 51, "exchange.unbind-ok", "", 0},
    {50, 10, "queue.declare", "sSbbbbbT", 0},
    {50, 11, "queue.declare-ok", "Sll", 0},
    {50, 20, "queue.bind", "sSSSbT", 0},
    {50, 21, "queue.bind-ok", "", 0},
    {50, 30, "queue.purge", "sSb", 0},
    {50, 31, "queue.purge-ok", "l", 0},
    {50, 40, "queue.delete", "sSbbb", 0},
    {50, 41, "queue.delete-ok", "l", 0},
    {50, 50, "queue.unbind", "sSSST", 0},
    {50, 51, "queue.unbind-ok", "", 0},
    {60, 10, "basic.qos", "lsb", 0},
    {60, 11, "basic.qos-ok", "", 0},
    {60, 20, "basic.consume", "sSSbbbbT", 0},
    {60, 21, "basic.consume-ok", "S", 0},
    {60, 30, "basic.cancel", "Sb", 0},
    {60, 31, "basic.cancel-ok", "S", 0},
    {60, 40, "basic.publish", "sSSbb", 1},
    {60, 50, "basic.return", "sSSS", 1},
    {60, 60, "basic.deliver", "SLbSS", 1},
    {60, 70, "basic.get", "sSb", 0},
    {60, 71, "basic.get-ok", "LbSSl", 1},
    {60, 72, "basic.get-empty", "S", 0},
    {60, 80, "basic.ack", "Lb", 0},
    {60, 90, "basic.reject", "Lb", 0},
    {60, 100, "basic.recover-async", "b", 0},
    {60, 110, "basic.recover", "b", 0},
    {60, 111, "basic.recover-ok", "", 0},
    {60, 120, "basic.nack", "Lbb", 0},
    {85, 10, "confirm.select", "b", 0},
    {85, 11, "confirm.select-ok", "", 0},
    {90, 10, "tx.select", "", 0},
    {90, 11, "tx.select-ok", "", 0},
    {90, 20, "tx.commit", "", 0},
    {90, 21, "tx.commit-ok", "", 0},
    {90, 30, "tx.rollback", "", 0},
    {90, 31, "tx.rollback-ok", "", 0},
};

/* A binary search: the table is in (class, method) order, and every frame in or out looks its
 * method up. */
const fl_amqp_method_spec_t *fl_amqp_method_find(uint16_t class_id, uint16_t method_id)
{
    uint32_t key = (uint32_t)class_id << 16 | method_id;
    size_t lo = 0, hi = sizeof methods / sizeof methods[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t k = (uint32_t)methods[mid].class_id << 16 | methods[mid].method_id;
        if (k == key)
            return &methods[mid];
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- reading ---- */

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

int fl_amqp_header_legacy(const uint8_t *p, size_t len)
{
    static const uint8_t v09[8] = {'A', 'M', 'Q', 'P', 1, 1, 0, 9};
    static const uint8_t v08[8] = {'A', 'M', 'Q', 'P', 1, 1, 8, 0};
    size_t n = len < 8 ? len : 8;
    int may09 = memcmp(p, v09, n) == 0, may08 = memcmp(p, v08, n) == 0;
    if (!may09 && !may08)
        return 0;
    if (len < 8)
        return FL_EAGAIN;
    return may09 ? 1 : 2;
}

int fl_amqp_header_check(const uint8_t *p, size_t len)
{
    size_t n = len < 8 ? len : 8;
    if (memcmp(p, fl_amqp_protocol_header, n) != 0)
        return FL_EMALFORMED;
    return len < 8 ? FL_EAGAIN : 8;
}

long fl_amqp_frame_parse(const uint8_t *p, size_t len, uint32_t frame_max, fl_amqp_frame_t *f)
{
    if (len < 7)
        return FL_EAGAIN;
    uint8_t type = p[0];
    if (type != FL_AMQP_FRAME_METHOD && type != FL_AMQP_FRAME_HEADER &&
        type != FL_AMQP_FRAME_BODY && type != FL_AMQP_FRAME_HEARTBEAT)
        return -FL_AMQP_FRAME_ERROR;
    uint32_t size = be32(p + 3);
    /* checked before waiting for the payload: an announced 2 GiB frame fails now */
    if ((frame_max && (uint64_t)size + 8 > frame_max) || size > 0x7ffffff0u)
        return -FL_AMQP_FRAME_ERROR;
    if (len < (size_t)size + 8)
        return FL_EAGAIN;
    if (p[7 + size] != FL_AMQP_FRAME_END)
        return -FL_AMQP_FRAME_ERROR;
    f->type = type;
    f->channel = be16(p + 1);
    f->payload = p + 7;
    f->size = size;
    return (long)size + 8;
}

typedef struct {
    const uint8_t *p;
    size_t len, off;
} rd_t;

static int rd_need(rd_t *r, size_t n)
{
    return r->len - r->off >= n;
}

static int rd_u8(rd_t *r, uint64_t *v)
{
    if (!rd_need(r, 1))
        return -1;
    *v = r->p[r->off++];
    return 0;
}
static int rd_u16(rd_t *r, uint64_t *v)
{
    if (!rd_need(r, 2))
        return -1;
    *v = be16(r->p + r->off);
    r->off += 2;
    return 0;
}
static int rd_u32(rd_t *r, uint64_t *v)
{
    if (!rd_need(r, 4))
        return -1;
    *v = be32(r->p + r->off);
    r->off += 4;
    return 0;
}
static int rd_u64(rd_t *r, uint64_t *v)
{
    if (!rd_need(r, 8))
        return -1;
    *v = be64(r->p + r->off);
    r->off += 8;
    return 0;
}
static int rd_bytes(rd_t *r, size_t n, const uint8_t **out)
{
    if (!rd_need(r, n))
        return -1;
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

#define MAX_DEPTH 16

static int value_read(rd_t *r, char type, fl_amqp_value_t *v, int depth);

static int table_check_depth(const uint8_t *p, size_t len, int depth)
{
    if (depth > MAX_DEPTH)
        return FL_EMALFORMED;
    rd_t r = {p, len, 0};
    while (r.off < r.len) {
        uint64_t nlen;
        const uint8_t *name;
        fl_amqp_value_t v;
        if (rd_u8(&r, &nlen) || rd_bytes(&r, nlen, &name) || !rd_need(&r, 1))
            return FL_EMALFORMED;
        char type = (char)r.p[r.off++];
        if (value_read(&r, type, &v, depth) < 0)
            return FL_EMALFORMED;
    }
    return 0;
}

static int array_check_depth(const uint8_t *p, size_t len, int depth)
{
    if (depth > MAX_DEPTH)
        return FL_EMALFORMED;
    rd_t r = {p, len, 0};
    while (r.off < r.len) {
        fl_amqp_value_t v;
        char type = (char)r.p[r.off++];
        if (value_read(&r, type, &v, depth) < 0)
            return FL_EMALFORMED;
    }
    return 0;
}

/* Reads one value of type `type`; depth > 0 also validates nested tables and arrays. */
static int value_read(rd_t *r, char type, fl_amqp_value_t *v, int depth)
{
    uint64_t u;
    memset(v, 0, sizeof *v);
    v->type = type;
    switch (type) {
    case 't':
        if (rd_u8(r, &u))
            return -1;
        v->i = u != 0;
        return 0;
    case 'b':
        if (rd_u8(r, &u))
            return -1;
        v->i = (int8_t)u;
        return 0;
    case 'B':
        if (rd_u8(r, &u))
            return -1;
        v->i = (uint8_t)u;
        return 0;
    case 's':
        if (rd_u16(r, &u))
            return -1;
        v->i = (int16_t)u;
        return 0;
    case 'u':
        if (rd_u16(r, &u))
            return -1;
        v->i = (uint16_t)u;
        return 0;
    case 'I':
        if (rd_u32(r, &u))
            return -1;
        v->i = (int32_t)u;
        return 0;
    case 'i':
        if (rd_u32(r, &u))
            return -1;
        v->i = (uint32_t)u;
        return 0;
    case 'l':
    case 'L':
    case 'T':
        if (rd_u64(r, &u))
            return -1;
        v->i = (int64_t)u;
        return 0;
    case 'f': {
        if (rd_u32(r, &u))
            return -1;
        uint32_t w = (uint32_t)u;
        float fl;
        memcpy(&fl, &w, 4);
        v->d = fl;
        return 0;
    }
    case 'd':
        if (rd_u64(r, &u))
            return -1;
        memcpy(&v->d, &u, 8);
        return 0;
    case 'D':
        if (rd_u8(r, &u))
            return -1;
        v->scale = (uint8_t)u;
        if (rd_u32(r, &u))
            return -1;
        v->i = (int32_t)u;
        return 0;
    case 'S':
    case 'x':
    case 'A':
    case 'F':
        if (rd_u32(r, &u) || rd_bytes(r, u, &v->p))
            return -1;
        v->len = (uint32_t)u;
        if (depth >= 0 && type == 'F')
            return table_check_depth(v->p, v->len, depth + 1) ? -1 : 0;
        if (depth >= 0 && type == 'A')
            return array_check_depth(v->p, v->len, depth + 1) ? -1 : 0;
        return 0;
    case 'V':
        return 0;
    default:
        return -1;
    }
}

int fl_amqp_table_check(const uint8_t *p, size_t len)
{
    return table_check_depth(p, len, 0);
}

int fl_amqp_table_next(const uint8_t *p, size_t len, size_t *off, const uint8_t **name,
                       uint8_t *name_len, fl_amqp_value_t *v)
{
    rd_t r = {p, len, *off};
    uint64_t n;
    if (r.off >= r.len)
        return 0;
    if (rd_u8(&r, &n) || rd_bytes(&r, n, name) || !rd_need(&r, 1))
        return FL_EMALFORMED;
    *name_len = (uint8_t)n;
    char type = (char)r.p[r.off++];
    if (value_read(&r, type, v, -1) < 0)
        return FL_EMALFORMED;
    *off = r.off;
    return 1;
}

int fl_amqp_array_next(const uint8_t *p, size_t len, size_t *off, fl_amqp_value_t *v)
{
    rd_t r = {p, len, *off};
    if (r.off >= r.len)
        return 0;
    char type = (char)r.p[r.off++];
    if (value_read(&r, type, v, -1) < 0)
        return FL_EMALFORMED;
    *off = r.off;
    return 1;
}

int fl_amqp_table_get(const uint8_t *p, size_t len, const char *name, fl_amqp_value_t *v)
{
    size_t off = 0, nl = strlen(name);
    const uint8_t *n;
    uint8_t n_len;
    int rc;
    while ((rc = fl_amqp_table_next(p, len, &off, &n, &n_len, v)) == 1)
        if (n_len == nl && memcmp(n, name, nl) == 0)
            return 1;
    return 0;
}

int fl_amqp_value_int(const fl_amqp_value_t *v, int64_t *out)
{
    switch (v->type) {
    case 'b':
    case 'B':
    case 's':
    case 'u':
    case 'I':
    case 'i':
    case 'l':
    case 'L':
    case 'T':
        *out = v->i;
        return 1;
    default:
        return 0;
    }
}

int fl_amqp_value_equal(const fl_amqp_value_t *a, const fl_amqp_value_t *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case 'f':
    case 'd':
        return a->d == b->d;
    case 'D':
        return a->scale == b->scale && a->i == b->i;
    case 'S':
    case 'x':
    case 'A':
    case 'F':
        return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
    case 'V':
        return 1;
    default:
        return a->i == b->i;
    }
}

int fl_amqp_method_decode(const uint8_t *p, size_t len, fl_amqp_method_t *m)
{
    rd_t r = {p, len, 0};
    uint64_t c, id;
    memset(m, 0, sizeof *m);
    if (rd_u16(&r, &c) || rd_u16(&r, &id))
        return -FL_AMQP_SYNTAX_ERROR;
    m->class_id = (uint16_t)c;
    m->method_id = (uint16_t)id;
    m->spec = fl_amqp_method_find(m->class_id, m->method_id);
    if (!m->spec)
        return -FL_AMQP_COMMAND_INVALID;
    int bit = 8;
    uint8_t bits = 0;
    for (const char *s = m->spec->sig; *s; s++) {
        fl_amqp_arg_t *a = &m->args[m->nargs++];
        uint64_t u = 0;
        if (*s != 'b')
            bit = 8;
        switch (*s) {
        case 'o':
            if (rd_u8(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 's':
            if (rd_u16(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 'l':
            if (rd_u32(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 'L':
            if (rd_u64(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 'S':
            if (rd_u8(&r, &u) || rd_bytes(&r, u, &a->p))
                return -FL_AMQP_SYNTAX_ERROR;
            a->len = (uint32_t)u;
            break;
        case 'X':
        case 'T':
            if (rd_u32(&r, &u) || rd_bytes(&r, u, &a->p))
                return -FL_AMQP_SYNTAX_ERROR;
            a->len = (uint32_t)u;
            if (*s == 'T' && fl_amqp_table_check(a->p, a->len))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 'b':
            if (bit == 8) {
                if (rd_u8(&r, &u))
                    return -FL_AMQP_SYNTAX_ERROR;
                bits = (uint8_t)u;
                bit = 0;
            }
            a->u = (bits >> bit++) & 1;
            break;
        }
    }
    if (r.off != r.len)
        return -FL_AMQP_SYNTAX_ERROR;
    return 0;
}

/* ---- writing ---- */

int fl_amqp_put_u8(fl_buf_t *b, uint8_t v)
{
    return fl_buf_append(b, &v, 1);
}
int fl_amqp_put_u16(fl_buf_t *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return fl_buf_append(b, x, 2);
}
int fl_amqp_put_u32(fl_buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return fl_buf_append(b, x, 4);
}
int fl_amqp_put_u64(fl_buf_t *b, uint64_t v)
{
    int rc = fl_amqp_put_u32(b, (uint32_t)(v >> 32));
    return rc ? rc : fl_amqp_put_u32(b, (uint32_t)v);
}
int fl_amqp_put_shortstr(fl_buf_t *b, const char *s, size_t len)
{
    if (len > 255)
        return FL_EINVAL;
    int rc = fl_amqp_put_u8(b, (uint8_t)len);
    return rc ? rc : fl_buf_append(b, s, len);
}
int fl_amqp_put_longstr(fl_buf_t *b, const void *s, size_t len)
{
    if (len > UINT32_MAX)
        return FL_EINVAL;
    int rc = fl_amqp_put_u32(b, (uint32_t)len);
    return rc ? rc : fl_buf_append(b, s, len);
}

static void patch32(fl_buf_t *b, size_t at, uint32_t v)
{
    uint8_t *p = (uint8_t *)b->data + at;
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

size_t fl_amqp_table_begin(fl_buf_t *b)
{
    size_t at = b->len;
    fl_amqp_put_u32(b, 0);
    return at;
}

int fl_amqp_table_end(fl_buf_t *b, size_t start)
{
    if (!b->data || b->len < start + 4)
        return FL_ENOMEM;
    patch32(b, start, (uint32_t)(b->len - start - 4));
    return 0;
}

static int field_name(fl_buf_t *b, const char *name, char type)
{
    int rc = fl_amqp_put_shortstr(b, name, strlen(name));
    return rc ? rc : fl_amqp_put_u8(b, (uint8_t)type);
}

int fl_amqp_field_str(fl_buf_t *b, const char *name, const char *value)
{
    int rc = field_name(b, name, 'S');
    return rc ? rc : fl_amqp_put_longstr(b, value, strlen(value));
}
int fl_amqp_field_bool(fl_buf_t *b, const char *name, int value)
{
    int rc = field_name(b, name, 't');
    return rc ? rc : fl_amqp_put_u8(b, value ? 1 : 0);
}
int fl_amqp_field_long(fl_buf_t *b, const char *name, int64_t value)
{
    int rc = field_name(b, name, 'l');
    return rc ? rc : fl_amqp_put_u64(b, (uint64_t)value);
}
int fl_amqp_field_raw(fl_buf_t *b, const char *name, char type, const void *p, size_t len)
{
    int rc = field_name(b, name, type);
    return rc ? rc : fl_buf_append(b, p, len);
}

/* Starts a frame; returns the offset of its size word. */
static size_t frame_begin(fl_buf_t *b, uint8_t type, uint16_t channel)
{
    fl_amqp_put_u8(b, type);
    fl_amqp_put_u16(b, channel);
    size_t at = b->len;
    fl_amqp_put_u32(b, 0);
    return at;
}

static int frame_end(fl_buf_t *b, size_t at)
{
    if (fl_amqp_put_u8(b, FL_AMQP_FRAME_END))
        return FL_ENOMEM;
    patch32(b, at, (uint32_t)(b->len - at - 5));
    return 0;
}

int fl_amqp_method_frame(fl_buf_t *out, uint16_t channel, uint16_t class_id, unsigned method_id,
                         ...)
{
    /* unsigned, not uint16_t: va_start's last named parameter must not be promoted */
    const fl_amqp_method_spec_t *spec =
        method_id > 0xffff ? NULL : fl_amqp_method_find(class_id, (uint16_t)method_id);
    if (!spec)
        return FL_EINVAL;
    size_t mark = out->len;
    size_t at = frame_begin(out, FL_AMQP_FRAME_METHOD, channel);
    int rc = fl_amqp_put_u16(out, class_id);
    rc = rc ? rc : fl_amqp_put_u16(out, (uint16_t)method_id);
    va_list ap;
    va_start(ap, method_id);
    int bit = 8;
    size_t bits_at = 0;
    for (const char *s = spec->sig; *s && !rc; s++) {
        if (*s != 'b')
            bit = 8;
        switch (*s) {
        case 'o':
            rc = fl_amqp_put_u8(out, (uint8_t)va_arg(ap, int));
            break;
        case 's':
            rc = fl_amqp_put_u16(out, (uint16_t)va_arg(ap, int));
            break;
        case 'l':
            rc = fl_amqp_put_u32(out, va_arg(ap, uint32_t));
            break;
        case 'L':
            rc = fl_amqp_put_u64(out, va_arg(ap, uint64_t));
            break;
        case 'S': {
            const char *str = va_arg(ap, const char *);
            rc = fl_amqp_put_shortstr(out, str, strlen(str));
            break;
        }
        case 'X':
        case 'T': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = fl_amqp_put_longstr(out, p, n);
            break;
        }
        case 'b': {
            int v = va_arg(ap, int);
            if (bit == 8) {
                bits_at = out->len;
                rc = fl_amqp_put_u8(out, 0);
                bit = 0;
            }
            if (!rc && v)
                out->data[bits_at] = (char)((uint8_t)out->data[bits_at] | (1u << bit));
            bit++;
            break;
        }
        }
    }
    va_end(ap);
    rc = rc ? rc : frame_end(out, at);
    if (rc)
        out->len = mark;
    return rc;
}

int fl_amqp_heartbeat_frame(fl_buf_t *out)
{
    static const uint8_t hb[8] = {FL_AMQP_FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FL_AMQP_FRAME_END};
    return fl_buf_append(out, hb, sizeof hb);
}

int fl_amqp_header_frame(fl_buf_t *out, uint16_t channel, uint64_t body_size, const uint8_t *props,
                         size_t props_len)
{
    size_t mark = out->len;
    size_t at = frame_begin(out, FL_AMQP_FRAME_HEADER, channel);
    int rc = fl_amqp_put_u16(out, 60);
    rc = rc ? rc : fl_amqp_put_u16(out, 0);
    rc = rc ? rc : fl_amqp_put_u64(out, body_size);
    rc = rc ? rc : fl_buf_append(out, props, props_len);
    rc = rc ? rc : frame_end(out, at);
    if (rc)
        out->len = mark;
    return rc;
}

int fl_amqp_body_frames(fl_buf_t *out, uint16_t channel, const uint8_t *body, size_t len,
                        uint32_t frame_max)
{
    size_t chunk = frame_max > 8 ? frame_max - 8 : 1;
    size_t mark = out->len;
    int rc = fl_buf_reserve(out, len + (len / chunk + 1) * 8);
    for (size_t off = 0; off < len && !rc; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        size_t at = frame_begin(out, FL_AMQP_FRAME_BODY, channel);
        rc = fl_buf_append(out, body + off, n);
        rc = rc ? rc : frame_end(out, at);
    }
    if (rc)
        out->len = mark;
    return rc;
}

static uint8_t *w16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}
static uint8_t *w32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}
static uint8_t *w64(uint8_t *p, uint64_t v)
{
    return w32(w32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}
static uint8_t *wbytes(uint8_t *p, const void *s, size_t len)
{
    if (len)
        memcpy(p, s, len);
    return p + len;
}
static uint8_t *wshortstr(uint8_t *p, const char *s, size_t len)
{
    *p++ = (uint8_t)len;
    return wbytes(p, s, len);
}
/* A frame's type, channel and size. */
static uint8_t *wframe(uint8_t *p, uint8_t type, uint16_t channel, uint32_t size)
{
    *p++ = type;
    return w32(w16(p, channel), size);
}

int fl_amqp_deliver_frames(fl_buf_t *out, uint16_t channel, const char *ctag, uint64_t tag,
                           int redelivered, const char *exchange, const char *rkey,
                           const uint8_t *props, size_t props_len, const uint8_t *body,
                           size_t body_len, uint32_t frame_max)
{
    size_t ct_len = strlen(ctag), ex_len = strlen(exchange), rk_len = strlen(rkey);
    if (ct_len > 255 || ex_len > 255 || rk_len > 255)
        return FL_EINVAL;
    size_t chunk = frame_max > 8 ? frame_max - 8 : 1;
    size_t nbodies = (body_len + chunk - 1) / chunk;
    uint32_t method_size = (uint32_t)(4 + 1 + ct_len + 8 + 1 + 1 + ex_len + 1 + rk_len);
    uint32_t header_size = (uint32_t)(2 + 2 + 8 + props_len);
    size_t total = 8 + method_size + 8 + header_size + body_len + nbodies * 8;
    if (fl_buf_reserve(out, total))
        return FL_ENOMEM;
    uint8_t *p = (uint8_t *)out->data + out->len;
    /* basic.deliver: consumer-tag, delivery-tag, redelivered, exchange, routing-key */
    p = wframe(p, FL_AMQP_FRAME_METHOD, channel, method_size);
    p = w16(w16(p, 60), 60);
    p = wshortstr(p, ctag, ct_len);
    p = w64(p, tag);
    *p++ = redelivered ? 1 : 0;
    p = wshortstr(p, exchange, ex_len);
    p = wshortstr(p, rkey, rk_len);
    *p++ = FL_AMQP_FRAME_END;
    /* the content header: class 60, weight 0, body size, properties */
    p = wframe(p, FL_AMQP_FRAME_HEADER, channel, header_size);
    p = w64(w16(w16(p, 60), 0), body_len);
    p = wbytes(p, props, props_len);
    *p++ = FL_AMQP_FRAME_END;
    for (size_t off = 0; off < body_len; off += chunk) {
        size_t n = body_len - off < chunk ? body_len - off : chunk;
        p = wframe(p, FL_AMQP_FRAME_BODY, channel, (uint32_t)n);
        p = wbytes(p, body + off, n);
        *p++ = FL_AMQP_FRAME_END;
    }
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

/* Property types in flag order. */
static const char prop_sig[FL_AMQP_P_COUNT + 1] = "SSToo"
                                                  "SSSS"
                                                  "L"
                                                  "SSSS";

int fl_amqp_header_decode(const uint8_t *p, size_t len, uint16_t *class_id, uint64_t *body_size,
                          fl_amqp_props_t *props, size_t *props_off)
{
    rd_t r = {p, len, 0};
    uint64_t c, w;
    memset(props, 0, sizeof *props);
    if (rd_u16(&r, &c) || rd_u16(&r, &w) || rd_u64(&r, body_size))
        return -FL_AMQP_SYNTAX_ERROR;
    *class_id = (uint16_t)c;
    if (w != 0)
        return -FL_AMQP_FRAME_ERROR;
    *props_off = r.off;
    return fl_amqp_props_decode(p + r.off, len - r.off, props);
}

int fl_amqp_props_decode(const uint8_t *p, size_t len, fl_amqp_props_t *props)
{
    rd_t r = {p, len, 0};
    uint64_t flags;
    memset(props, 0, sizeof *props);
    /* bit 0 would continue the flags, which no class of 0-9-1 needs; bit 1 is unused */
    if (rd_u16(&r, &flags) || (flags & 0x3))
        return -FL_AMQP_SYNTAX_ERROR;
    props->flags = (uint16_t)flags;
    for (int i = 0; i < FL_AMQP_P_COUNT; i++) {
        if (!FL_AMQP_HAS(props, i))
            continue;
        fl_amqp_arg_t *a = &props->v[i];
        uint64_t u;
        switch (prop_sig[i]) {
        case 'S':
            if (rd_u8(&r, &u) || rd_bytes(&r, u, &a->p))
                return -FL_AMQP_SYNTAX_ERROR;
            a->len = (uint32_t)u;
            break;
        case 'T':
            if (rd_u32(&r, &u) || rd_bytes(&r, u, &a->p) || fl_amqp_table_check(a->p, (size_t)u))
                return -FL_AMQP_SYNTAX_ERROR;
            a->len = (uint32_t)u;
            break;
        case 'o':
            if (rd_u8(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        case 'L':
            if (rd_u64(&r, &a->u))
                return -FL_AMQP_SYNTAX_ERROR;
            break;
        }
    }
    if (r.off != r.len)
        return -FL_AMQP_SYNTAX_ERROR;
    return 0;
}

int fl_amqp_props_encode(fl_buf_t *out, const fl_amqp_props_t *props)
{
    int rc = fl_amqp_put_u16(out, props->flags);
    for (int i = 0; i < FL_AMQP_P_COUNT && !rc; i++) {
        if (!FL_AMQP_HAS(props, i))
            continue;
        const fl_amqp_arg_t *a = &props->v[i];
        switch (prop_sig[i]) {
        case 'S':
            rc = fl_amqp_put_shortstr(out, (const char *)a->p, a->len);
            break;
        case 'T':
            rc = fl_amqp_put_longstr(out, a->p, a->len);
            break;
        case 'o':
            rc = fl_amqp_put_u8(out, (uint8_t)a->u);
            break;
        case 'L':
            rc = fl_amqp_put_u64(out, a->u);
            break;
        }
    }
    return rc;
}

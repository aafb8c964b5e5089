/* Unit tests for the fake broker's wire format (fakes/amqp/codec.c): frames (every prefix is
 * "need more", a huge announced size fails before its payload), the protocol header, every
 * method of the table encoded then decoded (bits packed as the spec says, every truncation a
 * syntax error), field tables with each of RabbitMQ's type codes, basic properties, and body
 * splitting at frame_max. Inputs are copied into buffers of their exact size so that ASan sees
 * any read past them. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakes/amqp/codec.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/rng.h"

/* A heap copy of exactly len bytes (at least one byte allocated). */
static uint8_t *exact(const void *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(d);
    if (len)
        memcpy(d, p, len);
    return d;
}

static long parse_exact(const void *p, size_t len, uint32_t frame_max, fl_amqp_frame_t *f)
{
    uint8_t *d = exact(p, len);
    long n = fl_amqp_frame_parse(d, len, frame_max, f);
    free(d);
    return n;
}

static int header_check_exact(const void *p, size_t len)
{
    uint8_t *d = exact(p, len);
    int rc = fl_amqp_header_check(d, len);
    free(d);
    return rc;
}

static int table_check_exact(const void *p, size_t len)
{
    uint8_t *d = exact(p, len);
    int rc = fl_amqp_table_check(d, len);
    free(d);
    return rc;
}

static int decode_exact(const void *p, size_t len, fl_amqp_method_t *m)
{
    uint8_t *d = exact(p, len);
    int rc = fl_amqp_method_decode(d, len, m);
    free(d);
    return rc;
}

/* ---- frames ---- */

START_TEST(frame_need_more_at_every_prefix)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_amqp_method_frame(&b, 7, 20, 10, "x"), 0);
    size_t len = b.len;
    ck_assert_uint_eq(len, 8 + 4 + 2);
    for (size_t k = 0; k < len; k++) {
        fl_amqp_frame_t f;
        ck_assert_msg(parse_exact(b.data, k, 0, &f) == FL_EAGAIN, "prefix %zu", k);
        ck_assert_msg(parse_exact(b.data, k, 4096, &f) == FL_EAGAIN, "prefix %zu", k);
    }
    fl_amqp_frame_t f;
    ck_assert_int_eq(parse_exact(b.data, len, 4096, &f), (long)len);
    /* a second frame behind the first is left for the next call */
    ck_assert_int_eq(fl_amqp_heartbeat_frame(&b), 0);
    ck_assert_int_eq(fl_amqp_frame_parse((uint8_t *)b.data, b.len, 4096, &f), (long)len);
    ck_assert_int_eq(f.type, FL_AMQP_FRAME_METHOD);
    ck_assert_int_eq(f.channel, 7);
    ck_assert_uint_eq(f.size, 6);
    ck_assert_ptr_eq(f.payload, (uint8_t *)b.data + 7);
    ck_assert_int_eq(fl_amqp_frame_parse((uint8_t *)b.data + len, 8, 4096, &f), 8);
    ck_assert_int_eq(f.type, FL_AMQP_FRAME_HEARTBEAT);
    ck_assert_int_eq(f.channel, 0);
    ck_assert_uint_eq(f.size, 0);
    fl_buf_free(&b);
}
END_TEST

START_TEST(frame_end_missing)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_amqp_method_frame(&b, 1, 60, 80, (uint64_t)5, 1), 0);
    fl_amqp_frame_t f;
    ck_assert_int_eq(parse_exact(b.data, b.len, 0, &f), (long)b.len);
    for (int v = 0; v < 256; v++) {
        if (v == FL_AMQP_FRAME_END)
            continue;
        b.data[b.len - 1] = (char)v;
        ck_assert_int_eq(parse_exact(b.data, b.len, 0, &f), -FL_AMQP_FRAME_ERROR);
    }
    fl_buf_free(&b);
}
END_TEST

START_TEST(frame_unknown_type)
{
    /* only the 7 header bytes: the type fails at once */
    for (int t = 0; t < 256; t++) {
        uint8_t h[7] = {(uint8_t)t, 0, 1, 0, 0, 0, 4};
        fl_amqp_frame_t f;
        long n = parse_exact(h, 7, 0, &f);
        if (t == 1 || t == 2 || t == 3 || t == 8)
            ck_assert_msg(n == FL_EAGAIN, "type %d: %ld", t, n);
        else
            ck_assert_msg(n == -FL_AMQP_FRAME_ERROR, "type %d: %ld", t, n);
    }
}
END_TEST

START_TEST(frame_huge_size_fails_at_once)
{
    static const uint32_t sizes[] = {0x80000000u, 0xfffffff8u, 0xffffffffu, 0x7ffffff1u};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint32_t s = sizes[i];
        uint8_t h[7] = {3,         0, 1, (uint8_t)(s >> 24), (uint8_t)(s >> 16), (uint8_t)(s >> 8),
                        (uint8_t)s};
        fl_amqp_frame_t f;
        ck_assert_msg(parse_exact(h, 7, 131072, &f) == -FL_AMQP_FRAME_ERROR, "size %x", s);
        /* without a negotiated bound too */
        ck_assert_msg(parse_exact(h, 7, 0, &f) == -FL_AMQP_FRAME_ERROR, "size %x, no bound", s);
    }
}
END_TEST

START_TEST(frame_max_bound)
{
    /* a frame of exactly frame_max bytes in all passes; one more byte fails before its payload */
    uint32_t fmax = 4096;
    uint8_t *frame = calloc(1, fmax + 1);
    ck_assert_ptr_nonnull(frame);
    uint32_t size = fmax - 8;
    frame[0] = 3;
    frame[2] = 1;
    frame[3] = (uint8_t)(size >> 24);
    frame[4] = (uint8_t)(size >> 16);
    frame[5] = (uint8_t)(size >> 8);
    frame[6] = (uint8_t)size;
    frame[fmax - 1] = FL_AMQP_FRAME_END;
    fl_amqp_frame_t f;
    ck_assert_int_eq(parse_exact(frame, fmax, fmax, &f), (long)fmax);
    ck_assert_uint_eq(f.size, size);
    ck_assert_int_eq(parse_exact(frame, 7, fmax, &f), FL_EAGAIN);
    size++;
    frame[5] = (uint8_t)(size >> 8);
    frame[6] = (uint8_t)size;
    ck_assert_int_eq(parse_exact(frame, 7, fmax, &f), -FL_AMQP_FRAME_ERROR);
    ck_assert_int_eq(parse_exact(frame, 7, fmax + 1, &f), FL_EAGAIN);
    frame[fmax] = FL_AMQP_FRAME_END;
    ck_assert_int_eq(parse_exact(frame, fmax + 1, fmax + 1, &f), (long)fmax + 1);
    ck_assert_int_eq(parse_exact(frame, fmax + 1, 0, &f), (long)fmax + 1);
    free(frame);
}
END_TEST

/* ---- protocol header ---- */

START_TEST(protocol_header_prefixes)
{
    const uint8_t *h = fl_amqp_protocol_header;
    ck_assert_mem_eq(h, "AMQP\0\0\x09\x01", 8);
    for (size_t k = 0; k < 8; k++)
        ck_assert_msg(header_check_exact(h, k) == FL_EAGAIN, "prefix %zu", k);
    uint8_t more[12] = "AMQP\0\0\x09\x01\x01\x00";
    ck_assert_int_eq(fl_amqp_header_check(more, 8), 8);
    ck_assert_int_eq(fl_amqp_header_check(more, sizeof more), 8);
}
END_TEST

START_TEST(protocol_header_wrong)
{
    static const char *bad[] = {
        "AMQP\0\0\x09\x00",     /* 0-9 */
        "AMQP\x01\x01\x00\x0a", /* 0-10 */
        "AMQP\0\x01\0\0",       /* AMQP 1.0 */
        "AMQP\x03\x01\0\0",     /* AMQP 1.0 SASL */
        "AMQP\0\0\x08\x00",     /* 0-8 */
        "GET / HT",
        "\0\0\0\0\0\0\0\0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const uint8_t *p = (const uint8_t *)bad[i];
        size_t diff = 0;
        while (p[diff] == fl_amqp_protocol_header[diff])
            diff++;
        for (size_t k = 0; k <= 8; k++) {
            int rc = header_check_exact(p, k);
            if (k <= diff)
                ck_assert_msg(rc == FL_EAGAIN, "header %zu, prefix %zu: %d", i, k, rc);
            else
                ck_assert_msg(rc == FL_EMALFORMED, "header %zu, prefix %zu: %d", i, k, rc);
        }
    }
}
END_TEST

/* ---- methods ---- */

/* One argument's value, for any signature letter. */
typedef struct {
    uint64_t u;
    char s[256];
    uint8_t x[300];
    size_t xlen;
} val_t;

/* A valid table (for T arguments) whose contents depend on r. */
static size_t make_table(fl_rng_t *r, uint8_t *out, size_t cap)
{
    fl_buf_t b = FL_BUF_INIT;
    int n = (int)fl_rng_below(r, 4);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "k%d", i);
        switch (fl_rng_below(r, 3)) {
        case 0:
            fl_amqp_field_str(&b, name, "value");
            break;
        case 1:
            fl_amqp_field_bool(&b, name, (int)fl_rng_below(r, 2));
            break;
        default:
            fl_amqp_field_long(&b, name, (int64_t)fl_rng_next(r));
        }
    }
    ck_assert_uint_le(b.len, cap);
    if (b.len)
        memcpy(out, b.data, b.len);
    size_t len = b.len;
    fl_buf_free(&b);
    return len;
}

static void random_val(fl_rng_t *r, char type, val_t *v, int round)
{
    memset(v, 0, sizeof *v);
    switch (type) {
    case 'o':
        v->u = round == 0 ? 0 : round == 1 ? 255 : fl_rng_below(r, 256);
        break;
    case 's':
        v->u = round == 0 ? 0 : round == 1 ? 65535 : fl_rng_below(r, 65536);
        break;
    case 'l':
        v->u = round == 0 ? 0 : round == 1 ? UINT32_MAX : (uint32_t)fl_rng_next(r);
        break;
    case 'L':
        v->u = round == 0 ? 0 : round == 1 ? UINT64_MAX : fl_rng_next(r);
        break;
    case 'b':
        v->u = round == 0 ? 0 : round == 1 ? 1 : fl_rng_below(r, 2);
        break;
    case 'S': {
        size_t n = round == 0 ? 0 : round == 1 ? 255 : fl_rng_below(r, 40);
        for (size_t i = 0; i < n; i++)
            v->s[i] = (char)('a' + fl_rng_below(r, 26));
        v->s[n] = 0;
        break;
    }
    case 'X':
        v->xlen = round == 0 ? 0 : round == 1 ? 300 : fl_rng_below(r, 40);
        for (size_t i = 0; i < v->xlen; i++)
            v->x[i] = (uint8_t)fl_rng_below(r, 256); /* NULs included */
        break;
    case 'T':
        v->xlen = round == 0 ? 0 : make_table(r, v->x, sizeof v->x);
        break;
    }
}

#define A(i, t) ((t)v[i].u)
#define P(i) (const void *)v[i].x, v[i].xlen

/* fl_amqp_method_frame with the arguments in v, as the method's signature wants them passed.
 * Returns -12345 for a signature this test does not know (every one in the table must be). */
static int encode(fl_buf_t *b, uint16_t ch, const fl_amqp_method_spec_t *sp, const val_t *v)
{
    const char *s = sp->sig;
    uint16_t c = sp->class_id, m = sp->method_id;
#define IS(x) (strcmp(s, x) == 0)
    if (IS(""))
        return fl_amqp_method_frame(b, ch, c, m);
    if (IS("ooTXX"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), A(1, int), P(2), P(3), P(4));
    if (IS("TSXS"))
        return fl_amqp_method_frame(b, ch, c, m, P(0), v[1].s, P(2), v[3].s);
    if (IS("X"))
        return fl_amqp_method_frame(b, ch, c, m, P(0));
    if (IS("XS"))
        return fl_amqp_method_frame(b, ch, c, m, P(0), v[1].s);
    if (IS("sls"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), A(1, uint32_t), A(2, int));
    if (IS("SSb"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s, v[1].s, A(2, int));
    if (IS("S"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s);
    if (IS("sSss"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, A(2, int), A(3, int));
    if (IS("b"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int));
    if (IS("s"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int));
    if (IS("l"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, uint32_t));
    if (IS("Sbbbbb"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s, A(1, int), A(2, int), A(3, int), A(4, int),
                                    A(5, int));
    if (IS("sSSbbbbbT"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, A(3, int), A(4, int),
                                    A(5, int), A(6, int), A(7, int), P(8));
    if (IS("sSbb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, A(2, int), A(3, int));
    if (IS("sSSSbT"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, v[3].s, A(4, int),
                                    P(5));
    if (IS("sSbbbbbT"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, A(2, int), A(3, int), A(4, int),
                                    A(5, int), A(6, int), P(7));
    if (IS("Sll"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s, A(1, uint32_t), A(2, uint32_t));
    if (IS("sSb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, A(2, int));
    if (IS("sSbbb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, A(2, int), A(3, int),
                                    A(4, int));
    if (IS("sSSST"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, v[3].s, P(4));
    if (IS("lsb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, uint32_t), A(1, int), A(2, int));
    if (IS("sSSbbbbT"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, A(3, int), A(4, int),
                                    A(5, int), A(6, int), P(7));
    if (IS("Sb"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s, A(1, int));
    if (IS("sSSbb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, A(3, int), A(4, int));
    if (IS("sSSS"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, int), v[1].s, v[2].s, v[3].s);
    if (IS("SLbSS"))
        return fl_amqp_method_frame(b, ch, c, m, v[0].s, A(1, uint64_t), A(2, int), v[3].s, v[4].s);
    if (IS("LbSSl"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, uint64_t), A(1, int), v[2].s, v[3].s,
                                    A(4, uint32_t));
    if (IS("Lb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, uint64_t), A(1, int));
    if (IS("Lbb"))
        return fl_amqp_method_frame(b, ch, c, m, A(0, uint64_t), A(1, int), A(2, int));
#undef IS
    return -12345;
}

/* Every method the table has, found by asking for every (class, method) pair. */
static size_t all_methods(const fl_amqp_method_spec_t **out, size_t cap)
{
    size_t n = 0;
    for (unsigned c = 0; c < 256; c++)
        for (unsigned m = 0; m < 256; m++) {
            const fl_amqp_method_spec_t *sp = fl_amqp_method_find((uint16_t)c, (uint16_t)m);
            if (sp) {
                ck_assert_uint_lt(n, cap);
                ck_assert_uint_eq(sp->class_id, c);
                ck_assert_uint_eq(sp->method_id, m);
                out[n++] = sp;
            }
        }
    return n;
}

static void check_args(const fl_amqp_method_spec_t *sp, const fl_amqp_method_t *m, const val_t *v)
{
    ck_assert_ptr_eq(m->spec, sp);
    ck_assert_int_eq(m->class_id, sp->class_id);
    ck_assert_int_eq(m->method_id, sp->method_id);
    ck_assert_int_eq(m->nargs, (int)strlen(sp->sig));
    for (int i = 0; sp->sig[i]; i++) {
        const fl_amqp_arg_t *a = &m->args[i];
        switch (sp->sig[i]) {
        case 'S':
            ck_assert_msg(a->len == strlen(v[i].s) && memcmp(a->p, v[i].s, a->len) == 0,
                          "%s arg %d", sp->name, i);
            break;
        case 'X':
        case 'T':
            ck_assert_msg(a->len == v[i].xlen && (a->len == 0 || memcmp(a->p, v[i].x, a->len) == 0),
                          "%s arg %d", sp->name, i);
            break;
        default:
            ck_assert_msg(a->u == v[i].u, "%s arg %d: %llu, wanted %llu", sp->name, i,
                          (unsigned long long)a->u, (unsigned long long)v[i].u);
        }
    }
}

START_TEST(every_method_round_trips)
{
    const fl_amqp_method_spec_t *specs[128];
    size_t n = all_methods(specs, 128);
    ck_assert_uint_ge(n, 66); /* AMQP 0-9-1 and RabbitMQ's extensions */
    static val_t v[FL_AMQP_MAX_ARGS];
    fl_rng_t r;
    fl_rng_seed(&r, 91);
    for (size_t i = 0; i < n; i++) {
        const fl_amqp_method_spec_t *sp = specs[i];
        ck_assert_uint_le(strlen(sp->sig), FL_AMQP_MAX_ARGS);
        for (int round = 0; round < 40; round++) {
            for (int k = 0; sp->sig[k]; k++)
                random_val(&r, sp->sig[k], &v[k], round);
            fl_buf_t b = FL_BUF_INIT;
            int rc = encode(&b, 9, sp, v);
            ck_assert_msg(rc == 0, "%s (%s): encode %d", sp->name, sp->sig, rc);
            fl_amqp_frame_t f;
            ck_assert_int_eq(fl_amqp_frame_parse((uint8_t *)b.data, b.len, 0, &f), (long)b.len);
            ck_assert_int_eq(f.type, FL_AMQP_FRAME_METHOD);
            ck_assert_int_eq(f.channel, 9);
            uint8_t *pl = exact(f.payload, f.size);
            fl_amqp_method_t m;
            ck_assert_msg(fl_amqp_method_decode(pl, f.size, &m) == 0, "%s: decode", sp->name);
            check_args(sp, &m, v);
            free(pl);
            /* every truncation is a syntax error, and so is one byte more */
            for (uint32_t k = 0; k < f.size; k++)
                ck_assert_msg(decode_exact(f.payload, k, &m) == -FL_AMQP_SYNTAX_ERROR,
                              "%s cut at %u", sp->name, k);
            uint8_t *longer = malloc(f.size + 1);
            memcpy(longer, f.payload, f.size);
            longer[f.size] = 0;
            ck_assert_msg(fl_amqp_method_decode(longer, f.size + 1, &m) == -FL_AMQP_SYNTAX_ERROR,
                          "%s with a trailing byte", sp->name);
            free(longer);
            fl_buf_free(&b);
        }
    }
}
END_TEST

START_TEST(bits_share_octets)
{
    /* queue.declare: ticket, queue, then 5 bits in one octet, then the table */
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_amqp_method_frame(&b, 1, 50, 10, 0, "q", 1, 0, 1, 0, 1, NULL, (size_t)0),
                     0);
    /* 7 header + 4 ids + 2 ticket + 2 "q" + 1 bits + 4 table + 1 end */
    ck_assert_uint_eq(b.len, 21);
    ck_assert_uint_eq((uint8_t)b.data[15], 0x15); /* passive, exclusive, nowait: bits 0 2 4 */
    fl_amqp_method_t m;
    ck_assert_int_eq(fl_amqp_method_decode((uint8_t *)b.data + 7, b.len - 8, &m), 0);
    ck_assert_uint_eq(m.args[2].u, 1);
    ck_assert_uint_eq(m.args[3].u, 0);
    ck_assert_uint_eq(m.args[4].u, 1);
    ck_assert_uint_eq(m.args[5].u, 0);
    ck_assert_uint_eq(m.args[6].u, 1);
    /* the unused high bits of the octet are ignored on decode */
    b.data[15] = (char)0xf5;
    ck_assert_int_eq(fl_amqp_method_decode((uint8_t *)b.data + 7, b.len - 8, &m), 0);
    ck_assert_uint_eq(m.args[6].u, 1);
    ck_assert_uint_eq(m.args[3].u, 0);
    fl_buf_reset(&b);
    /* basic.nack: delivery tag, multiple (bit 0), requeue (bit 1) */
    ck_assert_int_eq(fl_amqp_method_frame(&b, 1, 60, 120, (uint64_t)3, 0, 1), 0);
    ck_assert_uint_eq(b.len, 7 + 4 + 8 + 1 + 1);
    ck_assert_uint_eq((uint8_t)b.data[19], 0x02);
    fl_buf_reset(&b);
    /* basic.get-ok: a bit between a long-long and strings takes a whole octet */
    ck_assert_int_eq(fl_amqp_method_frame(&b, 1, 60, 71, (uint64_t)1, 1, "", "", (uint32_t)0), 0);
    ck_assert_uint_eq(b.len, 7 + 4 + 8 + 1 + 1 + 1 + 4 + 1);
    ck_assert_uint_eq((uint8_t)b.data[19], 0x01);
    fl_buf_free(&b);
}
END_TEST

START_TEST(unknown_method)
{
    static const uint16_t ids[][2] = {{10, 12}, {10, 0},  {0, 0},   {40, 41},      {60, 41},
                                      {99, 10}, {85, 12}, {90, 40}, {65535, 65535}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        uint8_t p[4] = {(uint8_t)(ids[i][0] >> 8), (uint8_t)ids[i][0], (uint8_t)(ids[i][1] >> 8),
                        (uint8_t)ids[i][1]};
        fl_amqp_method_t m;
        ck_assert_int_eq(decode_exact(p, 4, &m), -FL_AMQP_COMMAND_INVALID);
        ck_assert_int_eq(m.class_id, ids[i][0]);
        ck_assert_int_eq(m.method_id, ids[i][1]);
        ck_assert_ptr_null(m.spec);
        fl_buf_t b = FL_BUF_INIT;
        ck_assert_int_eq(fl_amqp_method_frame(&b, 1, ids[i][0], ids[i][1]), FL_EINVAL);
        ck_assert_uint_eq(b.len, 0);
        fl_buf_free(&b);
    }
    /* fewer than four bytes cannot even name a method */
    fl_amqp_method_t m;
    ck_assert_int_eq(decode_exact("\0\x0a\0", 3, &m), -FL_AMQP_SYNTAX_ERROR);
}
END_TEST

START_TEST(method_bad_table_and_long_shortstr)
{
    /* exchange.declare whose arguments table does not parse */
    static const uint8_t bad[] = {'k', 'S', 0, 0, 0, 9, 'x'};
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(
        fl_amqp_method_frame(&b, 1, 40, 10, 0, "x", "direct", 0, 0, 0, 0, 0, bad, sizeof bad), 0);
    fl_amqp_method_t m;
    ck_assert_int_eq(decode_exact(b.data + 7, b.len - 8, &m), -FL_AMQP_SYNTAX_ERROR);
    /* a short string over 255 bytes is refused and leaves the buffer as it was */
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    size_t before = b.len;
    ck_assert_int_eq(fl_amqp_method_frame(&b, 1, 20, 10, big), FL_EINVAL);
    ck_assert_uint_eq(b.len, before);
    fl_buf_free(&b);
}
END_TEST

/* ---- field tables ---- */

typedef struct {
    const char *name;
    char type;
    const uint8_t *raw;
    size_t raw_len;
} field_t;

static const uint8_t nested_tbl[] = {1, 'k', 't', 1};
static const uint8_t array_items[] = {'S', 0, 0, 0, 1, 'a', 'I', 0, 0, 0, 7, 'V'};

/* Raw values of each type (as on the wire after the type octet). */
static const uint8_t v_bool[] = {2}, v_i8[] = {0xfb}, v_i16[] = {0xff, 0xfe},
                     v_i32[] = {0xff, 0xff, 0xff, 0xfe},
                     v_i64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
                     v_dec[] = {2, 0xff, 0xff, 0xcf, 0xc7}, v_str[] = {0, 0, 0, 2, 'h', 'i'},
                     v_bytes[] = {0, 0, 0, 3, 0, 1, 0}, v_time[] = {0, 0, 0, 0, 0x60, 0, 0, 1};
static uint8_t v_float[4], v_double[8], v_table[4 + sizeof nested_tbl],
    v_array[4 + sizeof array_items];

#define RAW(a) a, sizeof a

/* One field of each of RabbitMQ's type codes. */
static const field_t *all_types(size_t *n)
{
    float fv = 1.5f;
    double dv = -2.25;
    uint32_t fw;
    uint64_t dw;
    memcpy(&fw, &fv, 4);
    memcpy(&dw, &dv, 8);
    for (int i = 0; i < 4; i++)
        v_float[i] = (uint8_t)(fw >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        v_double[i] = (uint8_t)(dw >> (56 - 8 * i));
    v_table[3] = sizeof nested_tbl;
    memcpy(v_table + 4, nested_tbl, sizeof nested_tbl);
    v_array[3] = sizeof array_items;
    memcpy(v_array + 4, array_items, sizeof array_items);
    static const field_t f[17] = {
        {"bool", 't', RAW(v_bool)},     {"i8", 'b', RAW(v_i8)},       {"u8", 'B', RAW(v_i8)},
        {"i16", 's', RAW(v_i16)},       {"u16", 'u', RAW(v_i16)},     {"i32", 'I', RAW(v_i32)},
        {"u32", 'i', RAW(v_i32)},       {"i64", 'l', RAW(v_i64)},     {"float", 'f', RAW(v_float)},
        {"double", 'd', RAW(v_double)}, {"decimal", 'D', RAW(v_dec)}, {"str", 'S', RAW(v_str)},
        {"bytes", 'x', RAW(v_bytes)},   {"array", 'A', RAW(v_array)}, {"time", 'T', RAW(v_time)},
        {"table", 'F', RAW(v_table)},   {"void", 'V', NULL, 0},
    };
    *n = 17;
    return f;
}

static void build_table(fl_buf_t *b, const field_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(fl_amqp_field_raw(b, f[i].name, f[i].type, f[i].raw, f[i].raw_len), 0);
}

static void check_value(const field_t *f, const fl_amqp_value_t *v)
{
    int64_t i;
    ck_assert_int_eq(v->type, f->type);
    switch (f->type) {
    case 't':
        ck_assert_int_eq(v->i, 1);
        break;
    case 'b':
    case 's':
    case 'I':
    case 'l':
        ck_assert_int_eq(v->i, f->type == 'b' ? -5 : -2);
        break;
    case 'B':
        ck_assert_int_eq(v->i, 251);
        break;
    case 'u':
        ck_assert_int_eq(v->i, 65534);
        break;
    case 'i':
        ck_assert_int_eq(v->i, 4294967294ll);
        break;
    case 'f':
        ck_assert(v->d == 1.5);
        break;
    case 'd':
        ck_assert(v->d == -2.25);
        break;
    case 'D':
        ck_assert_int_eq(v->scale, 2);
        ck_assert_int_eq(v->i, -12345);
        break;
    case 'S':
    case 'x':
    case 'A':
    case 'F':
        ck_assert_uint_eq(v->len, f->raw_len - 4);
        ck_assert_mem_eq(v->p, f->raw + 4, v->len);
        break;
    case 'T':
        ck_assert_int_eq(v->i, 0x60000001ll);
        break;
    }
    int is_int = strchr("bBsuIilT", f->type) != NULL;
    ck_assert_int_eq(fl_amqp_value_int(v, &i), is_int);
    if (is_int)
        ck_assert_int_eq(i, v->i);
}

START_TEST(table_every_type)
{
    size_t n;
    const field_t *f = all_types(&n);
    fl_buf_t b = FL_BUF_INIT;
    build_table(&b, f, n);
    uint8_t *t = exact(b.data, b.len);
    ck_assert_int_eq(fl_amqp_table_check(t, b.len), 0);
    size_t off = 0;
    const uint8_t *name;
    uint8_t nlen;
    fl_amqp_value_t v;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(fl_amqp_table_next(t, b.len, &off, &name, &nlen, &v), 1);
        ck_assert_uint_eq(nlen, strlen(f[i].name));
        ck_assert_mem_eq(name, f[i].name, nlen);
        check_value(&f[i], &v);
        fl_amqp_value_t g;
        ck_assert_int_eq(fl_amqp_table_get(t, b.len, f[i].name, &g), 1);
        ck_assert(fl_amqp_value_equal(&v, &g));
    }
    ck_assert_int_eq(fl_amqp_table_next(t, b.len, &off, &name, &nlen, &v), 0);
    ck_assert_uint_eq(off, b.len);
    ck_assert_int_eq(fl_amqp_table_get(t, b.len, "missing", &v), 0);
    ck_assert_int_eq(fl_amqp_table_get(t, b.len, "boo", &v), 0); /* a prefix is not a name */
    /* the array's items, and the nested table */
    ck_assert_int_eq(fl_amqp_table_get(t, b.len, "array", &v), 1);
    size_t aoff = 0;
    fl_amqp_value_t item;
    ck_assert_int_eq(fl_amqp_array_next(v.p, v.len, &aoff, &item), 1);
    ck_assert_int_eq(item.type, 'S');
    ck_assert_mem_eq(item.p, "a", 1);
    ck_assert_int_eq(fl_amqp_array_next(v.p, v.len, &aoff, &item), 1);
    ck_assert_int_eq(item.type, 'I');
    ck_assert_int_eq(item.i, 7);
    ck_assert_int_eq(fl_amqp_array_next(v.p, v.len, &aoff, &item), 1);
    ck_assert_int_eq(item.type, 'V');
    ck_assert_int_eq(fl_amqp_array_next(v.p, v.len, &aoff, &item), 0);
    ck_assert_int_eq(fl_amqp_table_get(t, b.len, "table", &v), 1);
    ck_assert_int_eq(fl_amqp_table_get(v.p, v.len, "k", &item), 1);
    ck_assert_int_eq(item.type, 't');
    ck_assert_int_eq(item.i, 1);
    /* fields are walked in order; the empty table is valid */
    ck_assert_int_eq(fl_amqp_table_check(t, 0), 0);
    free(t);
    fl_buf_free(&b);
}
END_TEST

START_TEST(table_unknown_type_codes)
{
    for (int c = 0; c < 256; c++) {
        if (strchr("tbBsuIilfdDSxATFV", c) && c != 0)
            continue;
        uint8_t t[12] = {1, 'k', (uint8_t)c, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        ck_assert_msg(table_check_exact(t, sizeof t) == FL_EMALFORMED, "type %d", c);
        uint8_t a[1] = {(uint8_t)c};
        fl_amqp_value_t v;
        size_t off = 0;
        ck_assert_int_eq(fl_amqp_array_next(a, 1, &off, &v), FL_EMALFORMED);
    }
}
END_TEST

START_TEST(table_truncated)
{
    size_t n;
    const field_t *f = all_types(&n);
    fl_buf_t b = FL_BUF_INIT;
    build_table(&b, f, n);
    /* field boundaries: a table cut there is a shorter valid table */
    size_t bounds[32], nb = 0, off = 0;
    const uint8_t *name;
    uint8_t nlen;
    fl_amqp_value_t v;
    bounds[nb++] = 0;
    while (fl_amqp_table_next((uint8_t *)b.data, b.len, &off, &name, &nlen, &v) == 1)
        bounds[nb++] = off;
    ck_assert_uint_eq(nb, n + 1);
    size_t bi = 0;
    for (size_t k = 0; k <= b.len; k++) {
        uint8_t *t = exact(b.data, k);
        int rc = fl_amqp_table_check(t, k);
        free(t);
        int boundary = bi < nb && bounds[bi] == k;
        if (boundary)
            bi++;
        ck_assert_msg(rc == (boundary ? 0 : FL_EMALFORMED), "cut at %zu: %d", k, rc);
    }
    fl_buf_free(&b);
}
END_TEST

START_TEST(table_malformed_lengths)
{
    static const struct {
        const char *what;
        uint8_t b[16];
        size_t len;
    } bad[] = {
        {"name past the end", {5, 'a', 'b'}, 3},
        {"no type", {1, 'k'}, 2},
        {"long string past the end", {1, 'k', 'S', 0, 0, 0, 5, 'a', 'b'}, 9},
        {"length 4 GiB", {1, 'k', 'S', 0xff, 0xff, 0xff, 0xff, 'a'}, 8},
        {"array past the end", {1, 'k', 'A', 0, 0, 0, 2, 'V'}, 8},
        {"bad item in an array", {1, 'k', 'A', 0, 0, 0, 1, 'Z'}, 8},
        {"bad field in a nested table", {1, 'k', 'F', 0, 0, 0, 2, 0, 'Z'}, 9},
        {"short int", {1, 'k', 'I', 0, 0}, 5},
        {"short decimal", {1, 'k', 'D', 2, 0, 0, 0}, 7},
        {"short double", {1, 'k', 'd', 0, 0, 0, 0, 0, 0, 0}, 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *t = exact(bad[i].b, bad[i].len);
        ck_assert_msg(fl_amqp_table_check(t, bad[i].len) == FL_EMALFORMED, "%s", bad[i].what);
        free(t);
    }
}
END_TEST

/* A table nested depth deep: {"n": {"n": ... {}}}, or arrays of arrays. */
static void nest(fl_buf_t *b, int depth, int arrays)
{
    if (depth == 0)
        return;
    if (!arrays)
        fl_amqp_put_shortstr(b, "n", 1);
    fl_amqp_put_u8(b, arrays ? 'A' : 'F');
    size_t at = fl_amqp_table_begin(b);
    nest(b, depth - 1, arrays);
    fl_amqp_table_end(b, at);
}

START_TEST(table_depth_limit)
{
    for (int arrays = 0; arrays < 2; arrays++) {
        for (int depth = 1; depth <= 18; depth++) {
            fl_buf_t b = FL_BUF_INIT;
            if (arrays) { /* a table holding nested arrays */
                fl_amqp_put_shortstr(&b, "a", 1);
                nest(&b, depth, 1);
            } else {
                nest(&b, depth, 0);
            }
            int rc = fl_amqp_table_check((uint8_t *)b.data, b.len);
            ck_assert_msg(rc == (depth <= 16 ? 0 : FL_EMALFORMED), "depth %d%s: %d", depth,
                          arrays ? " (arrays)" : "", rc);
            fl_buf_free(&b);
        }
    }
    /* very deep input fails without recursing through all of it */
    fl_buf_t b = FL_BUF_INIT;
    nest(&b, 5000, 0);
    ck_assert_int_eq(fl_amqp_table_check((uint8_t *)b.data, b.len), FL_EMALFORMED);
    fl_buf_free(&b);
}
END_TEST

START_TEST(value_equality)
{
    size_t n;
    const field_t *f = all_types(&n);
    fl_buf_t b = FL_BUF_INIT;
    build_table(&b, f, n);
    fl_amqp_value_t v[17], w;
    size_t off = 0;
    const uint8_t *name;
    uint8_t nlen;
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(fl_amqp_table_next((uint8_t *)b.data, b.len, &off, &name, &nlen, &v[i]),
                         1);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(fl_amqp_value_equal(&v[i], &v[j]) == (i == j), "%c vs %c", v[i].type,
                          v[j].type);
    /* same number, different type: not equal */
    fl_amqp_value_t a = {.type = 'I', .i = 5}, c = {.type = 'l', .i = 5};
    ck_assert(!fl_amqp_value_equal(&a, &c));
    c.type = 'I';
    ck_assert(fl_amqp_value_equal(&a, &c));
    c.i = 6;
    ck_assert(!fl_amqp_value_equal(&a, &c));
    /* strings by length and bytes */
    fl_amqp_value_t s1 = {.type = 'S', .p = (const uint8_t *)"abc", .len = 3};
    fl_amqp_value_t s2 = {.type = 'S', .p = (const uint8_t *)"abd", .len = 3};
    fl_amqp_value_t s3 = {.type = 'S', .p = (const uint8_t *)"ab", .len = 2};
    fl_amqp_value_t s4 = {.type = 'x', .p = (const uint8_t *)"abc", .len = 3};
    ck_assert(!fl_amqp_value_equal(&s1, &s2));
    ck_assert(!fl_amqp_value_equal(&s1, &s3));
    ck_assert(!fl_amqp_value_equal(&s1, &s4));
    w = s1;
    w.p = (const uint8_t *)"xabc" + 1;
    ck_assert(fl_amqp_value_equal(&s1, &w));
    /* decimals by scale and value */
    fl_amqp_value_t d1 = {.type = 'D', .scale = 1, .i = 10},
                    d2 = {.type = 'D', .scale = 2, .i = 10};
    ck_assert(!fl_amqp_value_equal(&d1, &d2));
    fl_buf_free(&b);
}
END_TEST

START_TEST(table_builders)
{
    fl_buf_t b = FL_BUF_INIT;
    size_t at = fl_amqp_table_begin(&b);
    ck_assert_int_eq(fl_amqp_field_str(&b, "s", "text"), 0);
    ck_assert_int_eq(fl_amqp_field_bool(&b, "t", 1), 0);
    ck_assert_int_eq(fl_amqp_field_long(&b, "l", -7), 0);
    ck_assert_int_eq(fl_amqp_table_end(&b, at), 0);
    uint32_t len = (uint32_t)(uint8_t)b.data[0] << 24 | (uint32_t)(uint8_t)b.data[1] << 16 |
                   (uint32_t)(uint8_t)b.data[2] << 8 | (uint8_t)b.data[3];
    ck_assert_uint_eq(len, b.len - 4);
    const uint8_t *t = (const uint8_t *)b.data + 4;
    ck_assert_int_eq(fl_amqp_table_check(t, len), 0);
    fl_amqp_value_t v;
    ck_assert_int_eq(fl_amqp_table_get(t, len, "s", &v), 1);
    ck_assert_int_eq(v.type, 'S');
    ck_assert_mem_eq(v.p, "text", 4);
    ck_assert_int_eq(fl_amqp_table_get(t, len, "t", &v), 1);
    ck_assert_int_eq(v.type, 't');
    ck_assert_int_eq(v.i, 1);
    ck_assert_int_eq(fl_amqp_table_get(t, len, "l", &v), 1);
    ck_assert_int_eq(v.type, 'l');
    ck_assert_int_eq(v.i, -7);
    fl_buf_free(&b);
}
END_TEST

/* ---- properties ---- */

static void all_props(fl_amqp_props_t *pr, const uint8_t *hdr, size_t hdr_len)
{
    static const char *strs[FL_AMQP_P_COUNT] = {
        [FL_AMQP_P_CONTENT_TYPE] = "application/json",
        [FL_AMQP_P_CONTENT_ENCODING] = "gzip",
        [FL_AMQP_P_CORRELATION_ID] = "corr-1",
        [FL_AMQP_P_REPLY_TO] = "amq.rabbitmq.reply-to",
        [FL_AMQP_P_EXPIRATION] = "60000",
        [FL_AMQP_P_MESSAGE_ID] = "msg-1",
        [FL_AMQP_P_TYPE] = "order.created",
        [FL_AMQP_P_USER_ID] = "guest",
        [FL_AMQP_P_APP_ID] = "orders",
        [FL_AMQP_P_CLUSTER_ID] = "c1",
    };
    memset(pr, 0, sizeof *pr);
    for (int i = 0; i < FL_AMQP_P_COUNT; i++) {
        pr->flags |= (uint16_t)(1u << (15 - i));
        if (strs[i]) {
            pr->v[i].p = (const uint8_t *)strs[i];
            pr->v[i].len = (uint32_t)strlen(strs[i]);
        }
    }
    pr->v[FL_AMQP_P_HEADERS].p = hdr;
    pr->v[FL_AMQP_P_HEADERS].len = (uint32_t)hdr_len;
    pr->v[FL_AMQP_P_DELIVERY_MODE].u = 2;
    pr->v[FL_AMQP_P_PRIORITY].u = 9;
    pr->v[FL_AMQP_P_TIMESTAMP].u = 1700000000ull;
}

static void props_eq(const fl_amqp_props_t *a, const fl_amqp_props_t *b)
{
    ck_assert_uint_eq(a->flags, b->flags);
    for (int i = 0; i < FL_AMQP_P_COUNT; i++) {
        if (!FL_AMQP_HAS(a, i))
            continue;
        ck_assert_msg(a->v[i].u == b->v[i].u, "property %d", i);
        ck_assert_msg(a->v[i].len == b->v[i].len, "property %d", i);
        if (a->v[i].len)
            ck_assert_msg(memcmp(a->v[i].p, b->v[i].p, a->v[i].len) == 0, "property %d", i);
    }
}

START_TEST(props_round_trip)
{
    fl_buf_t hdr = FL_BUF_INIT;
    fl_amqp_field_str(&hdr, "traceparent",
                      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    fl_amqp_props_t pr, got;
    all_props(&pr, (const uint8_t *)hdr.data, hdr.len);
    ck_assert_uint_eq(pr.flags, 0xfffc);
    /* all 14, then every subset of one property, then alternate ones */
    uint16_t masks[FL_AMQP_P_COUNT + 3];
    size_t nm = 0;
    masks[nm++] = 0xfffc;
    masks[nm++] = 0;
    masks[nm++] = 0xaaa8;
    for (int i = 0; i < FL_AMQP_P_COUNT; i++)
        masks[nm++] = (uint16_t)(1u << (15 - i));
    for (size_t k = 0; k < nm; k++) {
        fl_amqp_props_t want = pr;
        want.flags = masks[k];
        fl_buf_t b = FL_BUF_INIT;
        ck_assert_int_eq(fl_amqp_props_encode(&b, &want), 0);
        uint8_t *p = exact(b.data, b.len);
        ck_assert_int_eq(fl_amqp_props_decode(p, b.len, &got), 0);
        props_eq(&want, &got);
        for (size_t cut = 0; cut < b.len; cut++) {
            uint8_t *q = exact(b.data, cut);
            ck_assert_msg(fl_amqp_props_decode(q, cut, &got) == -FL_AMQP_SYNTAX_ERROR,
                          "mask %x cut at %zu", masks[k], cut);
            free(q);
        }
        free(p);
        /* and inside a header frame */
        fl_buf_t h = FL_BUF_INIT;
        ck_assert_int_eq(fl_amqp_header_frame(&h, 3, 1ull << 40, (uint8_t *)b.data, b.len), 0);
        fl_amqp_frame_t f;
        ck_assert_int_eq(fl_amqp_frame_parse((uint8_t *)h.data, h.len, 0, &f), (long)h.len);
        ck_assert_int_eq(f.type, FL_AMQP_FRAME_HEADER);
        ck_assert_int_eq(f.channel, 3);
        uint16_t cls;
        uint64_t size;
        size_t poff;
        uint8_t *pl = exact(f.payload, f.size);
        ck_assert_int_eq(fl_amqp_header_decode(pl, f.size, &cls, &size, &got, &poff), 0);
        ck_assert_int_eq(cls, 60);
        ck_assert_uint_eq(size, 1ull << 40);
        ck_assert_uint_eq(poff, 12);
        props_eq(&want, &got);
        free(pl);
        fl_buf_free(&h);
        fl_buf_free(&b);
    }
    fl_buf_free(&hdr);
}
END_TEST

START_TEST(props_reserved_flag_bits)
{
    for (uint16_t low = 1; low <= 3; low++) {
        uint8_t p[2] = {0, (uint8_t)low};
        fl_amqp_props_t got;
        ck_assert_msg(fl_amqp_props_decode(p, 2, &got) == -FL_AMQP_SYNTAX_ERROR, "bits %u", low);
    }
    /* a trailing byte after the properties, a malformed headers table */
    uint8_t trail[3] = {0, 0, 0};
    fl_amqp_props_t got;
    ck_assert_int_eq(fl_amqp_props_decode(trail, 3, &got), -FL_AMQP_SYNTAX_ERROR);
    uint8_t badhdr[8] = {0x20, 0, 0, 0, 0, 2, 1, 'k'};
    ck_assert_int_eq(fl_amqp_props_decode(badhdr, 8, &got), -FL_AMQP_SYNTAX_ERROR);
    /* content header: weight must be 0; fewer than 14 bytes is short */
    uint8_t h[14] = {0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0};
    uint16_t cls;
    uint64_t size;
    size_t poff;
    ck_assert_int_eq(fl_amqp_header_decode(h, 14, &cls, &size, &got, &poff), -FL_AMQP_FRAME_ERROR);
    h[3] = 0;
    ck_assert_int_eq(fl_amqp_header_decode(h, 14, &cls, &size, &got, &poff), 0);
    ck_assert_uint_eq(size, 5);
    for (size_t k = 0; k < 14; k++) {
        uint8_t *d = exact(h, k);
        ck_assert_int_eq(fl_amqp_header_decode(d, k, &cls, &size, &got, &poff),
                         -FL_AMQP_SYNTAX_ERROR);
        free(d);
    }
}
END_TEST

/* ---- bodies ---- */

START_TEST(body_frames_split_at_frame_max)
{
    static uint8_t body[20000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 7);
    static const struct {
        size_t len;
        uint32_t fmax;
        size_t frames;
    } cases[] = {
        {0, 4096, 0},       {1, 4096, 1},    {4088, 4096, 1}, {4089, 4096, 2},   {20000, 4096, 5},
        {20000, 131072, 1}, {8176, 4096, 2}, {8177, 4096, 3}, {20000, 20008, 1}, {20000, 20007, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fl_buf_t b = FL_BUF_INIT;
        ck_assert_int_eq(fl_amqp_body_frames(&b, 5, body, cases[c].len, cases[c].fmax), 0);
        size_t off = 0, got = 0, frames = 0;
        while (off < b.len) {
            fl_amqp_frame_t f;
            long n = fl_amqp_frame_parse((uint8_t *)b.data + off, b.len - off, cases[c].fmax, &f);
            ck_assert_msg(n > 0, "case %zu: frame %zu: %ld", c, frames, n);
            ck_assert_int_eq(f.type, FL_AMQP_FRAME_BODY);
            ck_assert_int_eq(f.channel, 5);
            ck_assert_uint_le(f.size + 8, cases[c].fmax);
            /* every frame but the last is full */
            if (off + (size_t)n < b.len)
                ck_assert_uint_eq(f.size + 8, cases[c].fmax);
            ck_assert_mem_eq(f.payload, body + got, f.size);
            got += f.size;
            off += (size_t)n;
            frames++;
        }
        ck_assert_uint_eq(got, cases[c].len);
        ck_assert_msg(frames == cases[c].frames, "case %zu: %zu frames", c, frames);
        fl_buf_free(&b);
    }
}
END_TEST

/* The delivery encoder writes the very bytes of the generic method, header and body encoders. */
START_TEST(deliver_frames_match_the_generic_encoders)
{
    static uint8_t body[20000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)(i * 13);
    char long_name[256];
    memset(long_name, 'n', 255);
    long_name[255] = 0;
    static const uint8_t props[] = {0x90, 0x00, 0x00, 0x00, 0x00, 0x03, 'a', '=', 'b', 0x02};
    static const struct {
        size_t len;
        uint32_t fmax;
    } sizes[] = {{0, 4096}, {1, 4096}, {100, 131072}, {4088, 4096}, {4089, 4096}, {20000, 4096}};
    const char *names[][3] = {
        {"amq.ctag-abc", "", "q"},
        {"", "amq.topic", "a.b.c"},
        {long_name, long_name, long_name},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            for (int redelivered = 0; redelivered < 2; redelivered++) {
                size_t plen = (i + k) % 2 ? sizeof props : 2;
                uint64_t tag = 0x0102030405060708ull + i;
                fl_buf_t want = FL_BUF_INIT, got = FL_BUF_INIT;
                fl_buf_append(&want, "x", 1); /* appending, not writing from the start */
                fl_buf_append(&got, "x", 1);
                ck_assert_int_eq(fl_amqp_method_frame(&want, 7, 60, 60, names[k][0], tag,
                                                      redelivered, names[k][1], names[k][2]),
                                 0);
                ck_assert_int_eq(fl_amqp_header_frame(&want, 7, sizes[i].len, props, plen), 0);
                ck_assert_int_eq(fl_amqp_body_frames(&want, 7, body, sizes[i].len, sizes[i].fmax),
                                 0);
                ck_assert_int_eq(fl_amqp_deliver_frames(&got, 7, names[k][0], tag, redelivered,
                                                        names[k][1], names[k][2], props, plen, body,
                                                        sizes[i].len, sizes[i].fmax),
                                 0);
                ck_assert_uint_eq(got.len, want.len);
                ck_assert_mem_eq(got.data, want.data, want.len);
                ck_assert_int_eq(got.data[got.len], 0);
                fl_buf_free(&want);
                fl_buf_free(&got);
            }
        }
    }
    /* a short string over 255 bytes: FL_EINVAL, nothing appended */
    char too_long[257];
    memset(too_long, 'n', 256);
    too_long[256] = 0;
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_append(&b, "x", 1);
    ck_assert_int_eq(
        fl_amqp_deliver_frames(&b, 1, "t", 1, 0, "", too_long, props, 2, body, 10, 4096),
        FL_EINVAL);
    ck_assert_uint_eq(b.len, 1);
    fl_buf_free(&b);
}
END_TEST

START_TEST(reply_codes)
{
    ck_assert_str_eq(fl_amqp_reply_name(404), "NOT_FOUND");
    ck_assert_str_eq(fl_amqp_reply_name(505), "UNEXPECTED_FRAME");
    ck_assert_str_eq(fl_amqp_reply_name(999), "");
    static const int hard[] = {320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541};
    static const int soft[] = {200, 311, 312, 313, 403, 404, 405, 406};
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++)
        ck_assert_msg(fl_amqp_reply_is_hard(hard[i]), "%d", hard[i]);
    for (size_t i = 0; i < sizeof soft / sizeof soft[0]; i++)
        ck_assert_msg(!fl_amqp_reply_is_hard(soft[i]), "%d", soft[i]);
}
END_TEST

Suite *amqp_codec_suite(void)
{
    Suite *s = suite_create("amqp_codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, frame_need_more_at_every_prefix);
    tcase_add_test(tc, frame_end_missing);
    tcase_add_test(tc, frame_unknown_type);
    tcase_add_test(tc, frame_huge_size_fails_at_once);
    tcase_add_test(tc, frame_max_bound);
    tcase_add_test(tc, protocol_header_prefixes);
    tcase_add_test(tc, protocol_header_wrong);
    tcase_add_test(tc, every_method_round_trips);
    tcase_add_test(tc, bits_share_octets);
    tcase_add_test(tc, unknown_method);
    tcase_add_test(tc, method_bad_table_and_long_shortstr);
    tcase_add_test(tc, table_every_type);
    tcase_add_test(tc, table_unknown_type_codes);
    tcase_add_test(tc, table_truncated);
    tcase_add_test(tc, table_malformed_lengths);
    tcase_add_test(tc, table_depth_limit);
    tcase_add_test(tc, value_equality);
    tcase_add_test(tc, table_builders);
    tcase_add_test(tc, props_round_trip);
    tcase_add_test(tc, props_reserved_flag_bits);
    tcase_add_test(tc, body_frames_split_at_frame_max);
    tcase_add_test(tc, deliver_frames_match_the_generic_encoders);
    tcase_add_test(tc, reply_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(amqp_codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

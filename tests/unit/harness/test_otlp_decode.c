/* Unit tests for harness/otlp_decode: OTLP trace exports in protobuf (test vectors built here
 * with a few lines of wire-format encoding, as the .proto says) and JSON, every way a payload
 * can be wrong, the bounds, and the response bodies. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness/otlp_decode.h"
#include "lib/err.h"

/* ------------------------------------------------------------ a tiny encoder ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} pb_t;

static void raw(pb_t *p, const void *d, size_t n)
{
    ck_assert_uint_le(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void varint(pb_t *p, uint64_t v)
{
    do {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            c |= 0x80;
        raw(p, &c, 1);
    } while (v);
}

static void ld(pb_t *p, unsigned field, const pb_t *in)
{
    varint(p, (uint64_t)field << 3 | 2);
    varint(p, in->n);
    raw(p, in->b, in->n);
}

static void ldb(pb_t *p, unsigned field, const void *d, size_t n)
{
    varint(p, (uint64_t)field << 3 | 2);
    varint(p, n);
    raw(p, d, n);
}

static void lds(pb_t *p, unsigned field, const char *s)
{
    ldb(p, field, s, strlen(s));
}

static void fixed64(pb_t *p, unsigned field, uint64_t v)
{
    varint(p, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        raw(p, &c, 1);
    }
}

static void kv_str(pb_t *p, unsigned field, const char *k, const char *v)
{
    pb_t kv = {0}, val = {0};
    lds(&val, 1, v);
    lds(&kv, 1, k);
    ld(&kv, 2, &val);
    ld(p, field, &kv);
}

static void kv_int(pb_t *p, unsigned field, const char *k, int64_t v)
{
    pb_t kv = {0}, val = {0};
    varint(&val, 3 << 3);
    varint(&val, (uint64_t)v);
    lds(&kv, 1, k);
    ld(&kv, 2, &val);
    ld(p, field, &kv);
}

static const uint8_t TRACE[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                  0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
static const uint8_t SPAN1[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
static const uint8_t SPAN2[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};

/* A span: ids, name, kind, times, one string and one int attribute, a status. */
static void span(pb_t *p, const uint8_t *trace, size_t tn, const uint8_t *id, size_t idn,
                 const uint8_t *parent, const char *name, unsigned kind)
{
    pb_t s = {0}, st = {0};
    ldb(&s, 1, trace, tn);
    ldb(&s, 2, id, idn);
    if (parent)
        ldb(&s, 4, parent, 8);
    lds(&s, 5, name);
    varint(&s, 6 << 3);
    varint(&s, kind);
    fixed64(&s, 7, 1000);
    fixed64(&s, 8, 3500);
    kv_str(&s, 9, "rpc.method", "CreateUser");
    kv_int(&s, 9, "attempt", 2);
    lds(&st, 2, "boom");
    varint(&st, 3 << 3);
    varint(&st, 2);
    ld(&s, 15, &st);
    ld(p, 2, &s);
}

/* An ExportTraceServiceRequest with one ResourceSpans: the spans in p_spans (ScopeSpans
 * content), and the resource after them when resource_last (protobuf allows any order). */
static void request(pb_t *out, const pb_t *scope, const char *service, int resource_last)
{
    pb_t res = {0}, rs = {0};
    kv_str(&res, 1, "service.name", service);
    kv_str(&res, 1, "service.instance.id", "gateway-1");
    if (!resource_last)
        ld(&rs, 1, &res);
    ld(&rs, 2, scope);
    if (resource_last)
        ld(&rs, 1, &res);
    memset(out, 0, sizeof *out);
    ld(out, 1, &rs);
}

static fl_otlp_span_t spans[8];
static fl_otlp_attr_t attrs[16];

static fl_otlp_out_t out_of(size_t maxspans, size_t maxattrs)
{
    return (fl_otlp_out_t){
        .spans = spans, .maxspans = maxspans, .attrs = attrs, .maxattrs = maxattrs};
}

static int str_eq(fl_otlp_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* ------------------------------------------------------------ protobuf ---- */

START_TEST(decodes_spans_with_their_resource)
{
    for (int last = 0; last <= 1; last++) {
        pb_t scope = {0}, req;
        span(&scope, TRACE, 16, SPAN1, 8, NULL, "POST /users", 2);
        span(&scope, TRACE, 16, SPAN2, 8, SPAN1, "shop.Users/CreateUser", 3);
        request(&req, &scope, "gateway", last);
        fl_otlp_out_t out = out_of(8, 16);
        ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), 0);
        ck_assert_uint_eq(out.nspans, 2);
        ck_assert_uint_eq(out.rejected, 0);
        fl_otlp_span_t *a = &out.spans[0], *b = &out.spans[1];
        ck_assert(memcmp(a->trace_id, TRACE, 16) == 0);
        ck_assert(memcmp(a->span_id, SPAN1, 8) == 0);
        ck_assert_int_eq(a->has_parent, 0);
        ck_assert(str_eq(a->name, "POST /users"));
        ck_assert(str_eq(a->service, "gateway"));
        ck_assert(str_eq(a->instance, "gateway-1"));
        ck_assert_int_eq(a->kind, FL_SPAN_SERVER);
        ck_assert_int_eq(a->status, FL_STATUS_ERROR);
        ck_assert(str_eq(a->status_message, "boom"));
        ck_assert_uint_eq(a->start_unix_ns, 1000);
        ck_assert_uint_eq(a->end_unix_ns, 3500);
        ck_assert_uint_eq(a->nattrs, 2);
        ck_assert(str_eq(out.attrs[a->attr0].key, "rpc.method"));
        ck_assert_int_eq(out.attrs[a->attr0].type, FL_OTLP_V_STRING);
        ck_assert(str_eq(out.attrs[a->attr0].s, "CreateUser"));
        ck_assert(str_eq(out.attrs[a->attr0 + 1].key, "attempt"));
        ck_assert_int_eq(out.attrs[a->attr0 + 1].type, FL_OTLP_V_INT);
        ck_assert_int_eq(out.attrs[a->attr0 + 1].i, 2);
        ck_assert_int_eq(b->has_parent, 1);
        ck_assert(memcmp(b->parent_id, SPAN1, 8) == 0);
        ck_assert_int_eq(b->kind, FL_SPAN_CLIENT);
        ck_assert_uint_eq(b->attr0, 2);
    }
}
END_TEST

START_TEST(maps_kinds)
{
    static const fl_span_kind_t want[] = {FL_SPAN_INTERNAL, FL_SPAN_INTERNAL, FL_SPAN_SERVER,
                                          FL_SPAN_CLIENT,   FL_SPAN_PRODUCER, FL_SPAN_CONSUMER,
                                          FL_SPAN_INTERNAL};
    for (unsigned k = 0; k < 7; k++) {
        pb_t scope = {0}, req;
        span(&scope, TRACE, 16, SPAN1, 8, NULL, "x", k == 6 ? 99 : k);
        request(&req, &scope, "s", 0);
        fl_otlp_out_t out = out_of(8, 16);
        ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), 0);
        ck_assert_int_eq(out.spans[0].kind, want[k]);
    }
}
END_TEST

START_TEST(skips_unknown_fields)
{
    pb_t scope = {0}, req;
    uint8_t four[4] = {1, 2, 3, 4};
    varint(&scope, 1 << 3 | 2); /* InstrumentationScope, as bytes */
    varint(&scope, 0);
    span(&scope, TRACE, 16, SPAN1, 8, NULL, "x", 1);
    request(&req, &scope, "s", 0);
    varint(&req, 99 << 3); /* unknown varint, I32, LEN at the top */
    varint(&req, 12345);
    varint(&req, 98 << 3 | 5);
    raw(&req, four, 4);
    ldb(&req, 97, four, 4);
    fl_otlp_out_t out = out_of(8, 16);
    ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), 0);
    ck_assert_uint_eq(out.nspans, 1);
}
END_TEST

START_TEST(empty_request_is_no_spans)
{
    fl_otlp_out_t out = out_of(8, 16);
    ck_assert_int_eq(fl_otlp_decode_pb("", 0, &out), 0);
    ck_assert_uint_eq(out.nspans, 0);
    ck_assert_int_eq(fl_otlp_decode_pb(NULL, 0, &out), 0);
}
END_TEST

START_TEST(rejects_malformed_input_with_a_reason)
{
    static const struct {
        const char *bytes;
        size_t n;
        const char *reason;
    } bad[] = {
        {"\x0a", 1, "truncated length"},
        {"\x0a\x05\x01", 3, "length past the end"},
        {"\x0b", 1, "unsupported wire type"},
        {"\x02\x00", 2, "bad field number"},
        {"\x08", 1, "truncated varint"},
        {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "truncated varint"},
        {"\x09\x01\x02", 3, "truncated fixed-size"},
        {"\x08\x01", 2, "resource_spans is not length-delimited"},
        {"\x0a\x02\x10\x01", 4, "scope_spans is not length-delimited"},
        {"\x0a\x04\x12\x02\x12\x00", 6, NULL}, /* an empty span: rejected, not malformed */
        {"\x80", 1, "truncated field key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_otlp_out_t out = out_of(8, 16);
        int rc = fl_otlp_decode_pb(bad[i].bytes, bad[i].n, &out);
        if (!bad[i].reason) {
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(out.rejected, 1);
            continue;
        }
        ck_assert_msg(rc == FL_EMALFORMED, "case %zu: rc %d", i, rc);
        ck_assert_msg(out.reason && strstr(out.reason, bad[i].reason), "case %zu: reason %s", i,
                      out.reason ? out.reason : "(none)");
    }
}
END_TEST

START_TEST(wrong_wire_type_of_a_span_field)
{
    pb_t s = {0}, scope = {0}, req;
    ldb(&s, 1, TRACE, 16);
    ldb(&s, 2, SPAN1, 8);
    varint(&s, 7 << 3); /* start time as a varint: must be fixed64 */
    varint(&s, 5);
    ld(&scope, 2, &s);
    request(&req, &scope, "s", 0);
    fl_otlp_out_t out = out_of(8, 16);
    ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), FL_EMALFORMED);
    ck_assert(strstr(out.reason, "fixed64"));
}
END_TEST

START_TEST(every_prefix_decodes_or_fails_cleanly)
{
    pb_t scope = {0}, req;
    span(&scope, TRACE, 16, SPAN1, 8, NULL, "POST /users", 2);
    span(&scope, TRACE, 16, SPAN2, 8, SPAN1, "call", 3);
    request(&req, &scope, "gateway", 1);
    for (size_t n = 0; n < req.n; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees an over-read */
        memcpy(copy, req.b, n);
        fl_otlp_out_t out = out_of(8, 16);
        int rc = fl_otlp_decode_pb(copy, n, &out);
        ck_assert(rc == 0 || rc == FL_EMALFORMED);
        if (n > 0) /* any cut inside the only resource_spans breaks it */
            ck_assert_msg(rc == FL_EMALFORMED, "prefix %zu accepted", n);
        free(copy);
    }
}
END_TEST

START_TEST(rejects_spans_with_bad_ids_and_keeps_the_rest)
{
    static const uint8_t zero[16] = {0};
    pb_t scope = {0}, req;
    span(&scope, TRACE, 15, SPAN1, 8, NULL, "short trace id", 2);
    span(&scope, TRACE, 16, SPAN1, 8, NULL, "good", 2);
    span(&scope, zero, 16, SPAN1, 8, NULL, "zero trace id", 2);
    span(&scope, TRACE, 16, zero, 8, NULL, "zero span id", 2);
    span(&scope, TRACE, 16, SPAN1, 7, NULL, "short span id", 2);
    span(&scope, TRACE, 16, SPAN2, 8, zero, "zero parent", 2);
    request(&req, &scope, "s", 0);
    fl_otlp_out_t out = out_of(8, 16);
    ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), 0);
    ck_assert_uint_eq(out.nspans, 1);
    ck_assert_uint_eq(out.rejected, 5);
    ck_assert(str_eq(out.spans[0].name, "good"));
    ck_assert_uint_eq(out.spans[0].attr0, 0); /* rejected spans gave their attributes back */
    ck_assert_uint_eq(out.nattrs, 2);
    ck_assert(strstr(out.reason, "parent"));
}
END_TEST

START_TEST(bounds_spans_and_attributes)
{
    pb_t scope = {0}, req;
    for (int i = 0; i < 3; i++)
        span(&scope, TRACE, 16, SPAN1, 8, NULL, "x", 2);
    request(&req, &scope, "s", 0);
    fl_otlp_out_t out = out_of(2, 3);
    ck_assert_int_eq(fl_otlp_decode_pb(req.b, req.n, &out), 0);
    ck_assert_uint_eq(out.nspans, 2);
    ck_assert_uint_eq(out.rejected, 1);
    ck_assert(strstr(out.reason, "too many spans"));
    ck_assert_uint_le(out.nattrs, 3);
    ck_assert_uint_eq(out.spans[0].nattrs, 2);
    ck_assert_uint_eq(out.spans[1].nattrs, 1);
    ck_assert_uint_ge(out.dropped_attrs, 1);
}
END_TEST

/* ------------------------------------------------------------ JSON ---- */

static const char *JSON_OK =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"users\"}}]},\"scopeSpans\":[{\"scope\":{},\"spans\":[{"
    "\"traceId\":\"0AF7651916CD43DD8448EB211C80319C\",\"spanId\":\"b7ad6b7169203331\","
    "\"parentSpanId\":\"00f067aa0ba902b7\",\"name\":\"CreateUser\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":1700000000000001000,"
    "\"attributes\":[{\"key\":\"ok\",\"value\":{\"boolValue\":true}},{\"key\":\"n\",\"value\":"
    "{\"intValue\":\"-3\"}},{\"key\":\"d\",\"value\":{\"doubleValue\":0.5}}],"
    "\"status\":{\"code\":1}},{\"traceId\":\"xyz\",\"spanId\":\"b7ad6b7169203331\"}]}]}]}";

START_TEST(decodes_json)
{
    fl_otlp_out_t out = out_of(8, 16);
    void *keep;
    ck_assert_int_eq(fl_otlp_decode_json(JSON_OK, strlen(JSON_OK), &out, &keep), 0);
    ck_assert_uint_eq(out.nspans, 1);
    ck_assert_uint_eq(out.rejected, 1);
    ck_assert(strstr(out.reason, "trace id"));
    fl_otlp_span_t *s = &out.spans[0];
    ck_assert(memcmp(s->trace_id, TRACE, 16) == 0);
    ck_assert(memcmp(s->span_id, SPAN1, 8) == 0);
    ck_assert(s->has_parent && memcmp(s->parent_id, SPAN2, 8) == 0);
    ck_assert(str_eq(s->service, "users"));
    ck_assert(str_eq(s->name, "CreateUser"));
    ck_assert_int_eq(s->kind, FL_SPAN_SERVER);
    ck_assert_int_eq(s->status, FL_STATUS_OK);
    ck_assert_uint_eq(s->start_unix_ns, 1700000000000000000ull);
    ck_assert_uint_eq(s->end_unix_ns, 1700000000000001000ull);
    ck_assert_uint_eq(s->nattrs, 3);
    ck_assert_int_eq(out.attrs[0].type, FL_OTLP_V_BOOL);
    ck_assert_int_eq(out.attrs[0].i, 1);
    ck_assert_int_eq(out.attrs[1].type, FL_OTLP_V_INT);
    ck_assert_int_eq(out.attrs[1].i, -3);
    ck_assert_int_eq(out.attrs[2].type, FL_OTLP_V_DOUBLE);
    ck_assert(out.attrs[2].d == 0.5);
    fl_otlp_json_free(keep);
}
END_TEST

START_TEST(rejects_bad_json)
{
    static const char *bad[] = {
        "{",
        "[]",
        "{\"resourceSpans\":3}",
        "{\"resourceSpans\":[3]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[3]}]}]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":3}]}]}]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":\"12x\"}]}]}]}",
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":1}]}]}]}]}",
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":{}}}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_otlp_out_t out = out_of(8, 16);
        void *keep;
        ck_assert_msg(fl_otlp_decode_json(bad[i], strlen(bad[i]), &out, &keep) == FL_EMALFORMED,
                      "accepted %s", bad[i]);
        ck_assert(out.reason != NULL);
        fl_otlp_json_free(keep);
    }
}
END_TEST

/* ------------------------------------------------------------ responses ---- */

START_TEST(responses)
{
    uint8_t b[64];
    char j[256];
    ck_assert_uint_eq(fl_otlp_response_pb(0, NULL, b, sizeof b), 0);
    ck_assert_uint_eq(fl_otlp_response_pb(2, "bad", b, sizeof b), 9);
    ck_assert(memcmp(b,
                     "\x0a\x07\x08\x02\x12\x03"
                     "bad",
                     9) == 0);
    ck_assert_uint_eq(fl_otlp_response_pb(300, NULL, b, sizeof b), 5);
    ck_assert(memcmp(b, "\x0a\x03\x08\xac\x02", 5) == 0);
    ck_assert_uint_eq(fl_otlp_response_json(0, NULL, j, sizeof j), 2);
    ck_assert_str_eq(j, "{}");
    ck_assert_uint_gt(fl_otlp_response_json(1, "a \"q\"", j, sizeof j), 0);
    ck_assert_str_eq(
        j, "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"a \\\"q\\\"\"}}");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("otlp_decode");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, decodes_spans_with_their_resource);
    tcase_add_test(tc, maps_kinds);
    tcase_add_test(tc, skips_unknown_fields);
    tcase_add_test(tc, empty_request_is_no_spans);
    tcase_add_test(tc, rejects_malformed_input_with_a_reason);
    tcase_add_test(tc, wrong_wire_type_of_a_span_field);
    tcase_add_test(tc, every_prefix_decodes_or_fails_cleanly);
    tcase_add_test(tc, rejects_spans_with_bad_ids_and_keeps_the_rest);
    tcase_add_test(tc, bounds_spans_and_attributes);
    tcase_add_test(tc, decodes_json);
    tcase_add_test(tc, rejects_bad_json);
    tcase_add_test(tc, responses);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

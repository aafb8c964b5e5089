/* Unit tests for services/runtime/otlp: the protobuf bytes of an ExportTraceServiceRequest,
 * checked against hand-computed bytes, and decoded by python3-protobuf with the
 * services/proto/otlp_trace.proto subset (which must also re-encode to the same bytes). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/runtime/otlp.h"

static fl_attr_t str_attr(const char *k, const char *v)
{
    fl_attr_t a = {.key = strdup(k), .type = FL_ATTR_STRING};
    a.v.s = strdup(v);
    return a;
}

START_TEST(hand_computed_bytes)
{
    fl_attr_t res = str_attr("a", "b");
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_otlp_encode(&b, &res, 1, NULL, NULL, NULL, 0), 0);
    /* request{1: resource_spans{1: resource{1: kv{1:"a" 2: any{1:"b"}}} 2: scope_spans{1:{}}}} */
    static const unsigned char want[] = {0x0a, 0x10, 0x0a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 0x61,
                                         0x12, 0x03, 0x0a, 0x01, 0x62, 0x12, 0x02, 0x0a, 0x00};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.data, want, sizeof want);
    fl_buf_free(&b);

    /* One span, every id byte known: 1 trace_id, 2 span_id, 5 name, 6 kind, 7/8 times, 16
     * flags. */
    fl_span_data_t *s = calloc(1, sizeof *s);
    for (int i = 0; i < 16; i++)
        s->trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        s->span_id[i] = (uint8_t)(0xa0 + i);
    s->name = strdup("x");
    s->kind = FL_SPAN_SERVER;
    s->start_ns = 1;
    s->end_ns = 0x0102030405060708ull;
    s->trace_flags = 1;
    ck_assert_int_eq(fl_otlp_encode(&b, NULL, 0, NULL, NULL, &s, 1), 0);
    static const unsigned char span[] = {
        0x12, 0x39, /* Span, 57 bytes */
        0x0a, 0x10, 1,    2,    3,    4,    5,    6,    7,    8,
        9,    10,   11,   12,   13,   14,   15,   16,               /* trace_id */
        0x12, 0x08, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, /* span_id */
        0x2a, 0x01, 'x',                                            /* name */
        0x30, 0x02,                                                 /* kind SERVER */
        0x39, 1,    0,    0,    0,    0,    0,    0,    0,          /* start, fixed64 */
        0x41, 8,    7,    6,    5,    4,    3,    2,    1,          /* end, fixed64 */
        0x85, 0x01, 0x01, 0x01, 0x00, 0x00,                         /* flags: sampled + 0x100 */
    };
    /* 0a LEN { 0a 00 (empty resource) 12 LEN { 0a 00 (empty scope) span } } */
    ck_assert_uint_eq(b.len, 2 + 2 + 2 + 2 + sizeof span);
    ck_assert_uint_eq((unsigned char)b.data[0], 0x0a);
    ck_assert_uint_eq((unsigned char)b.data[1], 2 + 2 + 2 + sizeof span);
    ck_assert_mem_eq(b.data + 8, span, sizeof span);
    fl_buf_free(&b);
    fl_span_data_free(s);
    fl_attr_free(&res);
}
END_TEST

static json_t *decode_with_python(const fl_buf_t *b)
{
    const char *src = getenv("FL_SOURCE_DIR");
    ck_assert_ptr_nonnull(src);
    char path[] = "/tmp/fl-otlp-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, b->data, b->len), (ssize_t)b->len);
    close(fd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/unit/runtime/otlp_decode.py %s/services/proto %s", src, src,
             path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    json_error_t err;
    json_t *j = json_loadf(p, 0, &err);
    int rc = pclose(p);
    unlink(path);
    ck_assert_msg(rc == 0 && j, "python decoder failed (status %d): %s", rc, err.text);
    return j;
}

static json_t *path_get(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *tok = strtok_r(buf, ".", &save); tok && j; tok = strtok_r(NULL, ".", &save)) {
        if (*tok >= '0' && *tok <= '9')
            j = json_array_get(j, (size_t)atoi(tok));
        else
            j = json_object_get(j, tok);
    }
    ck_assert_msg(j != NULL, "no %s in the decoded message", path);
    return j;
}

static const char *str_at(json_t *j, const char *path)
{
    return json_string_value(path_get(j, path));
}

START_TEST(python_protobuf_decodes_what_we_encode)
{
    fl_attr_t res[2] = {str_attr("service.name", "users"),
                        str_attr("service.instance.id", "users-2")};
    fl_span_data_t *spans[2];
    for (int n = 0; n < 2; n++) {
        fl_span_data_t *s = spans[n] = calloc(1, sizeof *s);
        memset(s->trace_id, 0x4b, 16);
        memset(s->span_id, 0x10 + n, 8);
        s->name = strdup(n ? "/users.Users/Get" : "GET /users/{id}");
        s->kind = n ? FL_SPAN_CLIENT : FL_SPAN_SERVER;
        s->start_ns = 1700000000123456789ull;
        s->end_ns = s->start_ns + 5000;
        s->trace_flags = 1;
    }
    fl_span_data_t *c = spans[1];
    c->has_parent = true;
    c->parent_remote = false;
    memset(c->parent_span_id, 0x10, 8);
    c->trace_state = strdup("rojo=00f067aa0ba902b7");
    c->nattrs = c->cap_attrs = 5;
    c->attrs = calloc(5, sizeof *c->attrs);
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    c->attrs[0] = str_attr("rpc.system", "grpc");
    c->attrs[1] = (fl_attr_t){.key = strdup("http.request.resend_count"), .type = FL_ATTR_INT};
    c->attrs[1].v.i = -2;
    c->attrs[2] = (fl_attr_t){.key = strdup("retry"), .type = FL_ATTR_BOOL};
    c->attrs[2].v.b = true;
    c->attrs[3] = (fl_attr_t){.key = strdup("ratio"), .type = FL_ATTR_DOUBLE};
    c->attrs[3].v.d = 0.25;
    c->attrs[4] = str_attr("big", big); /* lengths of two bytes at every level */
    c->nevents = c->cap_events = 1;
    c->events = calloc(1, sizeof *c->events);
    c->events[0] = (fl_span_event_t){strdup("retry scheduled"), c->start_ns + 10};
    c->status_code = FL_STATUS_ERROR;
    c->status_message = strdup("UNAVAILABLE");
    c->dropped_attrs = 3;

    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_otlp_encode(&b, res, 2, "faultline", "0.1.0", spans, 2), 0);
    json_t *j = decode_with_python(&b);
    ck_assert(json_is_true(path_get(j, "reencode_equal")));
    ck_assert_str_eq(str_at(j, "resource_spans.0.resource.attributes.0.key"), "service.name");
    ck_assert_str_eq(str_at(j, "resource_spans.0.resource.attributes.1.value.string_value"),
                     "users-2");
    ck_assert_str_eq(str_at(j, "resource_spans.0.scope_spans.0.scope.name"), "faultline");
    ck_assert_str_eq(str_at(j, "resource_spans.0.scope_spans.0.scope.version"), "0.1.0");
    json_t *s0 = path_get(j, "resource_spans.0.scope_spans.0.spans.0");
    json_t *s1 = path_get(j, "resource_spans.0.scope_spans.0.spans.1");
    ck_assert_str_eq(str_at(s0, "trace_id"), "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b");
    ck_assert_str_eq(str_at(s0, "span_id"), "1010101010101010");
    ck_assert_ptr_null(json_object_get(s0, "parent_span_id"));
    ck_assert_str_eq(str_at(s0, "name"), "GET /users/{id}");
    ck_assert_int_eq(json_integer_value(path_get(s0, "kind")), 2);
    ck_assert_str_eq(str_at(s0, "start_time_unix_nano"), "1700000000123456789");
    ck_assert_str_eq(str_at(s0, "end_time_unix_nano"), "1700000000123461789");
    ck_assert_int_eq(json_integer_value(path_get(s0, "flags")), 0x101);
    ck_assert_str_eq(str_at(s1, "parent_span_id"), "1010101010101010");
    ck_assert_str_eq(str_at(s1, "trace_state"), "rojo=00f067aa0ba902b7");
    ck_assert_int_eq(json_integer_value(path_get(s1, "kind")), 3);
    ck_assert_str_eq(str_at(s1, "attributes.0.value.string_value"), "grpc");
    ck_assert_str_eq(str_at(s1, "attributes.1.key"), "http.request.resend_count");
    ck_assert_str_eq(str_at(s1, "attributes.1.value.int_value"), "-2");
    ck_assert(json_is_true(path_get(s1, "attributes.2.value.bool_value")));
    ck_assert(json_real_value(path_get(s1, "attributes.3.value.double_value")) == 0.25);
    ck_assert_str_eq(str_at(s1, "attributes.4.value.string_value"), big);
    ck_assert_int_eq(json_integer_value(path_get(s1, "dropped_attributes_count")), 3);
    ck_assert_str_eq(str_at(s1, "events.0.name"), "retry scheduled");
    ck_assert_str_eq(str_at(s1, "events.0.time_unix_nano"), "1700000000123456799");
    ck_assert_int_eq(json_integer_value(path_get(s1, "status.code")), 2);
    ck_assert_str_eq(str_at(s1, "status.message"), "UNAVAILABLE");
    json_decref(j);
    fl_buf_free(&b);
    for (int n = 0; n < 2; n++)
        fl_span_data_free(spans[n]);
    fl_attr_free(&res[0]);
    fl_attr_free(&res[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("otlp");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hand_computed_bytes);
    tcase_add_test(tc, python_protobuf_decodes_what_we_encode);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

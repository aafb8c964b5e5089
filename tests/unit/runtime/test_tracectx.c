/* Unit tests for services/runtime/tracectx: traceparent and tracestate as the W3C Trace
 * Context Recommendation and its conformance suite (w3c/trace-context test/test.py) say,
 * every invalid case included. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/tracectx.h"

#define TID "12345678901234567890123456789012"
#define PID "1234567890123456"

static int tp(const char *s, fl_tracectx_t *c)
{
    memset(c, 0, sizeof *c);
    return fl_traceparent_parse(s, strlen(s), c);
}

static int ts(const char *s, char *out)
{
    return fl_tracestate_parse(s, strlen(s), out);
}

START_TEST(traceparent_valid_and_round_trip)
{
    fl_tracectx_t c;
    ck_assert_int_eq(tp("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
    ck_assert_uint_eq(c.trace_id[0], 0x4b);
    ck_assert_uint_eq(c.trace_id[15], 0x36);
    ck_assert_uint_eq(c.span_id[0], 0x00);
    ck_assert_uint_eq(c.span_id[7], 0xb7);
    ck_assert_uint_eq(c.flags, FL_TRACE_FLAG_SAMPLED);
    ck_assert(c.remote);
    char out[FL_TRACEPARENT_LEN + 1];
    ck_assert_uint_eq(fl_traceparent_format(&c, out), 55);
    ck_assert_str_eq(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    ck_assert_int_eq(tp("00-" TID "-" PID "-00", &c), 0);
    ck_assert_uint_eq(c.flags, 0);
}
END_TEST

START_TEST(traceparent_invalid_cases)
{
    static const char *const bad[] = {
        "",
        "00-" TID "-" PID "-01.",                             /* trailing data, version 00 */
        "00-" TID "-" PID "-01-what-the-future-will-be-like", /* fields in version 00 */
        "ff-" TID "-" PID "-01",                              /* version ff is forbidden */
        ".0-" TID "-" PID "-01",                              /* version not hex */
        "0.-" TID "-" PID "-01",
        "000-" TID "-" PID "-01", /* version too long */
        "0000-" TID "-" PID "-01",
        "0-" TID "-" PID "-01",                           /* version too short */
        "00-00000000000000000000000000000000-" PID "-01", /* all-zero trace-id */
        "00-.2345678901234567890123456789012-" PID "-01", /* trace-id not hex */
        "00-1234567890123456789012345678901.-" PID "-01",
        "00-123456789012345678901234567890123-" PID "-01", /* trace-id too long */
        "00-1234567890123456789012345678901-" PID "-01",   /* trace-id too short */
        "00-" TID "-0000000000000000-01",                  /* all-zero parent-id */
        "00-" TID "-.234567890123456-01",                  /* parent-id not hex */
        "00-" TID "-123456789012345.-01",
        "00-" TID "-12345678901234567-01", /* parent-id too long */
        "00-" TID "-123456789012345-01",   /* parent-id too short */
        "00-" TID "-" PID "-.0",           /* flags not hex */
        "00-" TID "-" PID "-0.",
        "00-" TID "-" PID "-001",                                  /* flags too long */
        "00-" TID "-" PID "-1",                                    /* flags too short */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", /* uppercase parent-id */
        "00-" TID "-" PID "-0A",                                   /* uppercase flags */
        "0A-" TID "-" PID "-01",                                   /* uppercase version */
        "00_" TID "-" PID "-01",                                   /* wrong delimiters */
        "00-" TID "_" PID "-01",
        "00-" TID "-" PID "_01",
        "cc-" TID "-" PID "-01.what-the-future-will-be-like", /* future: not '-' after flags */
        "cc-" TID "-" PID "-0",                               /* future but too short */
        " \t ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_tracectx_t c;
        memset(&c, 0x5a, sizeof c);
        ck_assert_msg(fl_traceparent_parse(bad[i], strlen(bad[i]), &c) == FL_EMALFORMED,
                      "accepted %s", bad[i]);
        ck_assert_msg(c.trace_id[0] == 0x5a, "changed the context on %s", bad[i]);
    }
    ck_assert_int_eq(fl_traceparent_parse(NULL, 0, NULL), FL_EMALFORMED);
}
END_TEST

START_TEST(traceparent_future_versions_and_ows)
{
    fl_tracectx_t c;
    ck_assert_int_eq(tp("cc-" TID "-" PID "-01", &c), 0);
    ck_assert_int_eq(tp("cc-" TID "-" PID "-01-what-the-future-will-be-like", &c), 0);
    char out[FL_TRACEPARENT_LEN + 1];
    fl_traceparent_format(&c, out); /* sent on as version 00, extra fields gone */
    ck_assert_str_eq(out, "00-" TID "-" PID "-01");
    ck_assert_int_eq(tp("01-" TID "-" PID "-09-x", &c), 0);
    ck_assert_uint_eq(c.flags, FL_TRACE_FLAG_SAMPLED); /* unknown flags are zeroed */
    ck_assert_int_eq(tp("00-" TID "-" PID "-ff", &c), 0);
    fl_traceparent_format(&c, out);
    ck_assert_str_eq(out, "00-" TID "-" PID "-01");
    ck_assert_int_eq(tp("00-" TID "-" PID "-fe", &c), 0);
    ck_assert_uint_eq(c.flags, 0);
    static const char *const ows[] = {
        " 00-" TID "-" PID "-01",  "\t00-" TID "-" PID "-01",     "00-" TID "-" PID "-01 ",
        "00-" TID "-" PID "-01\t", "\t 00-" TID "-" PID "-01 \t",
    };
    for (size_t i = 0; i < sizeof ows / sizeof ows[0]; i++)
        ck_assert_msg(tp(ows[i], &c) == 0, "refused [%s]", ows[i]);
}
END_TEST

START_TEST(tracestate_valid)
{
    char out[FL_TRACESTATE_MAX + 1];
    ck_assert_int_eq(ts("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", out), 0);
    ck_assert_str_eq(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    ck_assert_int_eq(ts("", out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(ts(" , ,\t,", out), 0); /* empty and whitespace-only members */
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(ts("foo=1 \t , \t bar=2, \t baz=3", out), 0);
    ck_assert_str_eq(out, "foo=1,bar=2,baz=3");
    ck_assert_int_eq(ts("foo=1\t \t,\t \tbar=2,\t \tbaz=3", out), 0);
    ck_assert_str_eq(out, "foo=1,bar=2,baz=3");
    ck_assert_int_eq(ts("\t foo=1 \t", out), 0);
    ck_assert_str_eq(out, "foo=1");
    ck_assert_int_eq(ts("foo=1,,bar=2", out), 0);
    ck_assert_str_eq(out, "foo=1,bar=2");
    ck_assert_int_eq(ts("foo= 1", out), 0); /* leading spaces belong to the value */
    ck_assert_str_eq(out, "foo= 1");
    /* every allowed character, with and without a vendor */
    char key[64] = "abcdefghijklmnopqrstuvwxyz0123456789_-*/", in[512], value[128];
    size_t v = 0;
    for (int ch = 0x20; ch <= 0x7e; ch++)
        if (ch != ',' && ch != '=')
            value[v++] = (char)ch;
    value[v] = '\0';
    snprintf(in, sizeof in, "%s=%s", key, value);
    ck_assert_int_eq(ts(in, out), 0);
    ck_assert_str_eq(out, in);
    strcat(key, "@a-z0-9_-*/");
    snprintf(in, sizeof in, "%s=%s", key, value);
    ck_assert_int_eq(ts(in, out), 0);
    ck_assert_str_eq(out, in);
    ck_assert_int_eq(ts("0tenant@vendor=1", out), 0); /* a tenant may start with a digit */
}
END_TEST

START_TEST(tracestate_invalid_discards_everything)
{
    static const char *const bad[] = {
        "foo =1",
        "FOO=1",
        "foo.bar=1",
        "foo@=1,bar=2",
        "@foo=1,bar=2",
        "foo@@bar=1,bar=2",
        "foo@bar@baz=1,bar=2",
        "foo=1,foo=1",
        "foo=1,foo=2",
        "foo",
        "=1",
        "foo=",
        "foo=1 2=3",
        "foo=a,b",
        "foo=\x7f",
        "foo=a\tb",
        "1foo=1",
        "t@1v=1",
        "foo=a=b",
        "foo=é",
    };
    char out[FL_TRACESTATE_MAX + 1];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(out, "junk");
        ck_assert_msg(ts(bad[i], out) == FL_EMALFORMED, "accepted [%s]", bad[i]);
        ck_assert_str_eq(out, "");
    }
}
END_TEST

START_TEST(tracestate_limits)
{
    char in[4096], out[FL_TRACESTATE_MAX + 1];
    /* 32 members are fine, 33 discard the whole value */
    size_t o = 0;
    for (int i = 1; i <= 32; i++)
        o += (size_t)snprintf(in + o, sizeof in - o, "%sbar%02d=%02d", i > 1 ? "," : "", i, i);
    ck_assert_int_eq(ts(in, out), 0);
    ck_assert_str_eq(out, in);
    snprintf(in + o, sizeof in - o, ",bar33=33");
    ck_assert_int_eq(ts(in, out), FL_EMALFORMED);
    /* empty members do not count */
    snprintf(in + o, sizeof in - o, ",,, ,");
    ck_assert_int_eq(ts(in, out), 0);
    /* key lengths: 256 ok, 257 not; tenant 241 ok, 242 not; system 14 ok, 15 not */
    memset(in, 'z', 256);
    strcpy(in + 256, "=1");
    ck_assert_int_eq(ts(in, out), 0);
    memset(in, 'z', 257);
    strcpy(in + 257, "=1");
    ck_assert_int_eq(ts(in, out), FL_EMALFORMED);
    memset(in, 't', 241);
    in[241] = '@';
    memset(in + 242, 'v', 14);
    strcpy(in + 256, "=1");
    ck_assert_int_eq(ts(in, out), 0);
    memset(in, 't', 242);
    strcpy(in + 242, "@v=1");
    ck_assert_int_eq(ts(in, out), FL_EMALFORMED);
    strcpy(in, "t@vvvvvvvvvvvvvvv=1");
    ck_assert_int_eq(ts(in, out), FL_EMALFORMED);
    /* value lengths: 256 ok, 257 not */
    strcpy(in, "k=");
    memset(in + 2, 'x', 256);
    in[258] = '\0';
    ck_assert_int_eq(ts(in, out), 0);
    strcpy(in, "k=");
    memset(in + 2, 'x', 257);
    in[259] = '\0';
    ck_assert_int_eq(ts(in, out), FL_EMALFORMED);
}
END_TEST

START_TEST(tracestate_truncation_drops_whole_entries)
{
    char in[2048], out[FL_TRACESTATE_MAX + 1], big[200];
    /* a 150-character entry goes first, even though it is not at the end */
    memset(big, 'b', 148);
    big[148] = '\0';
    size_t o = (size_t)snprintf(in, sizeof in, "a=%s", big); /* 150 characters */
    for (int i = 0; i < 12; i++)                             /* 12 x 31 = 372 */
        o += (size_t)snprintf(in + o, sizeof in - o, ",k%02d=%026d", i, i);
    ck_assert_uint_gt(strlen(in), FL_TRACESTATE_MAX);
    ck_assert_int_eq(ts(in, out), 0);
    ck_assert(strncmp(out, "k00=", 4) == 0);
    ck_assert_ptr_nonnull(strstr(out, "k11="));
    /* without long entries, the last ones go */
    o = 0;
    for (int i = 0; i < 20; i++) /* 20 x 31 - 1 = 619 */
        o += (size_t)snprintf(in + o, sizeof in - o, "%sk%02d=%026d", i ? "," : "", i, i);
    ck_assert_int_eq(ts(in, out), 0);
    ck_assert_uint_le(strlen(out), FL_TRACESTATE_MAX);
    ck_assert_uint_eq(strlen(out), 16 * 31 - 1);
    ck_assert(strncmp(out, "k00=", 4) == 0);
    ck_assert_ptr_nonnull(strstr(out, "k15="));
    ck_assert_ptr_null(strstr(out, "k16="));
}
END_TEST

START_TEST(extract_ignores_tracestate_of_a_bad_traceparent)
{
    fl_tracectx_t c;
    const char *good = "00-" TID "-" PID "-01", *bad = "00-" TID "-" PID "-01.";
    ck_assert_int_eq(fl_tracectx_extract(good, strlen(good), "foo=1", 5, &c), 0);
    ck_assert_str_eq(c.tracestate, "foo=1");
    ck_assert_int_eq(fl_tracectx_extract(bad, strlen(bad), "foo=1", 5, &c), FL_EMALFORMED);
    ck_assert_str_eq(c.tracestate, "");
    ck_assert(fl_trace_id_is_zero(c.trace_id, 16));
    ck_assert_int_eq(fl_tracectx_extract(NULL, 0, "foo=1", 5, &c), FL_ENOTFOUND);
    ck_assert_str_eq(c.tracestate, "");
    /* a bad tracestate does not affect the traceparent */
    ck_assert_int_eq(fl_tracectx_extract(good, strlen(good), "foo=1,foo=2", 11, &c), 0);
    ck_assert_str_eq(c.tracestate, "");
    ck_assert_uint_eq(c.trace_id[0], 0x12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tracectx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, traceparent_valid_and_round_trip);
    tcase_add_test(tc, traceparent_invalid_cases);
    tcase_add_test(tc, traceparent_future_versions_and_ows);
    tcase_add_test(tc, tracestate_valid);
    tcase_add_test(tc, tracestate_invalid_discards_everything);
    tcase_add_test(tc, tracestate_limits);
    tcase_add_test(tc, tracestate_truncation_drops_whole_entries);
    tcase_add_test(tc, extract_ignores_tracestate_of_a_bad_traceparent);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

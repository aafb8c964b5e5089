/* Unit tests for services/runtime/grpc_status: code names, grpc-status parsing, the HTTP and
 * HTTP/2 mappings of the gRPC spec, and grpc-message percent-encoding both ways. */
#include <check.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "services/runtime/grpc_status.h"

START_TEST(names)
{
    ck_assert_str_eq(fl_grpc_code_name(FL_GRPC_OK), "OK");
    ck_assert_str_eq(fl_grpc_code_name(4), "DEADLINE_EXCEEDED");
    ck_assert_str_eq(fl_grpc_code_name(14), "UNAVAILABLE");
    ck_assert_str_eq(fl_grpc_code_name(16), "UNAUTHENTICATED");
    ck_assert_str_eq(fl_grpc_code_name(17), "UNKNOWN");
    ck_assert_str_eq(fl_grpc_code_name(-1), "UNKNOWN");
    ck_assert_int_eq(fl_grpc_code_parse_name("RESOURCE_EXHAUSTED"), 8);
    ck_assert_int_eq(fl_grpc_code_parse_name("12"), 12);
    ck_assert_int_eq(fl_grpc_code_parse_name("0"), 0);
    ck_assert_int_eq(fl_grpc_code_parse_name("17"), -1);
    ck_assert_int_eq(fl_grpc_code_parse_name("unavailable"), -1);
    ck_assert_int_eq(fl_grpc_code_parse_name(""), -1);
    ck_assert_int_eq(fl_grpc_code_parse_name("1x"), -1);
}
END_TEST

static int status(const char *s)
{
    return fl_grpc_status_parse(s, strlen(s));
}

START_TEST(grpc_status_values)
{
    ck_assert_int_eq(status("0"), FL_GRPC_OK);
    ck_assert_int_eq(status("14"), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(status("16"), FL_GRPC_UNAUTHENTICATED);
    ck_assert_int_eq(status("17"), FL_GRPC_UNKNOWN); /* a code we do not know */
    ck_assert_int_eq(status("99999999999999999999"), FL_GRPC_UNKNOWN);
    ck_assert_int_eq(status(""), FL_GRPC_INTERNAL); /* not a status at all */
    ck_assert_int_eq(status("OK"), FL_GRPC_INTERNAL);
    ck_assert_int_eq(status("-1"), FL_GRPC_INTERNAL);
    ck_assert_int_eq(status(" 1"), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_status_parse("45", 1), 4); /* bounded by the length */
}
END_TEST

START_TEST(http_mapping)
{
    ck_assert_int_eq(fl_grpc_code_from_http(400), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_http(401), FL_GRPC_UNAUTHENTICATED);
    ck_assert_int_eq(fl_grpc_code_from_http(403), FL_GRPC_PERMISSION_DENIED);
    ck_assert_int_eq(fl_grpc_code_from_http(404), FL_GRPC_UNIMPLEMENTED);
    ck_assert_int_eq(fl_grpc_code_from_http(429), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(fl_grpc_code_from_http(502), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(fl_grpc_code_from_http(503), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(fl_grpc_code_from_http(504), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(fl_grpc_code_from_http(500), FL_GRPC_UNKNOWN);
    ck_assert_int_eq(fl_grpc_code_from_http(415), FL_GRPC_UNKNOWN);
    ck_assert_int_eq(fl_grpc_code_from_http(302), FL_GRPC_UNKNOWN);
    ck_assert_int_eq(fl_grpc_code_from_http(200), FL_GRPC_UNKNOWN);
}
END_TEST

START_TEST(h2_mapping)
{
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_NO_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_PROTOCOL_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_INTERNAL_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_FLOW_CONTROL_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_FRAME_SIZE_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_COMPRESSION_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_CONNECT_ERROR), FL_GRPC_INTERNAL);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_REFUSED_STREAM), FL_GRPC_UNAVAILABLE);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_CANCEL), FL_GRPC_CANCELLED);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_ENHANCE_YOUR_CALM), FL_GRPC_RESOURCE_EXHAUSTED);
    ck_assert_int_eq(fl_grpc_code_from_h2(NGHTTP2_INADEQUATE_SECURITY), FL_GRPC_PERMISSION_DENIED);
}
END_TEST

static const char *enc(const char *s, size_t len)
{
    static fl_buf_t b = FL_BUF_INIT;
    fl_buf_reset(&b);
    ck_assert_int_eq(fl_grpc_message_encode(&b, s, len), 0);
    return b.data ? b.data : "";
}

START_TEST(message_encoding)
{
    ck_assert_str_eq(enc("plain text: ok!", 15), "plain text: ok!");
    ck_assert_str_eq(enc("100%", 4), "100%25");
    ck_assert_str_eq(enc("a\nb\tc", 5), "a%0Ab%09c");
    ck_assert_str_eq(enc("\x7f~ ", 3), "%7F~ ");
    ck_assert_str_eq(enc("\0x", 2), "%00x");
    ck_assert_str_eq(enc("héllo 🚀", strlen("héllo 🚀")), "h%C3%A9llo %F0%9F%9A%80");
    ck_assert_str_eq(enc("", 0), "");
}
END_TEST

static const char *dec(const char *s)
{
    static char out[64];
    fl_grpc_message_decode(s, strlen(s), out, sizeof out);
    return out;
}

START_TEST(message_decoding)
{
    ck_assert_str_eq(dec("h%C3%A9llo"), "héllo");
    ck_assert_str_eq(dec("100%25"), "100%");
    ck_assert_str_eq(dec("%0a%0A"), "\n\n");     /* either case of hex */
    ck_assert_str_eq(dec("50% off"), "50% off"); /* not an escape: kept as it is */
    ck_assert_str_eq(dec("bad %G1 %1"), "bad %G1 %1");
    ck_assert_str_eq(dec("x%4Gy"), "x%4Gy");
    ck_assert_str_eq(dec("end %"), "end %");
    ck_assert_str_eq(dec("end %4"), "end %4");
    char small[4];
    ck_assert_uint_eq(fl_grpc_message_decode("abcdef", 6, small, sizeof small), 6);
    ck_assert_str_eq(small, "abc"); /* truncated, terminated */
    /* every byte survives the round trip */
    char all[256], back[300];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    const char *e = enc(all, 256);
    ck_assert_uint_eq(fl_grpc_message_decode(e, strlen(e), back, sizeof back), 256);
    ck_assert_mem_eq(back, all, 256);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grpc_status");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, names);
    tcase_add_test(tc, grpc_status_values);
    tcase_add_test(tc, http_mapping);
    tcase_add_test(tc, h2_mapping);
    tcase_add_test(tc, message_encoding);
    tcase_add_test(tc, message_decoding);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

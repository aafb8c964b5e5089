/* Unit tests for services/runtime/grpc_frame: whole messages, need-more at every split
 * point, reserved flags, the size limit, and the prefix written back. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_frame.h"

START_TEST(parses_a_whole_message)
{
    const uint8_t in[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0xEE};
    fl_grpc_frame_t f;
    ck_assert_int_eq(fl_grpc_frame_parse(in, sizeof in, 100, &f), 8);
    ck_assert_int_eq(f.compressed, 0);
    ck_assert_uint_eq(f.len, 3);
    ck_assert_ptr_eq(f.msg, in + 5);
    ck_assert_mem_eq(f.msg, "abc", 3);
}
END_TEST

START_TEST(empty_message)
{
    const uint8_t in[] = {0, 0, 0, 0, 0};
    fl_grpc_frame_t f;
    ck_assert_int_eq(fl_grpc_frame_parse(in, sizeof in, 0, &f), 5);
    ck_assert_uint_eq(f.len, 0);
}
END_TEST

START_TEST(needs_more_at_every_split)
{
    const uint8_t in[] = {0, 0, 0, 0, 4, 'w', 'x', 'y', 'z'};
    fl_grpc_frame_t f;
    for (size_t n = 0; n < sizeof in; n++)
        ck_assert_int_eq(fl_grpc_frame_parse(in, n, 100, &f), FL_EAGAIN);
    ck_assert_int_eq(fl_grpc_frame_parse(in, sizeof in, 100, &f), 9);
    ck_assert_int_eq(fl_grpc_frame_parse_header(in, 4, 100, &f), FL_EAGAIN);
    ck_assert_int_eq(fl_grpc_frame_parse_header(in, 5, 100, &f), 0);
    ck_assert_uint_eq(f.len, 4);
}
END_TEST

START_TEST(compressed_flag_is_reported)
{
    const uint8_t in[] = {1, 0, 0, 0, 1, 'z'};
    fl_grpc_frame_t f;
    ck_assert_int_eq(fl_grpc_frame_parse(in, sizeof in, 100, &f), 6);
    ck_assert_int_eq(f.compressed, 1);
}
END_TEST

START_TEST(reserved_flags_are_malformed)
{
    fl_grpc_frame_t f;
    for (int flag = 2; flag < 256; flag++) {
        const uint8_t in[] = {(uint8_t)flag, 0, 0, 0, 0};
        ck_assert_int_eq(fl_grpc_frame_parse(in, sizeof in, 100, &f), FL_EMALFORMED);
        /* known malformed from its first byte: no need to wait for the rest */
        ck_assert_int_eq(fl_grpc_frame_parse(in, 1, 100, &f), FL_EMALFORMED);
    }
}
END_TEST

START_TEST(size_limit)
{
    fl_grpc_frame_t f;
    const uint8_t at[] = {0, 0, 0x40, 0, 0}; /* 4 MiB exactly: allowed */
    ck_assert_int_eq(fl_grpc_frame_parse_header(at, 5, FL_GRPC_DEFAULT_MAX_MESSAGE, &f), 0);
    ck_assert_int_eq(fl_grpc_frame_parse(at, 5, FL_GRPC_DEFAULT_MAX_MESSAGE, &f), FL_EAGAIN);
    const uint8_t over[] = {0, 0, 0x40, 0, 1}; /* one byte more: refused from the prefix */
    ck_assert_int_eq(fl_grpc_frame_parse(over, 5, FL_GRPC_DEFAULT_MAX_MESSAGE, &f), FL_ETOOBIG);
    ck_assert_uint_eq(f.len, FL_GRPC_DEFAULT_MAX_MESSAGE + 1);
    const uint8_t huge[] = {0, 0xFF, 0xFF, 0xFF, 0xFF};
    ck_assert_int_eq(fl_grpc_frame_parse(huge, 5, FL_GRPC_DEFAULT_MAX_MESSAGE, &f), FL_ETOOBIG);
    ck_assert_uint_eq(f.len, 0xFFFFFFFFu);
}
END_TEST

START_TEST(writes_the_prefix)
{
    uint8_t h[5];
    fl_grpc_frame_header(h, 0, 0x01020304);
    const uint8_t want[] = {0, 1, 2, 3, 4};
    ck_assert_mem_eq(h, want, 5);
    fl_grpc_frame_header(h, 1, 7);
    const uint8_t want2[] = {1, 0, 0, 0, 7};
    ck_assert_mem_eq(h, want2, 5);
    /* and what it writes parses back */
    uint8_t buf[5 + 7] = {0};
    memcpy(buf, h, 5);
    fl_grpc_frame_t f;
    ck_assert_int_eq(fl_grpc_frame_parse(buf, sizeof buf, 7, &f), 12);
    ck_assert_int_eq(f.compressed, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grpc_frame");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parses_a_whole_message);
    tcase_add_test(tc, empty_message);
    tcase_add_test(tc, needs_more_at_every_split);
    tcase_add_test(tc, compressed_flag_is_reported);
    tcase_add_test(tc, reserved_flags_are_malformed);
    tcase_add_test(tc, size_limit);
    tcase_add_test(tc, writes_the_prefix);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

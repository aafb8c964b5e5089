/* Unit tests for lib/buf: appends grow the buffer and keep it NUL-terminated, printf
 * formats in place, consume drops a prefix, reset and free leave a usable buffer. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

START_TEST(append_grows_and_terminates)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_append(&b, "abc", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_str_eq(b.data, "abc");
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(fl_buf_append(&b, "0123456789", 10), 0);
    ck_assert_uint_eq(b.len, 10003);
    ck_assert_uint_gt(b.cap, b.len);
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_int_eq(memcmp(b.data + 9993, "0123456789", 10), 0);
    ck_assert_int_eq(fl_buf_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, 10003);
    fl_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(binary_data)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_append(&b, "a\0b", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_mem_eq(b.data, "a\0b\0", 4);
    fl_buf_free(&b);
}
END_TEST

START_TEST(puts_and_printf)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_puts(&b, "x="), 0);
    ck_assert_int_eq(fl_buf_printf(&b, "%d,%s,%.2f", 42, "y", 1.5), 0);
    ck_assert_str_eq(b.data, "x=42,y,1.50");
    ck_assert_uint_eq(b.len, strlen("x=42,y,1.50"));
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(fl_buf_printf(&b, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, 11 + 2 + 4999);
    ck_assert_int_eq(b.data[b.len - 1], ']');
    ck_assert_int_eq(b.data[b.len], '\0');
    ck_assert_int_eq(fl_buf_printf(&b, "%s", ""), 0);
    ck_assert_uint_eq(b.len, 11 + 2 + 4999);
    fl_buf_free(&b);
}
END_TEST

START_TEST(consume_and_reset)
{
    fl_buf_t b = FL_BUF_INIT;
    fl_buf_consume(&b, 5); /* on an empty buffer: nothing happens */
    fl_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(fl_buf_puts(&b, "hello world"), 0);
    fl_buf_consume(&b, 6);
    ck_assert_str_eq(b.data, "world");
    ck_assert_uint_eq(b.len, 5);
    fl_buf_consume(&b, 0);
    ck_assert_str_eq(b.data, "world");
    fl_buf_consume(&b, 99);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(fl_buf_puts(&b, "again"), 0);
    size_t cap = b.cap;
    fl_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_uint_eq(b.cap, cap); /* reset keeps the memory for reuse */
    fl_buf_free(&b);
    fl_buf_free(&b); /* twice is harmless */
}
END_TEST

START_TEST(reserve)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_reserve(&b, 100), 0);
    ck_assert_uint_ge(b.cap, 101);
    ck_assert_uint_eq(b.len, 0);
    char *before = b.data;
    ck_assert_int_eq(fl_buf_append(&b, "0123456789", 10), 0);
    ck_assert_ptr_eq(b.data, before); /* reserved room is used without moving */
    ck_assert_int_eq(fl_buf_reserve(&b, (size_t)-1 - 1), FL_ENOMEM);
    ck_assert_int_eq(fl_buf_reserve(&b, (size_t)-1 / 2 + 1), FL_ENOMEM);
    ck_assert_str_eq(b.data, "0123456789"); /* a failed reserve changes nothing */
    fl_buf_free(&b);
}
END_TEST

START_TEST(append_escaped)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_buf_append_escaped(&b, "users-1 a/b?c=d&e~_.\xc3\xa9"), 0);
    ck_assert_str_eq(b.data, "users-1%20a%2Fb%3Fc%3Dd%26e~_.%C3%A9");
    fl_buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, append_grows_and_terminates);
    tcase_add_test(tc, binary_data);
    tcase_add_test(tc, puts_and_printf);
    tcase_add_test(tc, consume_and_reset);
    tcase_add_test(tc, reserve);
    tcase_add_test(tc, append_escaped);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

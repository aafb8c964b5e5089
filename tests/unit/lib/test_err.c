/* Unit tests for lib/err: every code has its own message, and foreign codes fall back. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"

START_TEST(every_code_has_a_distinct_message)
{
    for (int a = FL_ERR_FIRST_ + 1; a < FL_ERR_LAST_; a++) {
        const char *ma = fl_strerror(a);
        ck_assert_ptr_nonnull(ma);
        ck_assert_msg(strlen(ma) > 3 && strcmp(ma, "unknown error") != 0, "code %d: '%s'", a, ma);
        for (int b = a + 1; b < FL_ERR_LAST_; b++)
            ck_assert_msg(strcmp(ma, fl_strerror(b)) != 0, "codes %d and %d share '%s'", a, b, ma);
    }
    ck_assert_str_eq(fl_strerror(FL_ENOMEM), "out of memory");
    ck_assert_str_eq(fl_strerror(0), "success");
}
END_TEST

START_TEST(libuv_codes_and_strangers)
{
    ck_assert_str_eq(fl_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
    ck_assert_str_eq(fl_strerror(UV_EOF), uv_strerror(UV_EOF));
    ck_assert_str_eq(fl_strerror(12345), "unknown error");
    ck_assert_str_eq(fl_strerror(-99999), "unknown error");
    /* our codes never collide with libuv's */
    ck_assert_int_lt(FL_ERR_LAST_, -4096);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_code_has_a_distinct_message);
    tcase_add_test(tc, libuv_codes_and_strangers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

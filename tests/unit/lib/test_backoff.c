/* Unit tests for lib/backoff: doubling from min to max, reset, odd bounds. */
#include <check.h>
#include <stdlib.h>

#include "lib/backoff.h"

START_TEST(doubles_up_to_the_max_and_resets)
{
    fl_backoff_t b;
    fl_backoff_init(&b, 100, 2000);
    const uint64_t want[] = {100, 200, 400, 800, 1600, 2000, 2000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_uint_eq(fl_backoff_next(&b), want[i]);
    fl_backoff_reset(&b);
    ck_assert_uint_eq(fl_backoff_next(&b), 100);
    ck_assert_uint_eq(fl_backoff_next(&b), 200);
}
END_TEST

START_TEST(odd_bounds)
{
    fl_backoff_t b;
    fl_backoff_init(&b, 0, 0); /* at least 1 ms, max never below min */
    ck_assert_uint_eq(fl_backoff_next(&b), 1);
    ck_assert_uint_eq(fl_backoff_next(&b), 1);
    fl_backoff_init(&b, UINT64_MAX / 2 + 1, UINT64_MAX); /* no overflow when doubling */
    ck_assert_uint_eq(fl_backoff_next(&b), UINT64_MAX / 2 + 1);
    ck_assert_uint_eq(fl_backoff_next(&b), UINT64_MAX);
    ck_assert_uint_eq(fl_backoff_next(&b), UINT64_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, doubles_up_to_the_max_and_resets);
    tcase_add_test(tc, odd_bounds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for lib/suggest: edit distances and the "did you mean" choice. */
#include <check.h>
#include <stdlib.h>

#include "lib/suggest.h"

START_TEST(distances)
{
    ck_assert_uint_eq(fl_edit_distance("", ""), 0);
    ck_assert_uint_eq(fl_edit_distance("crash", "crash"), 0);
    ck_assert_uint_eq(fl_edit_distance("crsh", "crash"), 1);   /* deletion */
    ck_assert_uint_eq(fl_edit_distance("craash", "crash"), 1); /* insertion */
    ck_assert_uint_eq(fl_edit_distance("crush", "crash"), 1);  /* substitution */
    ck_assert_uint_eq(fl_edit_distance("abc", ""), 3);
    ck_assert_uint_eq(fl_edit_distance("kitten", "sitting"), 3);
    /* names over 40 bytes are never close */
    ck_assert_uint_gt(fl_edit_distance("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                      2);
}
END_TEST

START_TEST(suggestions)
{
    static const char *const names[] = {"crash", "stop", "start", "restart", "latency", NULL};
    ck_assert_str_eq(fl_suggest("crsh", names), "crash");
    ck_assert_str_eq(fl_suggest("strat", names), "start");
    ck_assert_str_eq(fl_suggest("latncy", names), "latency");
    ck_assert_ptr_null(fl_suggest("partition", names)); /* too far from everything */
    ck_assert_ptr_null(fl_suggest("x", (const char *const[]){NULL}));
    /* the closest wins, the first of equals */
    static const char *const close[] = {"abcd", "abce", NULL};
    ck_assert_str_eq(fl_suggest("abcx", close), "abcd");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("suggest");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, distances);
    tcase_add_test(tc, suggestions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for lib/strv.c: length of NULL and empty vectors, deep copies with room for
 * extra entries (independent of the source, NULL-terminated), and freeing NULL. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strv.h"

START_TEST(len)
{
    char *empty[] = {NULL};
    char *three[] = {"a", "", "c", NULL};
    ck_assert_uint_eq(fl_strv_len(NULL), 0);
    ck_assert_uint_eq(fl_strv_len(empty), 0);
    ck_assert_uint_eq(fl_strv_len(three), 3);
}
END_TEST

START_TEST(dup_is_deep)
{
    char a[] = "alpha", b[] = "beta";
    char *v[] = {a, b, NULL};
    char **d = fl_strv_dup(v, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(fl_strv_len(d), 2);
    ck_assert_str_eq(d[0], "alpha");
    ck_assert_str_eq(d[1], "beta");
    ck_assert_ptr_null(d[2]);
    ck_assert_ptr_ne(d[0], a);
    a[0] = 'X'; /* the copy does not follow the source */
    ck_assert_str_eq(d[0], "alpha");
    fl_strv_free(d);
}
END_TEST

START_TEST(dup_extra)
{
    char *v[] = {"x", NULL};
    char **d = fl_strv_dup(v, 3);
    ck_assert_ptr_nonnull(d);
    for (int i = 1; i <= 4; i++) /* the extra slots and the terminator are NULL */
        ck_assert_ptr_null(d[i]);
    d[1] = strdup("added"); /* room to append, freed with the rest */
    ck_assert_uint_eq(fl_strv_len(d), 2);
    fl_strv_free(d);
}
END_TEST

START_TEST(dup_null_and_empty)
{
    char **d = fl_strv_dup(NULL, 0);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(d[0]);
    fl_strv_free(d);
    char *empty[] = {NULL};
    d = fl_strv_dup(empty, 1);
    ck_assert_ptr_nonnull(d);
    ck_assert_ptr_null(d[0]);
    ck_assert_ptr_null(d[1]);
    fl_strv_free(d);
    fl_strv_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("strv");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, len);
    tcase_add_test(tc, dup_is_deep);
    tcase_add_test(tc, dup_extra);
    tcase_add_test(tc, dup_null_and_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for lib/rng: a seed fixes the whole sequence (what --seed N promises),
 * different seeds differ, and below()/double() stay in range and cover it. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/rng.h"

START_TEST(same_seed_same_sequence)
{
    fl_rng_t a, b;
    fl_rng_seed(&a, 42);
    fl_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) {
        ck_assert_uint_eq(fl_rng_next(&a), fl_rng_next(&b));
        ck_assert_uint_eq(fl_rng_below(&a, 1000), fl_rng_below(&b, 1000));
        ck_assert(fl_rng_double(&a) == fl_rng_double(&b));
    }
}
END_TEST

START_TEST(different_seeds_differ)
{
    fl_rng_t a, b;
    fl_rng_seed(&a, 1);
    fl_rng_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 100; i++)
        same += fl_rng_next(&a) == fl_rng_next(&b);
    ck_assert_int_lt(same, 2);
    /* seed 0 is a valid seed, not a stuck all-zero state */
    fl_rng_seed(&a, 0);
    uint64_t first = fl_rng_next(&a);
    ck_assert(first != 0 || fl_rng_next(&a) != 0);
    ck_assert_uint_ne(fl_rng_next(&a), fl_rng_next(&a));
}
END_TEST

START_TEST(reseeding_restarts)
{
    fl_rng_t a;
    uint64_t first[8];
    fl_rng_seed(&a, 7);
    for (int i = 0; i < 8; i++)
        first[i] = fl_rng_next(&a);
    fl_rng_seed(&a, 7);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(fl_rng_next(&a), first[i]);
}
END_TEST

START_TEST(below_bounds)
{
    fl_rng_t r;
    fl_rng_seed(&r, 12345);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(fl_rng_below(&r, 1), 0);
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t x = fl_rng_below(&r, 7);
        ck_assert_uint_lt(x, 7);
        seen[x]++;
    }
    for (int i = 0; i < 7; i++)
        ck_assert_msg(seen[i] > 800 && seen[i] < 1200, "value %d seen %d times", i, seen[i]);
    uint64_t big = (UINT64_C(1) << 63) + 1; /* the worst case for modulo bias */
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(fl_rng_below(&r, big), big);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_lt(fl_rng_below(&r, UINT64_MAX), UINT64_MAX);
}
END_TEST

START_TEST(double_range)
{
    fl_rng_t r;
    fl_rng_seed(&r, 99);
    double lo = 1, hi = 0, sum = 0;
    for (int i = 0; i < 10000; i++) {
        double d = fl_rng_double(&r);
        ck_assert(d >= 0.0 && d < 1.0);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
    }
    ck_assert(lo < 0.01 && hi > 0.99);
    ck_assert(sum / 10000 > 0.45 && sum / 10000 < 0.55);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, same_seed_same_sequence);
    tcase_add_test(tc, different_seeds_differ);
    tcase_add_test(tc, reseeding_restarts);
    tcase_add_test(tc, below_bounds);
    tcase_add_test(tc, double_range);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rng_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

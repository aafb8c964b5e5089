/* Unit tests for lib/hdr: buckets tile the range with no gap or overlap, quantiles match a
 * sorted reference within the promised relative error (1/256) over several distributions,
 * and min, max, merge, reset and the edges (empty, q = 0 and 1, values over the maximum)
 * behave. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/hdr.h"
#include "lib/rng.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact quantile of sorted v[0..n) as hdr.h defines it. */
static uint64_t ref_quantile(const uint64_t *v, size_t n, double q)
{
    if (q <= 0)
        return v[0];
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static void check_against_reference(uint64_t *v, size_t n)
{
    fl_hdr_t h;
    ck_assert_int_eq(fl_hdr_init(&h), 0);
    for (size_t i = 0; i < n; i++)
        fl_hdr_record(&h, v[i]);
    qsort(v, n, sizeof *v, cmp_u64);
    ck_assert_uint_eq(h.total, n);
    ck_assert_uint_eq(h.min, v[0]);
    ck_assert_uint_eq(h.max, v[n - 1]);
    static const double qs[] = {0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        uint64_t want = ref_quantile(v, n, qs[i]);
        uint64_t got = fl_hdr_quantile(&h, qs[i]);
        double err = fabs((double)got - (double)want);
        ck_assert_msg(err <= (double)want / 256.0 + 0.5,
                      "q=%g: got %llu, want %llu (relative error %.5f > 1/256)", qs[i],
                      (unsigned long long)got, (unsigned long long)want, err / (double)want);
    }
    fl_hdr_free(&h);
}

START_TEST(buckets_tile_the_range)
{
    /* every bucket starts right after the previous one ends, and holds what it says */
    for (size_t i = 1; i < FL_HDR_BUCKETS; i++) {
        ck_assert_uint_eq(fl_hdr_bucket_low(i), fl_hdr_bucket_high(i - 1) + 1);
        ck_assert_uint_eq(fl_hdr_bucket(fl_hdr_bucket_low(i)), i);
        ck_assert_uint_eq(fl_hdr_bucket(fl_hdr_bucket_high(i)), i);
        /* width over the lowest value: the relative precision */
        uint64_t lo = fl_hdr_bucket_low(i), w = fl_hdr_bucket_high(i) - lo + 1;
        ck_assert_msg(w == 1 || (double)w / (double)lo <= 1.0 / 128,
                      "bucket %zu: width %llu at %llu", i, (unsigned long long)w,
                      (unsigned long long)lo);
    }
    ck_assert_uint_eq(fl_hdr_bucket_high(FL_HDR_BUCKETS - 1), FL_HDR_MAX);
    ck_assert_uint_eq(fl_hdr_bucket(UINT64_MAX), FL_HDR_BUCKETS - 1);
}
END_TEST

START_TEST(uniform_matches_sorted_reference)
{
    fl_rng_t r;
    fl_rng_seed(&r, 1);
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = 1000 + fl_rng_below(&r, 50000000); /* 1 µs .. 50 ms */
    check_against_reference(v, n);
    free(v);
}
END_TEST

START_TEST(long_tail_matches_sorted_reference)
{
    /* log-uniform over 9 decades: every bucket size is exercised */
    fl_rng_t r;
    fl_rng_seed(&r, 2);
    size_t n = 50000;
    uint64_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)pow(10, 9 * fl_rng_double(&r));
    check_against_reference(v, n);
    free(v);
}
END_TEST

START_TEST(small_and_few_values)
{
    uint64_t one[] = {42};
    check_against_reference(one, 1);
    uint64_t few[] = {5, 1, 300, 299, 70000, 3};
    check_against_reference(few, 6);
    uint64_t same[100];
    for (int i = 0; i < 100; i++)
        same[i] = 123456789;
    check_against_reference(same, 100);
}
END_TEST

START_TEST(bimodal_tail_is_seen)
{
    /* 98% fast, 2% slow: p99 must be slow, p90 fast (what a latency spike looks like) */
    fl_hdr_t h;
    ck_assert_int_eq(fl_hdr_init(&h), 0);
    for (int i = 0; i < 980; i++)
        fl_hdr_record(&h, 1000000);
    for (int i = 0; i < 20; i++)
        fl_hdr_record(&h, 200000000);
    ck_assert_uint_le(fl_hdr_quantile(&h, 0.9), 1000000 + 1000000 / 256);
    ck_assert_uint_ge(fl_hdr_quantile(&h, 0.99), 200000000 - 200000000 / 256);
    ck_assert_uint_ge(fl_hdr_quantile(&h, 0.98), 1000000 - 1000000 / 256);
    ck_assert_uint_le(fl_hdr_quantile(&h, 0.98), 1000000 + 1000000 / 256);
    ck_assert(fabs(fl_hdr_mean(&h) - (980 * 1e6 + 20 * 2e8) / 1000) < 1);
    fl_hdr_free(&h);
}
END_TEST

START_TEST(empty_merge_reset_and_clamp)
{
    fl_hdr_t a, b;
    ck_assert_int_eq(fl_hdr_init(&a), 0);
    ck_assert_int_eq(fl_hdr_init(&b), 0);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 0.5), 0);
    ck_assert(fl_hdr_mean(&a) == 0);
    fl_hdr_record(&a, 10);
    fl_hdr_record(&b, 1000000);
    fl_hdr_record(&b, UINT64_MAX); /* counted as the maximum */
    fl_hdr_merge(&a, &b);
    ck_assert_uint_eq(a.total, 3);
    ck_assert_uint_eq(a.min, 10);
    ck_assert_uint_eq(a.max, FL_HDR_MAX);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 0), 10);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 1), FL_HDR_MAX);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 0.34), 1000000 - 1000000 % 4096 + 2047);
    fl_hdr_reset(&a);
    ck_assert_uint_eq(a.total, 0);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 0.5), 0);
    fl_hdr_record(&a, 7);
    ck_assert_uint_eq(fl_hdr_quantile(&a, 0.5), 7);
    ck_assert_uint_eq(a.min, 7);
    fl_hdr_free(&a);
    fl_hdr_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hdr");
    TCase *tc = tcase_create("hdr");
    tcase_add_test(tc, buckets_tile_the_range);
    tcase_add_test(tc, uniform_matches_sorted_reference);
    tcase_add_test(tc, long_tail_matches_sorted_reference);
    tcase_add_test(tc, small_and_few_values);
    tcase_add_test(tc, bimodal_tail_is_seen);
    tcase_add_test(tc, empty_merge_reset_and_clamp);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

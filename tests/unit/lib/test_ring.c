/* Unit tests for lib/ring.c: the byte ring that keeps the tail of what each instance printed.
 * Fixed cases for each path through fl_ring_write (fits, wraps, exactly cap, larger than cap),
 * tail(max) across the wrap point, the truncated flag, reset, and a random sequence of writes
 * checked against a naive model (a string that keeps its last cap bytes). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ring.h"

/* The ring's whole content (tail with max 0) must be want. */
static void check_tail(const fl_ring_t *r, size_t max, const char *want)
{
    size_t len = 12345;
    char *got = fl_ring_tail(r, max, &len);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(got, want);
    free(got);
}

static void put(fl_ring_t *r, const char *s)
{
    fl_ring_write(r, s, strlen(s));
}

START_TEST(empty)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 8), 0);
    check_tail(&r, 0, "");
    check_tail(&r, 3, "");
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    fl_ring_write(&r, "x", 0);
    check_tail(&r, 0, "");
    ck_assert_uint_eq(r.total, 0);
    fl_ring_free(&r);
    ck_assert_ptr_null(r.data);
    fl_ring_free(&r); /* idempotent */
}
END_TEST

START_TEST(fits)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 8), 0);
    put(&r, "abc");
    check_tail(&r, 0, "abc");
    put(&r, "def");
    check_tail(&r, 0, "abcdef");
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    put(&r, "gh"); /* exactly full, nothing dropped */
    check_tail(&r, 0, "abcdefgh");
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    ck_assert_uint_eq(r.total, 8);
    fl_ring_free(&r);
}
END_TEST

START_TEST(wraparound)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 8), 0);
    put(&r, "abcdef");
    put(&r, "ghij"); /* wraps: the two oldest bytes go */
    check_tail(&r, 0, "cdefghij");
    ck_assert_int_eq(fl_ring_truncated(&r), 1);
    put(&r, "kl");
    check_tail(&r, 0, "efghijkl");
    put(&r, "mnopqrs"); /* 7 bytes from an offset start: wraps again */
    check_tail(&r, 0, "lmnopqrs");
    ck_assert_uint_eq(r.total, 19);
    ck_assert_uint_eq(r.len, 8);
    fl_ring_free(&r);
}
END_TEST

START_TEST(write_larger_than_capacity)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 8), 0);
    put(&r, "0123456789abcdefghij"); /* into an empty ring */
    check_tail(&r, 0, "cdefghij");
    ck_assert_int_eq(fl_ring_truncated(&r), 1);
    put(&r, "xyz");
    put(&r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"); /* into a ring whose start is not 0 */
    check_tail(&r, 0, "STUVWXYZ");
    put(&r, "12345678"); /* exactly cap into a full ring */
    check_tail(&r, 0, "12345678");
    put(&r, "9");
    check_tail(&r, 0, "23456789");
    ck_assert_uint_eq(r.total, 20 + 3 + 26 + 8 + 1);
    fl_ring_free(&r);
}
END_TEST

START_TEST(tail_max)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 8), 0);
    put(&r, "abcdef");
    check_tail(&r, 1, "f");
    check_tail(&r, 3, "def");
    check_tail(&r, 6, "abcdef");
    check_tail(&r, 100, "abcdef");
    put(&r, "ghijk"); /* content "defghijk" stored as "ijk" + "defgh": wrapped */
    check_tail(&r, 0, "defghijk");
    check_tail(&r, 2, "jk");
    check_tail(&r, 4, "hijk"); /* crosses the wrap point */
    check_tail(&r, 7, "efghijk");
    check_tail(&r, 8, "defghijk");
    size_t len;
    char *s = fl_ring_tail(&r, 5, NULL); /* outlen is optional */
    ck_assert_str_eq(s, "ghijk");
    free(s);
    s = fl_ring_tail(&r, 0, &len);
    ck_assert_uint_eq(len, 8);
    free(s);
    fl_ring_free(&r);
}
END_TEST

START_TEST(binary_bytes)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 4), 0);
    fl_ring_write(&r, "a\0b\0c", 5);
    size_t len;
    char *s = fl_ring_tail(&r, 0, &len);
    ck_assert_uint_eq(len, 4);
    ck_assert_int_eq(memcmp(s, "\0b\0c", 4), 0);
    ck_assert_int_eq(s[4], '\0');
    free(s);
    fl_ring_free(&r);
}
END_TEST

START_TEST(truncated_and_reset)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 4), 0);
    put(&r, "abcd");
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    put(&r, "e");
    ck_assert_int_eq(fl_ring_truncated(&r), 1);
    fl_ring_reset(&r);
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    check_tail(&r, 0, "");
    put(&r, "xy");
    check_tail(&r, 0, "xy");
    ck_assert_int_eq(fl_ring_truncated(&r), 0);
    fl_ring_free(&r);
}
END_TEST

START_TEST(zero_capacity)
{
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, 0), 0); /* rounded up to one byte */
    ck_assert_uint_eq(r.cap, 1);
    put(&r, "abc");
    check_tail(&r, 0, "c");
    ck_assert_int_eq(fl_ring_truncated(&r), 1);
    fl_ring_free(&r);
}
END_TEST

/* Random writes and tails against a model that keeps the last cap bytes of everything. */
START_TEST(random_against_model)
{
    uint32_t seed = 12345u + (uint32_t)_i;
    size_t caps[] = {1, 2, 3, 7, 16, 61};
    size_t cap = caps[_i % (int)(sizeof caps / sizeof caps[0])];
    fl_ring_t r;
    ck_assert_int_eq(fl_ring_init(&r, cap), 0);
    char model[256];
    size_t mlen = 0;
    uint64_t total = 0;
    for (int step = 0; step < 2000; step++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % (cap * 2 + 2);
        char chunk[256];
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            chunk[i] = (char)('a' + (seed >> 16) % 26);
        }
        fl_ring_write(&r, chunk, n);
        total += n;
        /* model: append, keep the last cap bytes */
        char both[512];
        memcpy(both, model, mlen);
        memcpy(both + mlen, chunk, n);
        size_t blen = mlen + n;
        size_t keep = blen < cap ? blen : cap;
        memcpy(model, both + blen - keep, keep);
        mlen = keep;

        seed = seed * 1103515245u + 12345u;
        size_t max = (seed >> 16) % (cap + 2);
        size_t want = (max && max < mlen) ? max : mlen;
        size_t len;
        char *got = fl_ring_tail(&r, max, &len);
        ck_assert_uint_eq(len, want);
        ck_assert_msg(memcmp(got, model + mlen - want, want) == 0, "step %d cap %zu max %zu", step,
                      cap, max);
        free(got);
        ck_assert_int_eq(fl_ring_truncated(&r), total > cap);
    }
    fl_ring_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, empty);
    tcase_add_test(tc, fits);
    tcase_add_test(tc, wraparound);
    tcase_add_test(tc, write_larger_than_capacity);
    tcase_add_test(tc, tail_max);
    tcase_add_test(tc, binary_bytes);
    tcase_add_test(tc, truncated_and_reset);
    tcase_add_test(tc, zero_capacity);
    tcase_add_loop_test(tc, random_against_model, 0, 12);
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

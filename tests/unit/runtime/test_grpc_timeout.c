/* Unit tests for services/runtime/grpc_timeout: every unit, the 8-digit limit, saturation,
 * bad input, and formatting that rounds up and round-trips. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_timeout.h"

static int parse(const char *s, uint64_t *ns)
{
    return fl_grpc_timeout_parse(s, strlen(s), ns);
}

START_TEST(every_unit)
{
    uint64_t ns;
    ck_assert_int_eq(parse("2H", &ns), 0);
    ck_assert_uint_eq(ns, 7200000000000ULL);
    ck_assert_int_eq(parse("3M", &ns), 0);
    ck_assert_uint_eq(ns, 180000000000ULL);
    ck_assert_int_eq(parse("1S", &ns), 0);
    ck_assert_uint_eq(ns, 1000000000ULL);
    ck_assert_int_eq(parse("100m", &ns), 0);
    ck_assert_uint_eq(ns, 100000000ULL);
    ck_assert_int_eq(parse("250u", &ns), 0);
    ck_assert_uint_eq(ns, 250000ULL);
    ck_assert_int_eq(parse("7n", &ns), 0);
    ck_assert_uint_eq(ns, 7ULL);
    ck_assert_int_eq(parse("0m", &ns), 0);
    ck_assert_uint_eq(ns, 0);
    ck_assert_int_eq(parse("00000001S", &ns), 0); /* 8 digits, leading zeros allowed */
    ck_assert_uint_eq(ns, 1000000000ULL);
}
END_TEST

START_TEST(largest_values)
{
    uint64_t ns;
    ck_assert_int_eq(parse("99999999n", &ns), 0);
    ck_assert_uint_eq(ns, 99999999ULL);
    ck_assert_int_eq(parse("99999999S", &ns), 0);
    ck_assert_uint_eq(ns, 99999999ULL * 1000000000ULL);
    ck_assert_int_eq(parse("99999999H", &ns), 0); /* beyond 64 bits of ns: saturates */
    ck_assert_uint_eq(ns, UINT64_MAX);
}
END_TEST

START_TEST(bad_values)
{
    const char *bad[] = {"",    "S",   "1",   "100", "123456789S", "1s",   "1h",  "1x",
                         "-1S", "+1S", " 1S", "1S ", "1SS",        "1.5S", "1 S", "１S"};
    uint64_t ns = 42;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(parse(bad[i], &ns) == FL_ESYNTAX, "'%s' parsed", bad[i]);
        ck_assert_uint_eq(ns, 42);
    }
    /* the length bounds the value: no reading past it */
    ck_assert_int_eq(fl_grpc_timeout_parse("5mXYZ", 2, &ns), 0);
    ck_assert_uint_eq(ns, 5000000ULL);
    ck_assert_int_eq(fl_grpc_timeout_parse("5m", 1, &ns), FL_ESYNTAX);
}
END_TEST

static const char *fmt(uint64_t ns)
{
    static char out[FL_GRPC_TIMEOUT_MAX];
    size_t n = fl_grpc_timeout_format(ns, out);
    ck_assert_uint_eq(n, strlen(out));
    return out;
}

START_TEST(formats_in_the_finest_unit_that_fits)
{
    ck_assert_str_eq(fmt(0), "0n");
    ck_assert_str_eq(fmt(1), "1n");
    ck_assert_str_eq(fmt(99999999ULL), "99999999n");
    ck_assert_str_eq(fmt(100000000ULL), "100000u");    /* 100 ms */
    ck_assert_str_eq(fmt(100000001ULL), "100001u");    /* rounded up, never down */
    ck_assert_str_eq(fmt(5000000000ULL), "5000000u");  /* 5 s */
    ck_assert_str_eq(fmt(100000000000ULL), "100000m"); /* 100 s */
    ck_assert_str_eq(fmt(99999999ULL * 1000000000ULL), "99999999S");
    ck_assert_str_eq(fmt(100000000ULL * 1000000000ULL), "1666667M");
    ck_assert_str_eq(fmt(UINT64_MAX), "5124096H");
}
END_TEST

START_TEST(format_round_trips_without_shortening)
{
    const uint64_t samples[] = {0,
                                1,
                                999,
                                1000,
                                123456789,
                                1000000000,
                                1500000000,
                                86400000000000ULL,
                                12345678901234567ULL};
    char out[FL_GRPC_TIMEOUT_MAX];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint64_t back;
        size_t n = fl_grpc_timeout_format(samples[i], out);
        ck_assert_int_eq(fl_grpc_timeout_parse(out, n, &back), 0);
        ck_assert_msg(back >= samples[i], "%s < %llu", out, (unsigned long long)samples[i]);
        /* at most one unit step longer: 1/10^7 of the value, roughly */
        ck_assert_msg(back - samples[i] <= samples[i] / 10000000 + 60000000000ULL, "%s", out);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grpc_timeout");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, every_unit);
    tcase_add_test(tc, largest_values);
    tcase_add_test(tc, bad_values);
    tcase_add_test(tc, formats_in_the_finest_unit_that_fits);
    tcase_add_test(tc, format_round_trips_without_shortening);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

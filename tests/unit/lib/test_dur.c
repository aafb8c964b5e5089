/* Unit tests for lib/dur: the duration strings scenarios write ("250ms", "5s", "1m30s",
 * "1.5s", bare seconds), what is rejected and why, Lua numbers as seconds, and formatting. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/dur.h"
#include "lib/err.h"

#define MS 1000000ull
#define S 1000000000ull

static const struct {
    const char *text;
    uint64_t ns;
} valid[] = {
    {"250ms", 250 * MS},
    {"5s", 5 * S},
    {"1m30s", 90 * S},
    {"1.5s", 1500 * MS},
    {"2", 2 * S},
    {"0.25", 250 * MS},
    {"100us", 100000},
    {"7ns", 7},
    {"1h", 3600 * S},
    {"1h2m3s", 3723 * S},
    {"0s", 0},
    {"0", 0},
    {".5s", 500 * MS},
    {"1m0.5s", 60500 * MS},
    {"1\xc2\xb5s", 1000},
    {"2m", 120 * S},
};

START_TEST(parses_valid)
{
    uint64_t ns = 12345;
    ck_assert_msg(fl_dur_parse(valid[_i].text, &ns) == 0, "'%s' rejected", valid[_i].text);
    ck_assert_msg(ns == valid[_i].ns, "'%s' gave %llu", valid[_i].text, (unsigned long long)ns);
}
END_TEST

static const char *const invalid[] = {
    "", "abc", "5 s", " 5s", "5s ", "s", "5x", "5sec", "1.5.5s", "ms", "5s5", "1e3s", "\xc2\xb5s",
};

START_TEST(rejects_invalid)
{
    uint64_t ns = 777;
    ck_assert_msg(fl_dur_parse(invalid[_i], &ns) == FL_ESYNTAX, "'%s' accepted", invalid[_i]);
    ck_assert_uint_eq(ns, 777); /* untouched on failure */
}
END_TEST

START_TEST(rejects_negative_and_huge)
{
    uint64_t ns;
    ck_assert_int_eq(fl_dur_parse("-1s", &ns), FL_ERANGE);
    ck_assert_int_eq(fl_dur_parse("-0.5", &ns), FL_ERANGE);
    ck_assert_int_ne(fl_dur_parse("--1s", &ns), 0);
    ck_assert_int_eq(fl_dur_parse("100000000h", &ns), FL_ERANGE);
    ck_assert_int_ne(fl_dur_parse(NULL, &ns), 0);
}
END_TEST

START_TEST(from_seconds)
{
    uint64_t ns;
    ck_assert_int_eq(fl_dur_from_seconds(2, &ns), 0);
    ck_assert_uint_eq(ns, 2 * S);
    ck_assert_int_eq(fl_dur_from_seconds(0.25, &ns), 0);
    ck_assert_uint_eq(ns, 250 * MS);
    ck_assert_int_eq(fl_dur_from_seconds(0, &ns), 0);
    ck_assert_uint_eq(ns, 0);
    ck_assert_int_eq(fl_dur_from_seconds(-1, &ns), FL_ERANGE);
    ck_assert_int_eq(fl_dur_from_seconds(0.0 / 0.0, &ns), FL_ERANGE);
    ck_assert_int_eq(fl_dur_from_seconds(1e300, &ns), FL_ERANGE);
}
END_TEST

START_TEST(formats)
{
    char out[32];
    fl_dur_format(250 * MS, out, sizeof out);
    ck_assert_str_eq(out, "250ms");
    fl_dur_format(1500 * MS, out, sizeof out);
    ck_assert_str_eq(out, "1.5s");
    fl_dur_format(90 * S, out, sizeof out);
    ck_assert_str_eq(out, "1m30s");
    fl_dur_format(5 * S, out, sizeof out);
    ck_assert_str_eq(out, "5s");
    fl_dur_format(999, out, sizeof out);
    ck_assert_str_eq(out, "999ns");
    fl_dur_format(1500, out, sizeof out);
    ck_assert_str_eq(out, "1.5us");
    /* what is formatted parses back to the same value */
    uint64_t ns;
    fl_dur_format(123 * S + 400 * MS, out, sizeof out);
    ck_assert_int_eq(fl_dur_parse(out, &ns), 0);
    ck_assert_uint_eq(ns, 123 * S + 400 * MS);
}
END_TEST

static Suite *dur_suite(void)
{
    Suite *s = suite_create("dur");
    TCase *tc = tcase_create("dur");
    tcase_add_loop_test(tc, parses_valid, 0, (int)(sizeof valid / sizeof valid[0]));
    tcase_add_loop_test(tc, rejects_invalid, 0, (int)(sizeof invalid / sizeof invalid[0]));
    tcase_add_test(tc, rejects_negative_and_huge);
    tcase_add_test(tc, from_seconds);
    tcase_add_test(tc, formats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dur_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for lib/log: the service log line format, whole lines, any instance. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

START_TEST(formats_one_whole_line)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    fl_log_line(f, "echo", "users-2", "listening on %s:%d", "127.2.6.2", 10001);
    fl_log_line(f, "pinger", NULL, "no instance given");
    fl_log_line(f, "x", "", "%s", "100% literal");
    fclose(f);
    ck_assert_str_eq(text, "echo[users-2]: listening on 127.2.6.2:10001\n"
                           "pinger[]: no instance given\n"
                           "x[]: 100% literal\n");
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, formats_one_whole_line);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

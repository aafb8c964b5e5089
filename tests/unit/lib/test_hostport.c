/* Unit tests for lib/hostport: "host:port" as command lines write it, and every way it can
 * be wrong. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/hostport.h"

START_TEST(parses_ipv4_names_and_brackets)
{
    char host[64];
    int port = -1;
    ck_assert_int_eq(fl_hostport_parse("127.0.0.1:8080", 0, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 8080);
    ck_assert_int_eq(fl_hostport_parse("localhost:1", 0, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "localhost");
    ck_assert_int_eq(port, 1);
    ck_assert_int_eq(fl_hostport_parse("[::1]:65535", 0, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 65535);
    ck_assert_int_eq(fl_hostport_parse("127.0.0.1:0", 1, host, sizeof host, &port), 0);
    ck_assert_int_eq(port, 0);
}
END_TEST

START_TEST(rejects_bad_input)
{
    static const struct {
        const char *s;
        int allow_zero, rc;
    } bad[] = {
        {"127.0.0.1", 0, FL_ESYNTAX}, {":80", 0, FL_ESYNTAX},
        {"host:", 0, FL_ESYNTAX},     {"host:8o", 0, FL_ESYNTAX},
        {"host:-1", 0, FL_ESYNTAX},   {"::1:80", 0, FL_ESYNTAX},
        {"[::1]80", 0, FL_ESYNTAX},   {"[::1:80", 0, FL_ESYNTAX},
        {"[]:80", 0, FL_ESYNTAX},     {"host:123456", 0, FL_ESYNTAX},
        {"host:65536", 0, FL_ERANGE}, {"host:0", 0, FL_ERANGE},
        {"", 0, FL_ESYNTAX},          {"host: 80", 0, FL_ESYNTAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[64] = "untouched";
        int port = -7;
        int rc = fl_hostport_parse(bad[i].s, bad[i].allow_zero, host, sizeof host, &port);
        ck_assert_msg(rc == bad[i].rc, "'%s': got %d, want %d", bad[i].s, rc, bad[i].rc);
        ck_assert_int_eq(port, -7); /* nothing written on failure */
        ck_assert_str_eq(host, "untouched");
    }
}
END_TEST

START_TEST(host_too_long_for_the_buffer)
{
    char host[8];
    int port;
    ck_assert_int_eq(fl_hostport_parse("verylonghost:80", 0, host, sizeof host, &port), FL_ESYNTAX);
    ck_assert_int_eq(fl_hostport_parse("short:80", 0, host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "short");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostport");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parses_ipv4_names_and_brackets);
    tcase_add_test(tc, rejects_bad_input);
    tcase_add_test(tc, host_too_long_for_the_buffer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

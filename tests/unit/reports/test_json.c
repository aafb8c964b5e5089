/* Unit tests for reports/json.c. The report of rich.h's run is read back by Python's json and
 * validated against docs/report.schema.json with jsonschema (tests/unit/reports/json_check.py,
 * run by Debian's /usr/bin/python3), which also checks what the run must read back as; the
 * fixture's hostile bytes and a soak must give valid JSON too. Negative controls show the
 * schema and the content checks can fail. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "fixture.h"
#include "reports/report.h"
#include "rich.h"
#include "tools.h"

static int json_check(const char *path, const char *mode, int quiet)
{
    char script[4096], schema[4096];
    snprintf(script, sizeof script, "%s/tests/unit/reports/json_check.py", source_dir());
    snprintf(schema, sizeof schema, "%s/docs/report.schema.json", source_dir());
    char *argv[] = {"/usr/bin/python3", script, schema, (char *)path, (char *)mode, NULL};
    return run_tool(argv, quiet);
}

static char *render(const fl_run_result_t *run)
{
    fl_buf_t b = FL_BUF_INIT;
    ck_assert_int_eq(fl_json_write_buf(run, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    return b.data;
}

START_TEST(rich_run_reads_back)
{
    fl_run_result_t run;
    tmp_t t;
    rx_build(&run);
    tmp_open(&t, "report.json");
    ck_assert_int_eq(fl_json_write(&run, t.path), 0);
    ck_assert_int_eq(json_check(t.path, "rich", 0), 0);
    tmp_close(&t);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(fixture_and_soak_are_valid)
{
    fl_run_result_t run;
    tmp_t t;
    tmp_open(&t, "report.json");
    fx_build(&run);
    ck_assert_int_eq(fl_json_write(&run, t.path), 0);
    ck_assert_int_eq(json_check(t.path, "schema", 0), 0);
    fl_run_result_free(&run);
    rx_build_soak(&run);
    ck_assert_int_eq(fl_json_write(&run, t.path), 0);
    ck_assert_int_eq(json_check(t.path, "schema", 0), 0);
    fl_run_result_free(&run);
    tmp_close(&t);
}
END_TEST

START_TEST(checks_can_fail)
{
    fl_run_result_t run;
    tmp_t t;
    rx_build(&run);
    char *doc = render(&run);
    tmp_open(&t, "broken.json");

    /* the schema: a verdict it does not know */
    char *v = strstr(doc, "\"verdict\":\"fail\"");
    ck_assert_ptr_nonnull(v);
    memcpy(v, "\"verdict\":\"FAIL\"", 16);
    write_file(t.path, doc, strlen(doc));
    ck_assert_int_ne(json_check(t.path, "schema", 1), 0);
    memcpy(v, "\"verdict\":\"fail\"", 16);

    /* the content: a fault interval ending elsewhere */
    char *off = strstr(doc, "\"off\":4.000000");
    ck_assert_ptr_nonnull(off);
    off[7] = '5';
    write_file(t.path, doc, strlen(doc));
    ck_assert_int_eq(json_check(t.path, "schema", 1), 0);
    ck_assert_int_ne(json_check(t.path, "rich", 1), 0);

    /* not JSON at all: a raw control byte in a string */
    write_file(t.path, "{\"a\":\"\x01\"}", 10);
    ck_assert_int_ne(json_check(t.path, "schema", 1), 0);

    tmp_close(&t);
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

START_TEST(document_details)
{
    fl_run_result_t run;
    rx_build(&run);
    run.shard = 2;
    run.nshards = 3;
    char *doc = render(&run);
    ck_assert(strncmp(doc, "{\"format\":\"faultline-report\",\"version\":1,", 41) == 0);
    ck_assert_ptr_nonnull(strstr(doc, "\"shard\":{\"index\":2,\"count\":3}"));
    ck_assert_ptr_nonnull(strstr(doc, "\"state\":\"paused\""));
    ck_assert_ptr_nonnull(strstr(doc, "\"fault\":{\"id\":1,\"phase\":\"on\",\"counts\":null}"));
    ck_assert_ptr_nonnull(strstr(doc, "\\nbad byte \\\\xff here"));
    ck_assert_ptr_nonnull(strstr(doc, "ansi \\u001b[31mred"));
    free(doc);
    fl_run_result_free(&run);
    errno = 0;
    rx_build(&run);
    ck_assert_int_eq(fl_json_write(&run, "/nonexistent-fl-dir/r.json"), FL_EIO);
    ck_assert_int_eq(errno, ENOENT);
    fl_run_result_free(&run);
}
END_TEST

/* --mutants: one entry per mutant, valid against the schema (hostile bytes included); null
 * without --mutants; each scenario's catches. */
START_TEST(mutants_entries)
{
    fl_run_result_t run;
    tmp_t t;
    fx_build(&run);
    char *doc = render(&run);
    ck_assert_ptr_nonnull(strstr(doc, "\"mutants\":null}"));
    ck_assert_ptr_nonnull(strstr(doc, "\"catches\":[]"));
    free(doc);
    fx_add_mutants(&run);
    char **c = calloc(3, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c[0] = strdup("no-retry");
    c[1] = strdup("sticky-lb");
    run.scenarios[0].catches = c;
    tmp_open(&t, "mutants.json");
    ck_assert_int_eq(fl_json_write(&run, t.path), 0);
    ck_assert_int_eq(json_check(t.path, "schema", 0), 0);
    tmp_close(&t);
    doc = render(&run);
    ck_assert_ptr_nonnull(strstr(doc, "\"catches\":[\"no-retry\",\"sticky-lb\"]"));
    ck_assert_ptr_nonnull(strstr(doc, "{\"name\":\"no-retry\",\"caught\":true,\"caught_by\":{"));
    ck_assert_ptr_nonnull(strstr(doc, "\"name\":\"sticky-lb\",\"caught\":true,"));
    ck_assert_ptr_nonnull(strstr(doc, "\"by_error\":true,\"false_claims\":0"));
    ck_assert_ptr_nonnull(strstr(doc, "{\"name\":\"drop-traceparent\",\"caught\":false,"
                                      "\"caught_by\":null,\"by_error\":false,\"false_claims\":0"));
    ck_assert_ptr_nonnull(strstr(doc, "\"by_error\":false,\"false_claims\":1"));
    free(doc);
    fl_run_result_free(&run);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("document");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, document_details);
    tcase_add_test(tc, rich_run_reads_back);
    tcase_add_test(tc, fixture_and_soak_are_valid);
    tcase_add_test(tc, checks_can_fail);
    tcase_add_test(tc, mutants_entries);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for harness/checks: the balance rule (counts against the even share, the
 * tolerance at its edge, nothing to compare) and the trace judge (connected traces, orphans
 * naming their missing parent, two roots, a trace that starts with a CLIENT span, an entry
 * point continuing an untraced caller, and calls counted by their attempts). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/checks.h"

/* ------------------------------------------------------------ balance ---- */

START_TEST(balance_even_counts)
{
    uint64_t c[] = {20, 20, 20};
    fl_balance_t b;
    fl_balance_judge(c, 3, 0.2, &b);
    ck_assert_int_eq(b.ok, 1);
    ck_assert_uint_eq(b.total, 60);
    ck_assert_double_eq_tol(b.share, 20, 1e-9);
    ck_assert_double_eq_tol(b.max_dev, 0, 1e-9);
}
END_TEST

START_TEST(balance_names_the_worst_instance)
{
    uint64_t c[] = {30, 40, 20}; /* share 30: deviations 0, 1/3, 1/3 → the first of them */
    fl_balance_t b;
    fl_balance_judge(c, 3, 0.2, &b);
    ck_assert_int_eq(b.ok, 0);
    ck_assert_double_eq_tol(b.max_dev, 1.0 / 3, 1e-9);
    ck_assert_uint_eq(b.worst, 1);
    fl_balance_judge(c, 3, 0.34, &b);
    ck_assert_int_eq(b.ok, 1);
}
END_TEST

START_TEST(balance_tolerance_is_inclusive)
{
    uint64_t c[] = {12, 8}; /* share 10: 20% each way */
    fl_balance_t b;
    fl_balance_judge(c, 2, 0.2, &b);
    ck_assert_int_eq(b.ok, 1);
    ck_assert_double_eq_tol(b.max_dev, 0.2, 1e-9);
    fl_balance_judge(c, 2, 0.19, &b);
    ck_assert_int_eq(b.ok, 0);
}
END_TEST

START_TEST(balance_sticky_is_twice_the_share_off)
{
    uint64_t c[] = {0, 0, 63};
    fl_balance_t b;
    fl_balance_judge(c, 3, 0.2, &b);
    ck_assert_int_eq(b.ok, 0);
    ck_assert_double_eq_tol(b.max_dev, 2, 1e-9);
    ck_assert_uint_eq(b.worst, 2);
}
END_TEST

START_TEST(balance_nothing_to_compare_fails)
{
    uint64_t c[] = {0, 0};
    fl_balance_t b;
    fl_balance_judge(c, 2, 10, &b);
    ck_assert_int_eq(b.ok, 0);
    ck_assert_uint_eq(b.total, 0);
    fl_balance_judge(NULL, 0, 10, &b);
    ck_assert_int_eq(b.ok, 0);
    uint64_t one[] = {5};
    fl_balance_judge(one, 1, 0, &b);
    ck_assert_int_eq(b.ok, 1);
}
END_TEST

/* ------------------------------------------------------------ traces ---- */

#define MAXS 16

typedef struct {
    fl_span_t s[MAXS];
    const fl_span_t *p[MAXS];
    fl_attr_t resend[MAXS];
    char value[MAXS][8];
    size_t n;
} trace_t;

/* Adds a span: id and parent as short names ("a", "" for none), padded to hex ids. */
static fl_span_t *add(trace_t *t, const char *id, const char *parent, const char *service,
                      fl_span_kind_t kind, const char *name, int resend)
{
    ck_assert_uint_lt(t->n, MAXS);
    fl_span_t *s = &t->s[t->n];
    memset(s, 0, sizeof *s);
    snprintf(s->trace_id, sizeof s->trace_id, "%032x", 7);
    snprintf(s->span_id, sizeof s->span_id, "%016x", (unsigned)strtoul(id, NULL, 16));
    if (*parent)
        snprintf(s->parent_id, sizeof s->parent_id, "%016x", (unsigned)strtoul(parent, NULL, 16));
    s->service = (char *)service;
    s->instance = (char *)"x-1";
    s->name = (char *)name;
    s->kind = kind;
    s->start_ns = t->n * 1000;
    s->status_message = (char *)"";
    if (resend) {
        snprintf(t->value[t->n], sizeof t->value[0], "%d", resend);
        t->resend[t->n].key = (char *)"http.request.resend_count";
        t->resend[t->n].value = t->value[t->n];
        s->attrs = &t->resend[t->n];
        s->nattrs = 1;
    }
    t->p[t->n] = s;
    t->n++;
    return s;
}

/* gateway SERVER a → CLIENT b → users SERVER c */
static void request(trace_t *t)
{
    memset(t, 0, sizeof *t);
    add(t, "a", "", "gateway", FL_SPAN_SERVER, "POST /users", 0);
    add(t, "b", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/CreateUser", 0);
    add(t, "c", "b", "users", FL_SPAN_SERVER, "shop.Users/CreateUser", 0);
}

START_TEST(trace_connected)
{
    trace_t t;
    request(&t);
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 3, &v);
    ck_assert_msg(v.ok, "%s", v.problem);
    ck_assert_int_eq(v.attempts, 1);
    /* any order */
    const fl_span_t *rev[] = {t.p[2], t.p[0], t.p[1]};
    fl_trace_judge(rev, 3, 1, 3, &v);
    ck_assert_msg(v.ok, "%s", v.problem);
}
END_TEST

START_TEST(trace_orphan_names_its_missing_parent)
{
    trace_t t;
    request(&t);
    snprintf(t.s[2].parent_id, sizeof t.s[2].parent_id, "%016x", 0xdd);
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_msg(strstr(v.problem, "span 000000000000000c (users server 'shop.Users/CreateUser' "
                                    "on x-1) has parent 00000000000000dd, which is not in the "
                                    "trace (3 spans, 2 roots)") != NULL,
                  "%s", v.problem);
    /* not judged without complete */
    fl_trace_judge(t.p, t.n, 0, 0, &v);
    ck_assert_int_eq(v.ok, 1);
}
END_TEST

START_TEST(trace_two_roots)
{
    trace_t t;
    request(&t);
    t.s[2].parent_id[0] = '\0';
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_msg(strstr(v.problem, "2 roots: span 000000000000000a") != NULL, "%s", v.problem);
    ck_assert_msg(strstr(v.problem, "and span 000000000000000c") != NULL, "%s", v.problem);
}
END_TEST

START_TEST(trace_starting_with_a_client_span)
{
    /* the gateway's call made without its context: a trace of its own */
    trace_t t;
    memset(&t, 0, sizeof t);
    add(&t, "b", "", "gateway", FL_SPAN_CLIENT, "shop.Users/CreateUser", 0);
    add(&t, "c", "b", "users", FL_SPAN_SERVER, "shop.Users/CreateUser", 0);
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_msg(strstr(v.problem, "it starts with span 000000000000000b (gateway client") &&
                      strstr(v.problem, "without its caller's trace context"),
                  "%s", v.problem);
}
END_TEST

START_TEST(trace_entry_may_continue_an_untraced_caller)
{
    trace_t t;
    request(&t);
    snprintf(t.s[0].parent_id, sizeof t.s[0].parent_id, "%016x", 0xcafe); /* curl's span */
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 0, &v);
    ck_assert_msg(v.ok, "%s", v.problem);
    /* but not a CLIENT span whose parent is missing */
    trace_t u;
    memset(&u, 0, sizeof u);
    add(&u, "b", "99", "gateway", FL_SPAN_CLIENT, "shop.Users/CreateUser", 0);
    fl_trace_judge(u.p, u.n, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
}
END_TEST

START_TEST(trace_attempts_counted_per_call)
{
    trace_t t;
    memset(&t, 0, sizeof t);
    add(&t, "a", "", "gateway", FL_SPAN_SERVER, "POST /orders", 0);
    /* two calls of GetUser (the second retried twice) and one of CreateOrder */
    add(&t, "b", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/GetUser", 0);
    add(&t, "c", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/GetUser", 0);
    add(&t, "d", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/GetUser", 1);
    add(&t, "e", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/GetUser", 2);
    add(&t, "f", "a", "gateway", FL_SPAN_CLIENT, "shop.Orders/CreateOrder", 0);
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 3, &v);
    ck_assert_msg(v.ok, "%s", v.problem);
    ck_assert_int_eq(v.attempts, 3);
    fl_trace_judge(t.p, t.n, 1, 2, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_msg(strstr(v.problem, "a call to 'shop.Users/GetUser' from x-1 made 3 attempts (at "
                                    "most 2 allowed): spans 000000000000000c 000000000000000d "
                                    "000000000000000e") != NULL,
                  "%s", v.problem);
}
END_TEST

START_TEST(trace_attempts_from_the_resend_count_when_spans_are_missing)
{
    /* only the last attempt's span arrived: its resend count still says 5 attempts */
    trace_t t;
    memset(&t, 0, sizeof t);
    add(&t, "a", "", "gateway", FL_SPAN_SERVER, "POST /users", 0);
    add(&t, "b", "a", "gateway", FL_SPAN_CLIENT, "shop.Users/CreateUser", 4);
    fl_trace_verdict_t v;
    fl_trace_judge(t.p, t.n, 1, 3, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_int_eq(v.attempts, 5);
    ck_assert_int_eq(fl_span_resend(&t.s[1]), 4);
    t.s[1].nattrs = 0;
    t.s[1].attempt = 2; /* an attempt attribute, counted from 1 */
    ck_assert_int_eq(fl_span_resend(&t.s[1]), 1);
}
END_TEST

START_TEST(trace_without_spans_or_with_a_cycle)
{
    fl_trace_verdict_t v;
    fl_trace_judge(NULL, 0, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
    trace_t t;
    memset(&t, 0, sizeof t);
    add(&t, "a", "b", "gateway", FL_SPAN_SERVER, "x", 0);
    add(&t, "b", "a", "gateway", FL_SPAN_CLIENT, "y", 0);
    fl_trace_judge(t.p, t.n, 1, 0, &v);
    ck_assert_int_eq(v.ok, 0);
    ck_assert_msg(strstr(v.problem, "cycle") != NULL, "%s", v.problem);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checks");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, balance_even_counts);
    tcase_add_test(tc, balance_names_the_worst_instance);
    tcase_add_test(tc, balance_tolerance_is_inclusive);
    tcase_add_test(tc, balance_sticky_is_twice_the_share_off);
    tcase_add_test(tc, balance_nothing_to_compare_fails);
    tcase_add_test(tc, trace_connected);
    tcase_add_test(tc, trace_orphan_names_its_missing_parent);
    tcase_add_test(tc, trace_two_roots);
    tcase_add_test(tc, trace_starting_with_a_client_span);
    tcase_add_test(tc, trace_entry_may_continue_an_untraced_caller);
    tcase_add_test(tc, trace_attempts_counted_per_call);
    tcase_add_test(tc, trace_attempts_from_the_resend_count_when_spans_are_missing);
    tcase_add_test(tc, trace_without_spans_or_with_a_cycle);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for services/runtime/balancer: round_robin order and skipping of failing
 * backends, p2c's preference for the less loaded of two distinct draws and its spread, the
 * all-failing fallback, and the sticky-lb bug switch. */
#include <check.h>

#include "services/runtime/balancer.h"

START_TEST(policy_names)
{
    ck_assert_int_eq(fl_lb_policy_parse("round_robin"), FL_LB_ROUND_ROBIN);
    ck_assert_int_eq(fl_lb_policy_parse("p2c"), FL_LB_P2C);
    ck_assert_int_eq(fl_lb_policy_parse("least_request"), FL_LB_P2C);
    ck_assert_int_eq(fl_lb_policy_parse("random"), -1);
    ck_assert_str_eq(fl_lb_policy_name(FL_LB_P2C), "p2c");
}
END_TEST

START_TEST(round_robin_rotates_and_skips_failing)
{
    fl_lb_t lb;
    fl_lb_init(&lb, FL_LB_ROUND_ROBIN, 1, 0);
    fl_lb_view_t v[3] = {{1, 0}, {1, 0}, {1, 0}};
    size_t want[] = {0, 1, 2, 0, 1, 2};
    for (size_t i = 0; i < 6; i++)
        ck_assert_uint_eq(fl_lb_pick_index(&lb, v, 3), want[i]);
    v[1].usable = 0;
    size_t want2[] = {0, 2, 0, 2};
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(fl_lb_pick_index(&lb, v, 3), want2[i]);
    v[0].usable = v[2].usable = 0; /* every one failing: still rotates over all */
    int seen[3] = {0};
    for (size_t i = 0; i < 6; i++)
        seen[fl_lb_pick_index(&lb, v, 3)]++;
    ck_assert(seen[0] == 2 && seen[1] == 2 && seen[2] == 2);
}
END_TEST

START_TEST(p2c_prefers_the_less_loaded)
{
    fl_lb_t lb;
    fl_lb_init(&lb, FL_LB_P2C, 42, 0);
    fl_lb_view_t two[2] = {{1, 5}, {1, 0}};
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(fl_lb_pick_index(&lb, two, 2), 1);
    /* three backends, one idle: it wins whenever it is drawn, i.e. 2/3 of the time */
    fl_lb_view_t three[3] = {{1, 0}, {1, 9}, {1, 9}};
    int n0 = 0;
    for (int i = 0; i < 3000; i++)
        n0 += fl_lb_pick_index(&lb, three, 3) == 0;
    ck_assert_msg(n0 > 1850 && n0 < 2150, "idle backend picked %d of 3000", n0);
    /* equal loads spread evenly, and a failing backend is never picked */
    fl_lb_view_t four[4] = {{1, 1}, {0, 0}, {1, 1}, {1, 1}};
    int seen[4] = {0};
    for (int i = 0; i < 3000; i++)
        seen[fl_lb_pick_index(&lb, four, 4)]++;
    ck_assert_int_eq(seen[1], 0);
    for (int i = 0; i < 4; i += 1 + (i == 0))
        ck_assert_msg(seen[i] > 850 && seen[i] < 1150, "backend %d picked %d of 3000", i, seen[i]);
}
END_TEST

START_TEST(sticky_bug_always_picks_the_first)
{
    fl_lb_t lb;
    fl_lb_init(&lb, FL_LB_ROUND_ROBIN, 1, 1);
    fl_lb_view_t v[3] = {{0, 0}, {1, 7}, {1, 0}};
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(fl_lb_pick_index(&lb, v, 3), 1);
    fl_lb_init(&lb, FL_LB_P2C, 1, 1);
    for (int i = 0; i < 10; i++)
        ck_assert_uint_eq(fl_lb_pick_index(&lb, v, 3), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("balancer");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, policy_names);
    tcase_add_test(tc, round_robin_rotates_and_skips_failing);
    tcase_add_test(tc, p2c_prefers_the_less_loaded);
    tcase_add_test(tc, sticky_bug_always_picks_the_first);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

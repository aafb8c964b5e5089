/* Unit tests for services/runtime/retry: the service config's retry policy and throttle (and
 * every way they can be wrong), A6's backoff, pushback, the throttle's tokens, and the retry
 * decision at its edges (attempts, codes, throttle, pushback, deadline). */
#include <check.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_status.h"
#include "services/runtime/retry.h"

static const char good[] =
    "{\"methodConfig\": [{\"name\": [{\"service\": \"users.Users\"}],"
    " \"retryPolicy\": {\"maxAttempts\": 7, \"initialBackoff\": \"0.1s\", \"maxBackoff\": \"1.5s\","
    " \"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\", 4]}}],"
    " \"retryThrottling\": {\"maxTokens\": 10, \"tokenRatio\": 0.1239}}";

START_TEST(parses_a_service_config)
{
    fl_retry_policy_t p;
    fl_retry_throttle_t t;
    char err[200] = "";
    ck_assert_int_eq(fl_retry_config_parse(good, &p, &t, err, sizeof err), 0);
    ck_assert_int_eq(p.max_attempts, 5); /* 7 counts as 5 */
    ck_assert_uint_eq(p.initial_backoff_ns, 100000000ull);
    ck_assert_uint_eq(p.max_backoff_ns, 1500000000ull);
    ck_assert(p.multiplier == 2);
    ck_assert_uint_eq(p.retryable, (1u << FL_GRPC_UNAVAILABLE) | (1u << FL_GRPC_DEADLINE_EXCEEDED));
    ck_assert_int_eq(t.enabled, 1);
    ck_assert(t.tokens == 10 && t.max_tokens == 10);
    ck_assert(t.ratio > 0.1229 && t.ratio < 0.1231); /* three decimals kept */
}
END_TEST

START_TEST(no_policy_means_no_retries)
{
    fl_retry_policy_t p;
    fl_retry_throttle_t t;
    ck_assert_int_eq(fl_retry_config_parse("{\"methodConfig\": [{\"name\": []}]}", &p, &t, NULL, 0),
                     0);
    ck_assert_int_eq(p.max_attempts, 1);
    ck_assert_int_eq(t.enabled, 0);
    uint64_t d;
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, NULL, 0, 0, 0.5, &d),
                     FL_RETRY_NO);
}
END_TEST

static void refused(const char *json, int rc, const char *needle)
{
    fl_retry_policy_t p;
    fl_retry_throttle_t t;
    char err[200] = "";
    ck_assert_int_eq(fl_retry_config_parse(json, &p, &t, err, sizeof err), rc);
    ck_assert_msg(strstr(err, needle), "'%s' lacks '%s'", err, needle);
    ck_assert_int_eq(p.max_attempts, 1); /* nothing half-parsed stays */
    ck_assert_int_eq(t.enabled, 0);
}

#define RP(body) "{\"methodConfig\": [{\"retryPolicy\": {" body "}}]}"
#define OKREST                                                                                     \
    "\"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", \"backoffMultiplier\": 2, "               \
    "\"retryableStatusCodes\": [\"UNAVAILABLE\"]"

START_TEST(refuses_bad_configs)
{
    refused("{not json", FL_ESYNTAX, "service config:");
    refused("[1]", FL_EINVAL, "must be a JSON object");
    refused(RP("\"maxAttempts\": 1, " OKREST), FL_EINVAL, "maxAttempts must be an integer >= 2");
    refused(RP("\"maxAttempts\": \"3\", " OKREST), FL_EINVAL, "maxAttempts");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
            FL_EINVAL, "initialBackoff must be a positive duration");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"0s\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
            FL_EINVAL, "initialBackoff");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"-2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [14]"),
            FL_EINVAL, "maxBackoff");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 0, \"retryableStatusCodes\": [14]"),
            FL_EINVAL, "backoffMultiplier");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": []"),
            FL_EINVAL, "non-empty");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"UNAVAILABLE\", \"NOPE\"]"),
            FL_EINVAL, "retryableStatusCodes[1]");
    refused(RP("\"maxAttempts\": 3, \"initialBackoff\": \"1s\", \"maxBackoff\": \"2s\", "
               "\"backoffMultiplier\": 2, \"retryableStatusCodes\": [\"OK\"]"),
            FL_EINVAL, "retryableStatusCodes[0]");
    refused("{\"retryThrottling\": {\"maxTokens\": 0, \"tokenRatio\": 1}}", FL_EINVAL, "maxTokens");
    refused("{\"retryThrottling\": {\"maxTokens\": 1001, \"tokenRatio\": 1}}", FL_EINVAL,
            "maxTokens");
    refused("{\"retryThrottling\": {\"maxTokens\": 10}}", FL_EINVAL, "tokenRatio");
}
END_TEST

START_TEST(backoff_grows_and_is_capped)
{
    fl_retry_policy_t p = {3, 100000000ull, 300000000ull, 2.0, 1u << 14};
    ck_assert_uint_eq(fl_retry_backoff_ns(&p, 1, 0.5), 50000000ull);  /* 0.5 * 100ms */
    ck_assert_uint_eq(fl_retry_backoff_ns(&p, 2, 0.5), 100000000ull); /* 0.5 * 200ms */
    ck_assert_uint_eq(fl_retry_backoff_ns(&p, 3, 0.5), 150000000ull); /* capped at 300ms */
    ck_assert_uint_eq(fl_retry_backoff_ns(&p, 9, 0.999), 299700000ull);
    ck_assert_uint_eq(fl_retry_backoff_ns(&p, 1, 0), 0);
}
END_TEST

START_TEST(pushback_values)
{
    uint64_t ms = 7;
    ck_assert_int_eq(fl_retry_pushback(NULL, &ms), -1);
    ck_assert_int_eq(fl_retry_pushback("250", &ms), 1);
    ck_assert_uint_eq(ms, 250);
    ck_assert_int_eq(fl_retry_pushback("0", &ms), 1);
    ck_assert_uint_eq(ms, 0);
    ck_assert_int_eq(fl_retry_pushback("-1", &ms), 0);
    ck_assert_int_eq(fl_retry_pushback("", &ms), 0);
    ck_assert_int_eq(fl_retry_pushback("12ms", &ms), 0);
    ck_assert_int_eq(fl_retry_pushback("99999999999999999999999", &ms), 0);
}
END_TEST

START_TEST(throttle_tokens)
{
    fl_retry_policy_t p = {3, 1000000, 1000000, 1, 1u << FL_GRPC_UNAVAILABLE};
    fl_retry_throttle_t t = {1, 10, 10, 0.5};
    for (int i = 0; i < 4; i++)
        fl_retry_throttle_record(&t, &p, FL_GRPC_UNAVAILABLE);
    ck_assert(t.tokens == 6);
    ck_assert(fl_retry_throttle_allows(&t));
    fl_retry_throttle_record(&t, &p, FL_GRPC_INTERNAL); /* not retryable: no change */
    ck_assert(t.tokens == 6);
    fl_retry_throttle_record(&t, &p, FL_GRPC_UNAVAILABLE);
    ck_assert(t.tokens == 5);
    ck_assert(!fl_retry_throttle_allows(&t)); /* 5 is not above half of 10 */
    uint64_t d;
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, NULL, 0, 0, 0.5, &d),
                     FL_RETRY_THROTTLED);
    fl_retry_throttle_record(&t, &p, FL_GRPC_OK);
    ck_assert(t.tokens == 5.5);
    ck_assert(fl_retry_throttle_allows(&t));
    for (int i = 0; i < 50; i++)
        fl_retry_throttle_record(&t, &p, FL_GRPC_OK);
    ck_assert(t.tokens == 10); /* never above max */
    for (int i = 0; i < 50; i++)
        fl_retry_throttle_record(&t, &p, FL_GRPC_UNAVAILABLE);
    ck_assert(t.tokens == 0); /* never below 0 */
}
END_TEST

START_TEST(decisions)
{
    fl_retry_policy_t p = {3, 100000000ull, 1000000000ull, 2, 1u << FL_GRPC_UNAVAILABLE};
    fl_retry_throttle_t t = {0};
    uint64_t d = 0, now = 1000000000ull;
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_OK, NULL, now, 0, 0.5, &d), FL_RETRY_NO);
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_INTERNAL, NULL, now, 0, 0.5, &d),
                     FL_RETRY_NO);
    ck_assert_int_eq(fl_retry_decide(&p, &t, 3, FL_GRPC_UNAVAILABLE, NULL, now, 0, 0.5, &d),
                     FL_RETRY_NO); /* the third attempt was the last */
    ck_assert_int_eq(fl_retry_decide(&p, &t, 2, FL_GRPC_UNAVAILABLE, NULL, now, 0, 0.5, &d),
                     FL_RETRY_YES);
    ck_assert_uint_eq(d, 100000000ull); /* 0.5 * 200ms */
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, "-5", now, 0, 0.5, &d),
                     FL_RETRY_PUSHBACK);
    ck_assert_int_eq(fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, "30", now, 0, 0.5, &d),
                     FL_RETRY_YES);
    ck_assert_uint_eq(d, 30000000ull);
    /* deadline: a retry that would start at or past it is not made */
    ck_assert_int_eq(
        fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, NULL, now, now + 50000000ull, 0.5, &d),
        FL_RETRY_DEADLINE);
    ck_assert_int_eq(
        fl_retry_decide(&p, &t, 1, FL_GRPC_UNAVAILABLE, NULL, now, now + 50000001ull, 0.5, &d),
        FL_RETRY_YES);
    ck_assert_str_eq(fl_retry_verdict_name(FL_RETRY_DEADLINE), "deadline");
    ck_assert_str_eq(fl_retry_verdict_name(FL_RETRY_COMMITTED), "committed");
    ck_assert_str_eq(fl_retry_verdict_name(FL_RETRY_NVERDICTS), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("retry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parses_a_service_config);
    tcase_add_test(tc, no_policy_means_no_retries);
    tcase_add_test(tc, refuses_bad_configs);
    tcase_add_test(tc, backoff_grows_and_is_capped);
    tcase_add_test(tc, pushback_values);
    tcase_add_test(tc, throttle_tokens);
    tcase_add_test(tc, decisions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

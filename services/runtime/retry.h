/* Client retries as gRFC A6 specifies them, as pure functions: the retry policy and the retry
 * throttle of a gRPC service config, the backoff before each retry, server pushback
 * (grpc-retry-pushback-ms), and the decision whether a failed attempt is retried at all —
 * never past the call's deadline. The balanced client (rpc.h) applies them; nothing here
 * does I/O or reads a clock.
 *
 * The service config, as JSON (the GRPC_SERVICE_CONFIG environment variable of our services):
 *   { "methodConfig": [ { "name": [ { "service": "users.Users" } ],
 *                         "retryPolicy": { "maxAttempts": 3, "initialBackoff": "0.1s",
 *                                          "maxBackoff": "1s", "backoffMultiplier": 2,
 *                                          "retryableStatusCodes": [ "UNAVAILABLE" ] } } ],
 *     "retryThrottling": { "maxTokens": 10, "tokenRatio": 0.1 } }
 * The first methodConfig with a retryPolicy applies. As A6 says: maxAttempts must be at
 * least 2 and values above 5 count as 5; the backoffs must be positive durations ("0.1s");
 * the multiplier positive; the codes non-empty (names or numbers); maxTokens in (0, 1000],
 * tokenRatio positive (three decimals kept). */
#ifndef FL_RETRY_H
#define FL_RETRY_H

#include <stddef.h>
#include <stdint.h>

#define FL_RETRY_MAX_ATTEMPTS 5

typedef struct {
    int max_attempts; /* 1: no retries */
    uint64_t initial_backoff_ns, max_backoff_ns;
    double multiplier;
    uint32_t retryable; /* bit c set: status code c is retried */
} fl_retry_policy_t;

typedef struct {
    int enabled;
    double tokens, max_tokens, ratio;
} fl_retry_throttle_t;

/* No retries, no throttle. */
void fl_retry_policy_none(fl_retry_policy_t *p, fl_retry_throttle_t *t);

/* Parses a service config. Returns 0 (filling p and t; a config without a retry policy or
 * throttle leaves them off), or FL_ESYNTAX / FL_EINVAL with a message naming the bad field in
 * err. */
int fl_retry_config_parse(const char *json, fl_retry_policy_t *p, fl_retry_throttle_t *t, char *err,
                          size_t errlen);

/* The delay before retry number n (1 for the first retry): random(0, min(initial *
 * multiplier^(n-1), max)), u being a uniform draw in [0, 1). */
uint64_t fl_retry_backoff_ns(const fl_retry_policy_t *p, int n, double u);

/* Server pushback from a grpc-retry-pushback-ms value: 1 and *ms for a non-negative decimal,
 * 0 (do not retry) for anything else. NULL (no pushback): -1. */
int fl_retry_pushback(const char *value, uint64_t *ms);

/* Records an attempt's outcome in the throttle: a code the policy retries counts as a
 * failure (tokens - 1), OK as a success (tokens + ratio, at most max). */
void fl_retry_throttle_record(fl_retry_throttle_t *t, const fl_retry_policy_t *p, int code);
/* Whether the throttle allows retries now (tokens above half of max). */
int fl_retry_throttle_allows(const fl_retry_throttle_t *t);

typedef enum {
    FL_RETRY_NO,        /* the code is not retryable, or the policy has no attempts left */
    FL_RETRY_THROTTLED, /* the throttle forbids retries now */
    FL_RETRY_PUSHBACK,  /* the server said not to */
    FL_RETRY_DEADLINE,  /* the retry would start at or past the deadline */
    FL_RETRY_YES,       /* retry after *delay_ns */
    FL_RETRY_COMMITTED, /* the server had sent response headers: the call was committed
                           (gRFC A6); rpc.c decides this one, fl_retry_decide never does */
} fl_retry_verdict_t;
#define FL_RETRY_NVERDICTS 6

/* Decides about attempt number `attempts` (1-based, the one that just failed with code):
 * pushback is the answer's grpc-retry-pushback-ms (or NULL), now_ns and deadline_ns (0: none)
 * on any one clock, u a uniform draw in [0, 1). Records nothing in the throttle. */
fl_retry_verdict_t fl_retry_decide(const fl_retry_policy_t *p, const fl_retry_throttle_t *t,
                                   int attempts, int code, const char *pushback, uint64_t now_ns,
                                   uint64_t deadline_ns, double u, uint64_t *delay_ns);
const char *fl_retry_verdict_name(fl_retry_verdict_t v);

#endif

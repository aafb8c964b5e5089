/* gRFC A6 retries: the policy and throttle of a service config, backoff, pushback, and the
 * retry decision. Pure: the caller brings the clock and the random draws. */
#include "services/runtime/retry.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "services/runtime/grpc_status.h"

void fl_retry_policy_none(fl_retry_policy_t *p, fl_retry_throttle_t *t)
{
    if (p)
        memset(p, 0, sizeof *p), p->max_attempts = 1;
    if (t)
        memset(t, 0, sizeof *t);
}

static int bad(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* A protobuf JSON duration: decimal seconds with an "s", e.g. "0.1s", "2s", "1.000000001s". */
static int proto_duration(const char *s, uint64_t *ns)
{
    uint64_t secs = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (secs > 315576000000ull) /* the proto limit: 10,000 years */
            return -1;
        secs = secs * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, fdigits++) {
            if (fdigits == 9)
                return -1;
            frac = frac * 10 + (uint64_t)(*p - '0');
        }
        if (fdigits == 0)
            return -1;
    }
    if (digits == 0 || p[0] != 's' || p[1] != '\0' || secs > 315576000000ull)
        return -1;
    for (int i = fdigits; i < 9; i++)
        frac *= 10;
    *ns = secs * 1000000000ull + frac;
    return 0;
}

static int parse_policy(json_t *rp, fl_retry_policy_t *p, char *err, size_t errlen)
{
    json_t *v = json_object_get(rp, "maxAttempts");
    if (!json_is_integer(v) || json_integer_value(v) < 2)
        return bad(err, errlen, FL_EINVAL, "retryPolicy.maxAttempts must be an integer >= 2");
    json_int_t n = json_integer_value(v);
    p->max_attempts = n > FL_RETRY_MAX_ATTEMPTS ? FL_RETRY_MAX_ATTEMPTS : (int)n;
    static const char *const durs[] = {"initialBackoff", "maxBackoff"};
    uint64_t *outs[] = {&p->initial_backoff_ns, &p->max_backoff_ns};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(rp, durs[i]);
        if (!json_is_string(v) || proto_duration(json_string_value(v), outs[i]) || *outs[i] == 0)
            return bad(err, errlen, FL_EINVAL,
                       "retryPolicy.%s must be a positive duration such as \"0.1s\"", durs[i]);
    }
    v = json_object_get(rp, "backoffMultiplier");
    if (!json_is_number(v) || !(json_number_value(v) > 0))
        return bad(err, errlen, FL_EINVAL, "retryPolicy.backoffMultiplier must be a number > 0");
    p->multiplier = json_number_value(v);
    v = json_object_get(rp, "retryableStatusCodes");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad(err, errlen, FL_EINVAL,
                   "retryPolicy.retryableStatusCodes must be a non-empty list of codes");
    size_t i;
    json_t *c;
    p->retryable = 0;
    json_array_foreach(v, i, c)
    {
        int code = -1;
        if (json_is_string(c))
            code = fl_grpc_code_parse_name(json_string_value(c));
        else if (json_is_integer(c) && json_integer_value(c) >= 0 && json_integer_value(c) <= 16)
            code = (int)json_integer_value(c);
        if (code < 0 || code > 16 || code == FL_GRPC_OK)
            return bad(err, errlen, FL_EINVAL,
                       "retryPolicy.retryableStatusCodes[%zu] is not a status code to retry", i);
        p->retryable |= 1u << code;
    }
    return 0;
}

static int parse_throttle(json_t *rt, fl_retry_throttle_t *t, char *err, size_t errlen)
{
    json_t *mt = json_object_get(rt, "maxTokens"), *tr = json_object_get(rt, "tokenRatio");
    if (!json_is_number(mt) || !(json_number_value(mt) > 0) || json_number_value(mt) > 1000)
        return bad(err, errlen, FL_EINVAL, "retryThrottling.maxTokens must be in (0, 1000]");
    if (!json_is_number(tr) || !(json_number_value(tr) > 0))
        return bad(err, errlen, FL_EINVAL, "retryThrottling.tokenRatio must be a number > 0");
    t->enabled = 1;
    t->max_tokens = json_number_value(mt);
    t->tokens = t->max_tokens;
    t->ratio = floor(json_number_value(tr) * 1000) / 1000; /* A6: three decimals */
    return 0;
}

int fl_retry_config_parse(const char *json, fl_retry_policy_t *p, fl_retry_throttle_t *t, char *err,
                          size_t errlen)
{
    fl_retry_policy_none(p, t);
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    if (!root)
        return bad(err, errlen, FL_ESYNTAX, "service config: %s (line %d)", je.text, je.line);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bad(err, errlen, FL_EINVAL, "service config must be a JSON object");
        goto done;
    }
    json_t *mc = json_object_get(root, "methodConfig");
    if (mc && !json_is_array(mc)) {
        rc = bad(err, errlen, FL_EINVAL, "methodConfig must be a list");
        goto done;
    }
    size_t i;
    json_t *m;
    json_array_foreach(mc, i, m)
    {
        json_t *rp = json_object_get(m, "retryPolicy");
        if (rp) {
            rc = json_is_object(rp) ? parse_policy(rp, p, err, errlen)
                                    : bad(err, errlen, FL_EINVAL, "retryPolicy must be an object");
            break;
        }
    }
    json_t *rt = json_object_get(root, "retryThrottling");
    if (!rc && rt)
        rc = json_is_object(rt) ? parse_throttle(rt, t, err, errlen)
                                : bad(err, errlen, FL_EINVAL, "retryThrottling must be an object");
done:
    if (rc)
        fl_retry_policy_none(p, t);
    json_decref(root);
    return rc;
}

uint64_t fl_retry_backoff_ns(const fl_retry_policy_t *p, int n, double u)
{
    double cap = (double)p->initial_backoff_ns * pow(p->multiplier, n > 1 ? n - 1 : 0);
    if (cap > (double)p->max_backoff_ns)
        cap = (double)p->max_backoff_ns;
    return (uint64_t)(u * cap);
}

int fl_retry_pushback(const char *value, uint64_t *ms)
{
    if (!value)
        return -1;
    uint64_t v = 0;
    if (!*value)
        return 0;
    for (const char *c = value; *c; c++) {
        if (*c < '0' || *c > '9' || v > UINT64_MAX / 10 - 10)
            return 0;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    *ms = v;
    return 1;
}

void fl_retry_throttle_record(fl_retry_throttle_t *t, const fl_retry_policy_t *p, int code)
{
    if (!t->enabled)
        return;
    if (code == FL_GRPC_OK) {
        t->tokens += t->ratio;
        if (t->tokens > t->max_tokens)
            t->tokens = t->max_tokens;
    } else if (code >= 0 && code < 32 && (p->retryable >> code & 1)) {
        t->tokens -= 1;
        if (t->tokens < 0)
            t->tokens = 0;
    }
}

int fl_retry_throttle_allows(const fl_retry_throttle_t *t)
{
    return !t->enabled || t->tokens > t->max_tokens / 2;
}

fl_retry_verdict_t fl_retry_decide(const fl_retry_policy_t *p, const fl_retry_throttle_t *t,
                                   int attempts, int code, const char *pushback, uint64_t now_ns,
                                   uint64_t deadline_ns, double u, uint64_t *delay_ns)
{
    if (code == FL_GRPC_OK || code < 0 || code >= 32 || !(p->retryable >> code & 1) ||
        attempts >= p->max_attempts)
        return FL_RETRY_NO;
    if (!fl_retry_throttle_allows(t))
        return FL_RETRY_THROTTLED;
    uint64_t ms, delay;
    int pb = fl_retry_pushback(pushback, &ms);
    if (pb == 0)
        return FL_RETRY_PUSHBACK;
    delay = pb == 1 ? ms * 1000000ull : fl_retry_backoff_ns(p, attempts, u);
    if (deadline_ns && now_ns + delay >= deadline_ns)
        return FL_RETRY_DEADLINE;
    *delay_ns = delay;
    return FL_RETRY_YES;
}

const char *fl_retry_verdict_name(fl_retry_verdict_t v)
{
    static const char *const names[FL_RETRY_NVERDICTS] = {"no",       "throttled", "pushback",
                                                          "deadline", "yes",       "committed"};
    return (unsigned)v < FL_RETRY_NVERDICTS ? names[v] : "?";
}

/* The judging behind the generic checks (t:expect_balanced, t:expect_traces), as pure
 * functions over counts and spans: no I/O, no clock, no Lua. checks.c gathers the evidence
 * from the running scenario and calls them; tests/unit/harness/test_checks.c tests them. */
#ifndef FL_CHECKS_H
#define FL_CHECKS_H

#include <stddef.h>
#include <stdint.h>

#include "harness/timeline.h"

/* Requests per instance against the even share. The rule: with total requests over n
 * instances, the even share is total / n; each instance's deviation is |count - share| /
 * share; the counts are balanced when the largest deviation is at most the tolerance (0.2:
 * every instance within 20% of its share). No instance, or no request at all: not balanced
 * (max_dev is then 1, worst 0). */
typedef struct {
    uint64_t total;
    double share;   /* total / n */
    double max_dev; /* the largest |count - share| / share */
    size_t worst;   /* the index of that count */
    int ok;
} fl_balance_t;

void fl_balance_judge(const uint64_t *counts, size_t n, double tolerance, fl_balance_t *out);

/* One trace, judged. Connected: exactly one root, and every other span's parent is in the
 * trace (a span whose parent never arrived is an orphan). The root may have a parent that is
 * not in the trace (a caller that does not trace, such as curl sending a traceparent) only
 * when it is a SERVER or CONSUMER span: an entry point. A root that is a CLIENT or PRODUCER
 * span is a call made without its caller's context (a dropped traceparent): not connected.
 * Attempts: CLIENT spans with the same parent and name are one call's attempts when the later
 * ones are resends (http.request.resend_count > 0, or an attempt attribute > 1); a call may
 * make at most max_attempts of them (0: not checked). spans may come in any order. */
typedef struct {
    int ok;
    int attempts;      /* the most attempts one call of this trace made */
    char problem[640]; /* what is wrong, when not ok: names the span, its service, its parent */
} fl_trace_verdict_t;

void fl_trace_judge(const fl_span_t *const *spans, size_t n, int complete, int max_attempts,
                    fl_trace_verdict_t *out);

/* The resend number of a CLIENT span: http.request.resend_count, or its attempt - 1, else 0. */
int fl_span_resend(const fl_span_t *s);

#endif

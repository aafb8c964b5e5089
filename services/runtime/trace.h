/* Tracing for the reference services: spans, sampling, and a batching OTLP/HTTP exporter
 * on the libuv loop (one lib/httpc POST per batch; the loop never blocks).
 *
 * A service makes one tracer from the standard OpenTelemetry environment, then:
 *   SERVER   one span per handled call, child of the caller's traceparent (tracectx.h);
 *   CLIENT   one span per attempt, child of the current span, its context sent as the
 *            callee's traceparent; resends carry http.request.resend_count (N > 0);
 *   PRODUCER one span per publish, its context in the message headers;
 *   CONSUMER one span per delivery, child of the context found in the message headers.
 * Ended spans wait in a bounded queue (full: dropped and counted) and leave in batches:
 * when max_batch are waiting, else every schedule_delay. One export is in flight at a time;
 * 429, 502, 503, 504 and transport errors are retried with exponential backoff (honouring
 * Retry-After) within the export timeout; other answers drop the batch, counted.
 *
 * Environment (fl_trace_config_from_env), as the OpenTelemetry SDK specification says:
 *   OTEL_SDK_DISABLED=true      no spans recorded, none exported; contexts still propagate
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   the full URL, used as is
 *   OTEL_EXPORTER_OTLP_ENDPOINT          base URL; "/v1/traces" is appended
 *                                        (default http://localhost:4318/v1/traces)
 *   OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TIMEOUT   per request, ms (10000)
 *   OTEL_SERVICE_NAME           service.name (over OTEL_RESOURCE_ATTRIBUTES'; default
 *                               unknown_service)
 *   OTEL_RESOURCE_ATTRIBUTES    k=v,k2=v2 with percent-encoded values; one bad entry and
 *                               the whole variable is ignored (with a warning)
 *   OTEL_TRACES_SAMPLER         always_on, always_off, traceidratio, parentbased_always_on
 *                               (default), parentbased_always_off, parentbased_traceidratio
 *   OTEL_TRACES_SAMPLER_ARG     the ratio, 0..1 (default 1)
 *   OTEL_BSP_SCHEDULE_DELAY (5000 ms), OTEL_BSP_EXPORT_TIMEOUT (30000 ms),
 *   OTEL_BSP_MAX_QUEUE_SIZE (2048), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512, at most the queue)
 * Invalid values are ignored with a one-line warning on stderr; defaults apply. */
#ifndef FL_TRACE_H
#define FL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "services/runtime/otlp.h"
#include "services/runtime/tracectx.h"

typedef enum {
    FL_SAMPLER_ALWAYS_ON,
    FL_SAMPLER_ALWAYS_OFF,
    FL_SAMPLER_TRACEIDRATIO,
    FL_SAMPLER_PARENT_ALWAYS_ON,
    FL_SAMPLER_PARENT_ALWAYS_OFF,
    FL_SAMPLER_PARENT_TRACEIDRATIO,
} fl_sampler_t;

typedef struct {
    bool disabled;
    char *endpoint;      /* the full URL spans are POSTed to */
    fl_attr_t *resource; /* service.name first */
    size_t nresource;
    fl_sampler_t sampler;
    double ratio;
    uint64_t schedule_delay_ms, export_timeout_ms, request_timeout_ms;
    size_t max_queue, max_batch;
    uint64_t retry_min_ms, retry_max_ms; /* backoff between retries of one batch */
    size_t max_attrs;                    /* per span; more are dropped and counted (128) */
} fl_trace_config_t;

/* Where configuration values come from: getenv, or a test's table. */
typedef const char *(*fl_getenv_fn)(const char *name, void *arg);

/* Fills c from the environment (get NULL: getenv). Returns 0 or FL_ENOMEM. Invalid values
 * are warned about on stderr (as "otel: ...") and replaced by their defaults. */
int fl_trace_config_from_env(fl_trace_config_t *c, fl_getenv_fn get, void *arg);
void fl_trace_config_free(fl_trace_config_t *c);

typedef struct fl_tracer fl_tracer_t;
typedef struct fl_span fl_span_t;

typedef struct {
    uint64_t started;    /* spans started (recording or not) */
    uint64_t recorded;   /* sampled spans ended */
    uint64_t queue_full; /* dropped: the queue was full */
    uint64_t exported;   /* accepted by the collector (2xx) */
    uint64_t failed;     /* dropped: their export failed for good */
    uint64_t requests;   /* POSTs made, retries included */
    uint64_t retries;
    size_t queued; /* waiting now */
} fl_tracer_stats_t;

/* Makes a tracer on loop with a copy of cfg. Returns 0 or FL_ENOMEM. An endpoint that is not
 * http://HOST[:PORT][/PATH] is warned about on stderr; its batches are dropped, counted failed. */
int fl_tracer_new(uv_loop_t *loop, const fl_trace_config_t *cfg, fl_tracer_t **out);

/* Flushes what is queued (and what is in flight) for at most timeout_ms, then closes every
 * handle; cb runs once all are closed, after which t is freed. Spans ended meanwhile are
 * dropped and counted as queue_full. */
void fl_tracer_shutdown(fl_tracer_t *t, uint64_t timeout_ms, void (*cb)(void *arg), void *arg);

/* Exports what is queued now rather than at the next schedule. */
void fl_tracer_flush(fl_tracer_t *t);

void fl_tracer_stats(const fl_tracer_t *t, fl_tracer_stats_t *out);

/* Starts a span of kind FL_SPAN_* named name, child of parent (NULL or an all-zero context:
 * a new trace). Never NULL: out of memory or not sampled, the span does not record but
 * still has a context to propagate. */
fl_span_t *fl_span_start(fl_tracer_t *t, const char *name, int kind, const fl_tracectx_t *parent);

/* The span's own context: what goes into the traceparent/tracestate sent on. */
const fl_tracectx_t *fl_span_context(const fl_span_t *s);
bool fl_span_is_recording(const fl_span_t *s);

/* Attributes (a key set twice keeps the last value), events and status; no-ops on a span
 * that does not record. */
void fl_span_set_str(fl_span_t *s, const char *key, const char *value);
void fl_span_set_int(fl_span_t *s, const char *key, int64_t value);
void fl_span_set_bool(fl_span_t *s, const char *key, bool value);
void fl_span_set_double(fl_span_t *s, const char *key, double value);
void fl_span_add_event(fl_span_t *s, const char *name);
void fl_span_set_status(fl_span_t *s, int code, const char *message); /* FL_STATUS_* */

/* CLIENT spans: the attempt number n (0 for the first) as http.request.resend_count, set
 * only on resends (n > 0), as the HTTP semantic conventions say. */
void fl_span_set_resend_count(fl_span_t *s, int64_t n);

/* Ends the span: a recording one joins the export queue. s is freed. */
void fl_span_end(fl_span_t *s);

#endif

/* Finished spans as data, and their OTLP encoding: an ExportTraceServiceRequest in protobuf
 * (opentelemetry-proto collector/trace/v1), the body of an OTLP/HTTP POST to /v1/traces.
 * A small hand-written encoder for the subset we send — resource attributes, one scope,
 * spans with attributes, events and status — with the field numbers of the OTLP protos
 * (services/proto/otlp_trace.proto writes that subset down; the tests decode with it).
 * Pure: no I/O; it allocates only the output buffer. */
#ifndef FL_OTLP_H
#define FL_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

typedef enum { FL_ATTR_STRING, FL_ATTR_BOOL, FL_ATTR_INT, FL_ATTR_DOUBLE } fl_attr_type_t;

typedef struct {
    char *key;
    fl_attr_type_t type;
    union {
        char *s;
        bool b;
        int64_t i;
        double d;
    } v;
} fl_attr_t;

/* Span kinds and status codes with OTLP's numbers. */
enum {
    FL_SPAN_INTERNAL = 1,
    FL_SPAN_SERVER = 2,
    FL_SPAN_CLIENT = 3,
    FL_SPAN_PRODUCER = 4,
    FL_SPAN_CONSUMER = 5,
};
enum { FL_STATUS_UNSET = 0, FL_STATUS_OK = 1, FL_STATUS_ERROR = 2 };

typedef struct {
    char *name;
    uint64_t time_ns;
} fl_span_event_t;

typedef struct fl_span_data {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_span_id[8];
    bool has_parent;
    bool parent_remote; /* the parent came from another process */
    uint8_t trace_flags;
    char *trace_state; /* NULL or "" when none */
    char *name;
    int kind;
    uint64_t start_ns, end_ns; /* Unix epoch, nanoseconds */
    fl_attr_t *attrs;
    size_t nattrs, cap_attrs;
    uint32_t dropped_attrs;
    fl_span_event_t *events;
    size_t nevents, cap_events;
    uint32_t dropped_events;
    int status_code;
    char *status_message;
    struct fl_span_data *next; /* for the exporter's queue */
} fl_span_data_t;

/* Appends an ExportTraceServiceRequest with one ResourceSpans (the resource attributes) and
 * one ScopeSpans (scope name and version) holding n spans. Returns 0 or FL_ENOMEM. */
int fl_otlp_encode(fl_buf_t *out, const fl_attr_t *resource, size_t nresource,
                   const char *scope_name, const char *scope_version, fl_span_data_t *const *spans,
                   size_t n);

/* Frees what a span data owns (strings, attributes, events), and the span itself. */
void fl_span_data_free(fl_span_data_t *s);

/* Frees the strings of one attribute. */
void fl_attr_free(fl_attr_t *a);

#endif

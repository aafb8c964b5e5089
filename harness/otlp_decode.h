/* Decoding of OTLP trace exports (ExportTraceServiceRequest), protobuf and JSON encodings,
 * for the collector. The protobuf decoder is a pure function over bytes: no I/O and no
 * allocation; strings in its output point into the input, spans and attributes go into
 * arrays the caller provides, so a hostile payload can cost no more than those bounds. */
#ifndef FL_OTLP_DECODE_H
#define FL_OTLP_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/timeline.h"

typedef struct {
    const char *p; /* not NUL-terminated; may hold NULs */
    size_t n;
} fl_otlp_str_t;

typedef enum {
    FL_OTLP_V_NONE, /* arrays, key-value lists, bytes, or no value */
    FL_OTLP_V_STRING,
    FL_OTLP_V_BOOL,
    FL_OTLP_V_INT,
    FL_OTLP_V_DOUBLE,
} fl_otlp_vtype_t;

typedef struct {
    fl_otlp_str_t key;
    fl_otlp_vtype_t type;
    fl_otlp_str_t s; /* FL_OTLP_V_STRING */
    int64_t i;       /* FL_OTLP_V_INT, and FL_OTLP_V_BOOL (0 or 1) */
    double d;        /* FL_OTLP_V_DOUBLE */
} fl_otlp_attr_t;

typedef struct {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    int has_parent;
    fl_otlp_str_t name, status_message;
    fl_otlp_str_t service, instance; /* the resource's service.name, service.instance.id */
    fl_span_kind_t kind;             /* unspecified and unknown kinds: FL_SPAN_INTERNAL */
    fl_span_status_t status;
    uint64_t start_unix_ns, end_unix_ns;
    size_t attr0, nattrs; /* out->attrs[attr0 .. attr0 + nattrs) */
} fl_otlp_span_t;

typedef struct {
    fl_otlp_span_t *spans; /* caller's array of maxspans */
    size_t maxspans, nspans;
    fl_otlp_attr_t *attrs; /* caller's array of maxattrs, shared by every span */
    size_t maxattrs, nattrs;
    size_t rejected;      /* spans refused (bad ids, past maxspans) */
    size_t dropped_attrs; /* attributes past maxattrs, left out */
    const char *reason;   /* static text: why decoding failed, or why spans were rejected */
} fl_otlp_out_t;

/* Decodes an ExportTraceServiceRequest in protobuf encoding into out (set its arrays and
 * capacities; the counts are reset here). A span with an invalid trace or span id is
 * rejected (counted in out->rejected, with out->reason) and the rest kept. Returns 0, or
 * FL_EMALFORMED with out->reason naming what was wrong (out's spans are then meaningless). */
int fl_otlp_decode_pb(const void *data, size_t len, fl_otlp_out_t *out);

/* The same for the OTLP JSON encoding (ids as hex, 64-bit numbers as strings or numbers).
 * Strings point into *keep, a jansson value the caller releases with fl_otlp_json_free
 * after using out. Returns 0, FL_EMALFORMED (out->reason says why) or FL_ENOMEM. */
int fl_otlp_decode_json(const char *data, size_t len, fl_otlp_out_t *out, void **keep);
void fl_otlp_json_free(void *keep);

/* The response bodies: an empty ExportTraceServiceResponse, or one with partial_success
 * (rejected spans and a message), protobuf or JSON, into buf; returns the length, or 0 when
 * buf is too small (an empty protobuf response is 0 bytes too). */
size_t fl_otlp_response_pb(uint64_t rejected, const char *msg, uint8_t *buf, size_t n);
size_t fl_otlp_response_json(uint64_t rejected, const char *msg, char *buf, size_t n);

#endif

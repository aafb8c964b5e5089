/* W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent and tracestate
 * values that carry a trace from one service to the next over HTTP headers, gRPC metadata
 * and AMQP message headers. Pure functions over bytes: no I/O, no allocation.
 *
 * Parsing follows the Recommendation and its conformance suite (w3c/trace-context test/):
 * - traceparent: lowercase hex only; version ff, an all-zero trace-id or parent-id, wrong
 *   lengths, a version 00 value with anything after the flags are invalid; a higher version
 *   is read as far as version 00's fields go when the flags are at the end or followed by
 *   '-' (its extra fields are ignored), and is sent on as version 00. Leading and trailing
 *   spaces and tabs (HTTP's OWS) are ignored. Only the sampled flag is kept: the others are
 *   undefined and "vendors MUST set those to zero".
 * - tracestate: at most 32 list-members with the key and value grammar of the spec; empty
 *   members and OWS around members are dropped. One invalid member, a duplicated key or a
 *   33rd member makes the whole tracestate invalid: it is discarded, never half-kept. A
 *   tracestate is only read when its traceparent was valid. Kept up to 512 characters; a
 *   longer one loses whole entries (those over 128 characters first, then from the end). */
#ifndef FL_TRACECTX_H
#define FL_TRACECTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_TRACEPARENT_LEN 55    /* "00-" 32 hex "-" 16 hex "-" 2 hex */
#define FL_TRACESTATE_MAX 512    /* characters kept and sent */
#define FL_TRACESTATE_MEMBERS 32 /* list-members allowed */
#define FL_TRACE_FLAG_SAMPLED 0x01

typedef struct {
    uint8_t trace_id[16];
    uint8_t span_id[8];                     /* the parent-id of a received traceparent */
    uint8_t flags;                          /* FL_TRACE_FLAG_SAMPLED or 0 */
    bool remote;                            /* parsed from a peer, not created here */
    char tracestate[FL_TRACESTATE_MAX + 1]; /* canonical "k=v,k=v"; "" when none */
} fl_tracectx_t;

/* Parses one traceparent value of n bytes into ctx (ids, flags, remote = true; tracestate
 * left untouched). Returns 0, or FL_EMALFORMED (ctx unchanged) for any invalid value. */
int fl_traceparent_parse(const char *s, size_t n, fl_tracectx_t *ctx);

/* Writes ctx as a version 00 traceparent plus a NUL: 56 bytes. Returns FL_TRACEPARENT_LEN. */
size_t fl_traceparent_format(const fl_tracectx_t *ctx, char out[FL_TRACEPARENT_LEN + 1]);

/* Parses a tracestate value of n bytes (several header fields are joined with ',' first, as
 * RFC 7230 says) into out, canonical: members separated by ',' without OWS, empty members
 * gone, at most FL_TRACESTATE_MAX characters. Returns 0, or FL_EMALFORMED with out = ""
 * when the value must be discarded. */
int fl_tracestate_parse(const char *s, size_t n, char out[FL_TRACESTATE_MAX + 1]);

/* What a server does with the headers it received: parses traceparent (NULL: none) and,
 * only when that is valid, tracestate (NULL: none; an invalid one becomes ""). Returns 0
 * when ctx now holds the caller's context, FL_ENOTFOUND when there was no traceparent, or
 * FL_EMALFORMED when it was invalid (the trace restarts; ctx is zeroed either way). */
int fl_tracectx_extract(const char *traceparent, size_t tp_len, const char *tracestate,
                        size_t ts_len, fl_tracectx_t *ctx);

/* True when every byte of id is zero (an invalid id). */
bool fl_trace_id_is_zero(const uint8_t *id, size_t n);

/* Lowercase hex of n bytes into out (2n characters plus a NUL). */
void fl_trace_hex(const uint8_t *id, size_t n, char *out);

#endif

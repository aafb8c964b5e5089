/* OTLP protobuf encoding of spans (otlp.h).
 *
 * Protobuf wire format in brief: each field is a varint key (field number << 3 | wire type)
 * then its value — varint (0), 64-bit little-endian (1), length-delimited (2) or 32-bit (5).
 * A nested message is length-delimited, and its length comes first: it is written after
 * the content, which then moves up by the few bytes the length takes (messages here are
 * small, and five levels deep at most). */
#include "services/runtime/otlp.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    fl_buf_t *b;
    int err;
} pb_t;

static void put(pb_t *p, const void *data, size_t n)
{
    if (!p->err && fl_buf_append(p->b, data, n) < 0)
        p->err = FL_ENOMEM;
}

static size_t varint(uint64_t v, uint8_t out[10])
{
    size_t n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

static void put_varint(pb_t *p, uint64_t v)
{
    uint8_t tmp[10];
    put(p, tmp, varint(v, tmp));
}

static void put_key(pb_t *p, unsigned field, unsigned wt)
{
    put_varint(p, (uint64_t)field << 3 | wt);
}

static void put_bytes(pb_t *p, unsigned field, const void *data, size_t n)
{
    put_key(p, field, WT_LEN);
    put_varint(p, n);
    put(p, data, n);
}

/* proto3: empty strings and zero numbers are the defaults and are not sent. */
static void put_string(pb_t *p, unsigned field, const char *s)
{
    if (s && *s)
        put_bytes(p, field, s, strlen(s));
}

static void put_uint(pb_t *p, unsigned field, uint64_t v)
{
    if (v) {
        put_key(p, field, WT_VARINT);
        put_varint(p, v);
    }
}

static void put_fixed64(pb_t *p, unsigned field, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    put_key(p, field, WT_I64);
    put(p, le, 8);
}

static void put_fixed32(pb_t *p, unsigned field, uint32_t v)
{
    uint8_t le[4];
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    put_key(p, field, WT_I32);
    put(p, le, 4);
}

/* Starts a nested message; returns where its content starts. */
static size_t begin(pb_t *p, unsigned field)
{
    put_key(p, field, WT_LEN);
    return p->b->len;
}

/* Ends the nested message started at start: slides its content up and writes its length. */
static void end(pb_t *p, size_t start)
{
    if (p->err)
        return;
    uint8_t len[10];
    size_t content = p->b->len - start, k = varint(content, len);
    if (fl_buf_reserve(p->b, k) < 0) {
        p->err = FL_ENOMEM;
        return;
    }
    memmove(p->b->data + start + k, p->b->data + start, content);
    memcpy(p->b->data + start, len, k);
    p->b->len += k;
    p->b->data[p->b->len] = '\0';
}

/* KeyValue { string key = 1; AnyValue value = 2; }
 * AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3;
 *            double double_value = 4; } (a oneof: the chosen one is always sent) */
static void put_attr(pb_t *p, unsigned field, const fl_attr_t *a)
{
    size_t kv = begin(p, field);
    put_string(p, 1, a->key);
    size_t av = begin(p, 2);
    switch (a->type) {
    case FL_ATTR_STRING:
        put_bytes(p, 1, a->v.s ? a->v.s : "", a->v.s ? strlen(a->v.s) : 0);
        break;
    case FL_ATTR_BOOL:
        put_key(p, 2, WT_VARINT);
        put_varint(p, a->v.b ? 1 : 0);
        break;
    case FL_ATTR_INT:
        put_key(p, 3, WT_VARINT);
        put_varint(p, (uint64_t)a->v.i); /* negative: ten bytes, two's complement */
        break;
    case FL_ATTR_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &a->v.d, sizeof bits);
        put_fixed64(p, 4, bits);
        break;
    }
    }
    end(p, av);
    end(p, kv);
}

/* Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4, name 5, kind 6,
 * start_time_unix_nano 7, end_time_unix_nano 8, attributes 9, dropped_attributes_count 10,
 * events 11 (time_unix_nano 1, name 2), dropped_events_count 12, status 15 (message 2,
 * code 3), flags 16 (trace flags, bit 8: "is_remote is known", bit 9: the parent is remote). */
static void put_span(pb_t *p, const fl_span_data_t *s)
{
    size_t sp = begin(p, 2);
    put_bytes(p, 1, s->trace_id, 16);
    put_bytes(p, 2, s->span_id, 8);
    put_string(p, 3, s->trace_state);
    if (s->has_parent)
        put_bytes(p, 4, s->parent_span_id, 8);
    put_string(p, 5, s->name);
    put_uint(p, 6, (uint64_t)s->kind);
    put_fixed64(p, 7, s->start_ns);
    put_fixed64(p, 8, s->end_ns);
    for (size_t i = 0; i < s->nattrs; i++)
        put_attr(p, 9, &s->attrs[i]);
    put_uint(p, 10, s->dropped_attrs);
    for (size_t i = 0; i < s->nevents; i++) {
        size_t ev = begin(p, 11);
        put_fixed64(p, 1, s->events[i].time_ns);
        put_string(p, 2, s->events[i].name);
        end(p, ev);
    }
    put_uint(p, 12, s->dropped_events);
    if (s->status_code != FL_STATUS_UNSET || (s->status_message && *s->status_message)) {
        size_t st = begin(p, 15);
        put_string(p, 2, s->status_message);
        put_uint(p, 3, (uint64_t)s->status_code);
        end(p, st);
    }
    uint32_t flags = s->trace_flags | 0x100u;
    if (s->has_parent && s->parent_remote)
        flags |= 0x200u;
    put_fixed32(p, 16, flags);
    end(p, sp);
}

/* ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
 * ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
 * Resource { repeated KeyValue attributes = 1; }
 * ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
 * InstrumentationScope { string name = 1; string version = 2; } */
int fl_otlp_encode(fl_buf_t *out, const fl_attr_t *resource, size_t nresource,
                   const char *scope_name, const char *scope_version, fl_span_data_t *const *spans,
                   size_t n)
{
    pb_t p = {out, 0};
    size_t rs = begin(&p, 1);
    size_t res = begin(&p, 1);
    for (size_t i = 0; i < nresource; i++)
        put_attr(&p, 1, &resource[i]);
    end(&p, res);
    size_t ss = begin(&p, 2);
    size_t scope = begin(&p, 1);
    put_string(&p, 1, scope_name);
    put_string(&p, 2, scope_version);
    end(&p, scope);
    for (size_t i = 0; i < n; i++)
        put_span(&p, spans[i]);
    end(&p, ss);
    end(&p, rs);
    return p.err;
}

void fl_attr_free(fl_attr_t *a)
{
    free(a->key);
    if (a->type == FL_ATTR_STRING)
        free(a->v.s);
}

void fl_span_data_free(fl_span_data_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nattrs; i++)
        fl_attr_free(&s->attrs[i]);
    free(s->attrs);
    for (size_t i = 0; i < s->nevents; i++)
        free(s->events[i].name);
    free(s->events);
    free(s->trace_state);
    free(s->name);
    free(s->status_message);
    free(s);
}

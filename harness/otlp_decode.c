/* OTLP trace export decoding (otlp_decode.h).
 *
 * Protobuf wire format: each field is a varint key (field number << 3 | wire type) then its
 * value: varint (0), 8 bytes little-endian (1), length-delimited (2) or 4 bytes (5). Unknown
 * fields are skipped, as protobuf requires; a known field with the wrong wire type, a length
 * past the end, a truncated varint or a group is malformed. Nesting is fixed by the schema
 * (request > resource spans > scope spans > span > key-value > value) and never recursive:
 * array and key-value-list attribute values are skipped, not descended into. */
#include "harness/otlp_decode.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p, *end;
} rd_t;

typedef struct {
    unsigned field, wt;
    uint64_t v; /* varint, I64, I32 */
    rd_t sub;   /* LEN */
} pbf_t;

static int rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* more than 10 bytes */
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The next field of r: 1, 0 at the end, -1 malformed (reason set). */
static int next(rd_t *r, pbf_t *f, const char **reason)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key;
    if (rd_varint(r, &key) < 0) {
        *reason = "truncated field key";
        return -1;
    }
    f->field = (unsigned)(key >> 3);
    f->wt = (unsigned)(key & 7);
    if (f->field == 0 || key >> 3 > 0x1fffffff) {
        *reason = "bad field number";
        return -1;
    }
    size_t left;
    switch (f->wt) {
    case WT_VARINT:
        if (rd_varint(r, &f->v) < 0) {
            *reason = "truncated varint";
            return -1;
        }
        return 1;
    case WT_I64:
    case WT_I32: {
        int n = f->wt == WT_I64 ? 8 : 4;
        if (r->end - r->p < n) {
            *reason = "truncated fixed-size field";
            return -1;
        }
        f->v = le(r->p, n);
        r->p += n;
        return 1;
    }
    case WT_LEN:
        if (rd_varint(r, &f->v) < 0) {
            *reason = "truncated length";
            return -1;
        }
        left = (size_t)(r->end - r->p);
        if (f->v > left) {
            *reason = "length past the end of its message";
            return -1;
        }
        f->sub.p = r->p;
        f->sub.end = r->p + f->v;
        r->p += f->v;
        return 1;
    default:
        *reason = "unsupported wire type (groups are not OTLP)";
        return -1;
    }
}

static int want(const pbf_t *f, unsigned wt, const char *what, const char **reason)
{
    if (f->wt == wt)
        return 0;
    *reason = what;
    return -1;
}

static fl_otlp_str_t str_of(const rd_t *r)
{
    return (fl_otlp_str_t){(const char *)r->p, (size_t)(r->end - r->p)};
}

static int str_is(fl_otlp_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static int decode_value(rd_t r, fl_otlp_attr_t *a, const char **reason)
{
    pbf_t f;
    int rc;
    a->type = FL_OTLP_V_NONE;
    while ((rc = next(&r, &f, reason)) > 0) {
        switch (f.field) {
        case 1:
            if (want(&f, WT_LEN, "AnyValue.string_value is not length-delimited", reason))
                return -1;
            a->type = FL_OTLP_V_STRING;
            a->s = str_of(&f.sub);
            break;
        case 2:
            if (want(&f, WT_VARINT, "AnyValue.bool_value is not a varint", reason))
                return -1;
            a->type = FL_OTLP_V_BOOL;
            a->i = f.v != 0;
            break;
        case 3:
            if (want(&f, WT_VARINT, "AnyValue.int_value is not a varint", reason))
                return -1;
            a->type = FL_OTLP_V_INT;
            a->i = (int64_t)f.v;
            break;
        case 4:
            if (want(&f, WT_I64, "AnyValue.double_value is not 64-bit", reason))
                return -1;
            a->type = FL_OTLP_V_DOUBLE;
            memcpy(&a->d, &f.v, sizeof a->d);
            break;
        case 5:
        case 6:
        case 7:
            if (want(&f, WT_LEN, "AnyValue array, kvlist or bytes is not length-delimited", reason))
                return -1;
            a->type = FL_OTLP_V_NONE;
            break;
        }
    }
    return rc;
}

static int decode_kv(rd_t r, fl_otlp_attr_t *a, const char **reason)
{
    pbf_t f;
    int rc;
    memset(a, 0, sizeof *a);
    while ((rc = next(&r, &f, reason)) > 0) {
        if (f.field == 1) {
            if (want(&f, WT_LEN, "KeyValue.key is not length-delimited", reason))
                return -1;
            a->key = str_of(&f.sub);
        } else if (f.field == 2) {
            if (want(&f, WT_LEN, "KeyValue.value is not length-delimited", reason) ||
                decode_value(f.sub, a, reason) < 0)
                return -1;
        }
    }
    return rc;
}

typedef struct {
    fl_otlp_str_t service, instance;
} res_t;

static int decode_resource(rd_t r, res_t *res, const char **reason)
{
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, reason)) > 0) {
        if (f.field != 1)
            continue;
        fl_otlp_attr_t a;
        if (want(&f, WT_LEN, "Resource.attributes is not length-delimited", reason) ||
            decode_kv(f.sub, &a, reason) < 0)
            return -1;
        if (a.type != FL_OTLP_V_STRING)
            continue;
        if (str_is(a.key, "service.name"))
            res->service = a.s;
        else if (str_is(a.key, "service.instance.id"))
            res->instance = a.s;
    }
    return rc;
}

static int nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

static fl_span_kind_t kind_of(uint64_t k)
{
    static const fl_span_kind_t kinds[] = {FL_SPAN_INTERNAL, FL_SPAN_INTERNAL, FL_SPAN_SERVER,
                                           FL_SPAN_CLIENT,   FL_SPAN_PRODUCER, FL_SPAN_CONSUMER};
    return k < sizeof kinds / sizeof kinds[0] ? kinds[k] : FL_SPAN_INTERNAL;
}

static fl_span_status_t status_of(uint64_t c)
{
    return c == 1 ? FL_STATUS_OK : c == 2 ? FL_STATUS_ERROR : FL_STATUS_UNSET;
}

static int decode_status(rd_t r, fl_otlp_span_t *s, const char **reason)
{
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, reason)) > 0) {
        if (f.field == 2) {
            if (want(&f, WT_LEN, "Status.message is not length-delimited", reason))
                return -1;
            s->status_message = str_of(&f.sub);
        } else if (f.field == 3) {
            if (want(&f, WT_VARINT, "Status.code is not a varint", reason))
                return -1;
            s->status = status_of(f.v);
        }
    }
    return rc;
}

/* Keeps a decoded span, or counts it rejected (its attributes given back). */
static void keep_span(fl_otlp_out_t *out, fl_otlp_span_t *s, const char *bad)
{
    if (!bad && out->nspans >= out->maxspans)
        bad = "too many spans in one request";
    if (bad) {
        out->rejected++;
        out->reason = bad;
        out->nattrs = s->attr0;
        return;
    }
    out->spans[out->nspans++] = *s;
}

static int decode_span(rd_t r, const res_t *res, fl_otlp_out_t *out)
{
    fl_otlp_span_t s = {.service = res->service, .instance = res->instance};
    s.attr0 = out->nattrs;
    const char *bad = NULL, **reason = &out->reason;
    int has_trace = 0, has_span = 0;
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, reason)) > 0) {
        switch (f.field) {
        case 1:
        case 2:
        case 4: {
            if (want(&f, WT_LEN, "Span id field is not length-delimited", reason))
                return -1;
            size_t n = (size_t)(f.sub.end - f.sub.p), need = f.field == 1 ? 16 : 8;
            uint8_t *dst = f.field == 1 ? s.trace_id : f.field == 2 ? s.span_id : s.parent_id;
            if (f.field == 4 && n == 0) {
                s.has_parent = 0;
                break;
            }
            if (n != need || !nonzero(f.sub.p, n)) {
                bad = f.field == 1   ? "invalid trace id (not 16 bytes, or all zero)"
                      : f.field == 2 ? "invalid span id (not 8 bytes, or all zero)"
                                     : "invalid parent span id (not 8 bytes, or all zero)";
                break;
            }
            memcpy(dst, f.sub.p, n);
            if (f.field == 1)
                has_trace = 1;
            else if (f.field == 2)
                has_span = 1;
            else
                s.has_parent = 1;
            break;
        }
        case 5:
            if (want(&f, WT_LEN, "Span.name is not length-delimited", reason))
                return -1;
            s.name = str_of(&f.sub);
            break;
        case 6:
            if (want(&f, WT_VARINT, "Span.kind is not a varint", reason))
                return -1;
            s.kind = kind_of(f.v);
            break;
        case 7:
        case 8:
            if (want(&f, WT_I64, "Span time is not fixed64", reason))
                return -1;
            *(f.field == 7 ? &s.start_unix_ns : &s.end_unix_ns) = f.v;
            break;
        case 9: {
            if (want(&f, WT_LEN, "Span.attributes is not length-delimited", reason))
                return -1;
            fl_otlp_attr_t a;
            if (decode_kv(f.sub, &a, reason) < 0)
                return -1;
            if (out->nattrs < out->maxattrs)
                out->attrs[out->nattrs++] = a;
            else
                out->dropped_attrs++;
            break;
        }
        case 15:
            if (want(&f, WT_LEN, "Span.status is not length-delimited", reason) ||
                decode_status(f.sub, &s, reason) < 0)
                return -1;
            break;
        }
    }
    if (rc < 0)
        return -1;
    if (!bad && !has_trace)
        bad = "span without a trace id";
    if (!bad && !has_span)
        bad = "span without a span id";
    s.nattrs = out->nattrs - s.attr0;
    keep_span(out, &s, bad);
    return 0;
}

static int decode_scope_spans(rd_t r, const res_t *res, fl_otlp_out_t *out)
{
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, &out->reason)) > 0) {
        if (f.field != 2)
            continue;
        if (want(&f, WT_LEN, "ScopeSpans.spans is not length-delimited", &out->reason) ||
            decode_span(f.sub, res, out) < 0)
            return -1;
    }
    return rc;
}

/* The resource may come after the spans on the wire: find it first, then the spans. */
static int decode_resource_spans(rd_t r, fl_otlp_out_t *out)
{
    res_t res = {{"", 0}, {"", 0}};
    rd_t again = r;
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, &out->reason)) > 0) {
        if (f.field != 1)
            continue;
        if (want(&f, WT_LEN, "ResourceSpans.resource is not length-delimited", &out->reason) ||
            decode_resource(f.sub, &res, &out->reason) < 0)
            return -1;
    }
    if (rc < 0)
        return -1;
    while ((rc = next(&again, &f, &out->reason)) > 0) {
        if (f.field != 2)
            continue;
        if (want(&f, WT_LEN, "ResourceSpans.scope_spans is not length-delimited", &out->reason) ||
            decode_scope_spans(f.sub, &res, out) < 0)
            return -1;
    }
    return rc;
}

static void reset(fl_otlp_out_t *out)
{
    out->nspans = out->nattrs = out->rejected = out->dropped_attrs = 0;
    out->reason = NULL;
}

int fl_otlp_decode_pb(const void *data, size_t len, fl_otlp_out_t *out)
{
    reset(out);
    rd_t r = {data, (const uint8_t *)data + len};
    if (!data)
        r.p = r.end = NULL;
    pbf_t f;
    int rc;
    while ((rc = next(&r, &f, &out->reason)) > 0) {
        if (f.field != 1)
            continue;
        if (want(&f, WT_LEN, "ExportTraceServiceRequest.resource_spans is not length-delimited",
                 &out->reason) ||
            decode_resource_spans(f.sub, out) < 0)
            return FL_EMALFORMED;
    }
    return rc < 0 ? FL_EMALFORMED : 0;
}

/* ------------------------------------------------------------ JSON ---- */

static fl_otlp_str_t jstr(json_t *j)
{
    return (fl_otlp_str_t){json_string_value(j), json_string_length(j)};
}

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A hex id of exactly n bytes into dst: 1, or 0 when j is not one. */
static int hex_id(json_t *j, uint8_t *dst, size_t n)
{
    if (!json_is_string(j) || json_string_length(j) != 2 * n)
        return 0;
    const char *s = json_string_value(j);
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return nonzero(dst, n);
}

/* A 64-bit number as a JSON string of digits or a JSON integer: 1, or 0 when it is neither. */
static int json_u64(json_t *j, uint64_t *v)
{
    if (json_is_integer(j)) {
        *v = (uint64_t)json_integer_value(j);
        return 1;
    }
    if (!json_is_string(j))
        return 0;
    const char *s = json_string_value(j);
    int neg = *s == '-';
    s += neg;
    if (!*s || json_string_length(j) > 21)
        return 0;
    uint64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = neg ? (uint64_t)0 - x : x;
    return 1;
}

static int json_value(json_t *v, fl_otlp_attr_t *a)
{
    json_t *x;
    uint64_t u;
    a->type = FL_OTLP_V_NONE;
    if (!v)
        return 0;
    if (!json_is_object(v))
        return -1;
    if ((x = json_object_get(v, "stringValue"))) {
        if (!json_is_string(x))
            return -1;
        a->type = FL_OTLP_V_STRING;
        a->s = jstr(x);
    } else if ((x = json_object_get(v, "boolValue"))) {
        if (!json_is_boolean(x))
            return -1;
        a->type = FL_OTLP_V_BOOL;
        a->i = json_is_true(x);
    } else if ((x = json_object_get(v, "intValue"))) {
        if (!json_u64(x, &u))
            return -1;
        a->type = FL_OTLP_V_INT;
        a->i = (int64_t)u;
    } else if ((x = json_object_get(v, "doubleValue"))) {
        if (!json_is_number(x))
            return -1;
        a->type = FL_OTLP_V_DOUBLE;
        a->d = json_number_value(x);
    }
    return 0;
}

static int json_kv(json_t *kv, fl_otlp_attr_t *a)
{
    memset(a, 0, sizeof *a);
    json_t *k = json_object_get(kv, "key");
    if (!json_is_object(kv) || !json_is_string(k))
        return -1;
    a->key = jstr(k);
    return json_value(json_object_get(kv, "value"), a);
}

static json_t *json_list(json_t *obj, const char *name, int *bad)
{
    json_t *l = json_object_get(obj, name);
    if (l && !json_is_array(l))
        *bad = 1;
    return json_is_array(l) ? l : NULL;
}

static int json_span(json_t *js, const res_t *res, fl_otlp_out_t *out)
{
    fl_otlp_span_t s = {.service = res->service, .instance = res->instance};
    s.attr0 = out->nattrs;
    const char *bad = NULL;
    int malformed = 0;
    if (!json_is_object(js)) {
        out->reason = "a span is not an object";
        return -1;
    }
    if (!hex_id(json_object_get(js, "traceId"), s.trace_id, 16))
        bad = "invalid trace id (not 32 hex digits, or all zero)";
    else if (!hex_id(json_object_get(js, "spanId"), s.span_id, 8))
        bad = "invalid span id (not 16 hex digits, or all zero)";
    json_t *p = json_object_get(js, "parentSpanId");
    if (p && !(json_is_string(p) && json_string_length(p) == 0)) {
        if (!hex_id(p, s.parent_id, 8))
            bad = bad ? bad : "invalid parent span id (not 16 hex digits, or all zero)";
        s.has_parent = 1;
    }
    json_t *name = json_object_get(js, "name");
    if (name && !json_is_string(name))
        malformed = 1;
    s.name = name ? jstr(name) : (fl_otlp_str_t){"", 0};
    json_t *kind = json_object_get(js, "kind");
    if (json_is_integer(kind))
        s.kind = kind_of((uint64_t)json_integer_value(kind));
    else if (json_is_string(kind)) {
        static const char *names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                      "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                      "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
        for (uint64_t i = 0; i < 6; i++)
            if (strcmp(json_string_value(kind), names[i]) == 0)
                s.kind = kind_of(i);
    } else if (kind)
        malformed = 1;
    json_t *t0 = json_object_get(js, "startTimeUnixNano"),
           *t1 = json_object_get(js, "endTimeUnixNano");
    if ((t0 && !json_u64(t0, &s.start_unix_ns)) || (t1 && !json_u64(t1, &s.end_unix_ns)))
        malformed = 1;
    json_t *attrs = json_list(js, "attributes", &malformed), *a;
    size_t i;
    json_array_foreach(attrs, i, a)
    {
        fl_otlp_attr_t kv;
        if (json_kv(a, &kv) < 0) {
            malformed = 1;
            break;
        }
        if (out->nattrs < out->maxattrs)
            out->attrs[out->nattrs++] = kv;
        else
            out->dropped_attrs++;
    }
    json_t *st = json_object_get(js, "status");
    if (json_is_object(st)) {
        json_t *code = json_object_get(st, "code"), *msg = json_object_get(st, "message");
        if (json_is_integer(code))
            s.status = status_of((uint64_t)json_integer_value(code));
        else if (json_is_string(code))
            s.status = strcmp(json_string_value(code), "STATUS_CODE_OK") == 0 ? FL_STATUS_OK
                       : strcmp(json_string_value(code), "STATUS_CODE_ERROR") == 0
                           ? FL_STATUS_ERROR
                           : FL_STATUS_UNSET;
        if (json_is_string(msg))
            s.status_message = jstr(msg);
    } else if (st)
        malformed = 1;
    if (malformed) {
        out->reason = "a span field has the wrong JSON type";
        return -1;
    }
    s.nattrs = out->nattrs - s.attr0;
    keep_span(out, &s, bad);
    return 0;
}

static int json_resource_spans(json_t *rs, fl_otlp_out_t *out)
{
    int bad = 0;
    res_t res = {{"", 0}, {"", 0}};
    if (!json_is_object(rs))
        goto malformed;
    json_t *resource = json_object_get(rs, "resource"), *a, *ss, *sp;
    size_t i, j;
    if (resource && !json_is_object(resource))
        goto malformed;
    json_array_foreach(json_list(resource, "attributes", &bad), i, a)
    {
        fl_otlp_attr_t kv;
        if (json_kv(a, &kv) < 0)
            goto malformed;
        if (kv.type == FL_OTLP_V_STRING && str_is(kv.key, "service.name"))
            res.service = kv.s;
        else if (kv.type == FL_OTLP_V_STRING && str_is(kv.key, "service.instance.id"))
            res.instance = kv.s;
    }
    json_array_foreach(json_list(rs, "scopeSpans", &bad), i, ss)
    {
        if (!json_is_object(ss))
            goto malformed;
        json_array_foreach(json_list(ss, "spans", &bad), j, sp)
        {
            if (json_span(sp, &res, out) < 0)
                return -1;
        }
    }
    if (!bad)
        return 0;
malformed:
    out->reason = "resourceSpans entry is not shaped like OTLP";
    return -1;
}

int fl_otlp_decode_json(const char *data, size_t len, fl_otlp_out_t *out, void **keep)
{
    reset(out);
    *keep = NULL;
    json_error_t err;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        out->reason = "not JSON";
        return FL_EMALFORMED;
    }
    *keep = root;
    int bad = 0;
    if (!json_is_object(root)) {
        out->reason = "not a JSON object";
        return FL_EMALFORMED;
    }
    json_t *list = json_list(root, "resourceSpans", &bad), *rs;
    if (bad) {
        out->reason = "resourceSpans is not a list";
        return FL_EMALFORMED;
    }
    size_t i;
    json_array_foreach(list, i, rs)
    {
        if (json_resource_spans(rs, out) < 0)
            return FL_EMALFORMED;
    }
    return 0;
}

void fl_otlp_json_free(void *keep)
{
    json_decref(keep);
}

/* ------------------------------------------------------------ responses ---- */

size_t fl_otlp_response_pb(uint64_t rejected, const char *msg, uint8_t *buf, size_t n)
{
    if (!rejected && !(msg && *msg))
        return 0;
    size_t mlen = msg ? strlen(msg) : 0;
    if (mlen > 100)
        mlen = 100; /* one-byte lengths below */
    uint8_t inner[128];
    size_t k = 0;
    if (rejected) {
        inner[k++] = 0x08; /* rejected_spans, varint */
        uint64_t v = rejected;
        do {
            inner[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
    }
    if (mlen) {
        inner[k++] = 0x12; /* error_message, length-delimited */
        inner[k++] = (uint8_t)mlen;
        memcpy(inner + k, msg, mlen);
        k += mlen;
    }
    if (n < k + 2)
        return 0;
    buf[0] = 0x0a; /* partial_success, length-delimited */
    buf[1] = (uint8_t)k;
    memcpy(buf + 2, inner, k);
    return k + 2;
}

size_t fl_otlp_response_json(uint64_t rejected, const char *msg, char *buf, size_t n)
{
    int w;
    if (!rejected && !(msg && *msg))
        w = snprintf(buf, n, "{}");
    else {
        json_t *m = json_string(msg ? msg : "");
        char *quoted = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
        json_decref(m);
        w = snprintf(buf, n,
                     "{\"partialSuccess\":{\"rejectedSpans\":\"%llu\",\"errorMessage\":%s}}",
                     (unsigned long long)rejected, quoted ? quoted : "\"\"");
        free(quoted);
    }
    return w > 0 && (size_t)w < n ? (size_t)w : 0;
}

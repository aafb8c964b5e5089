/* W3C Trace Context parsing and formatting (tracectx.h). */
#include "services/runtime/tracectx.h"

#include <string.h>

#include "lib/err.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void trim_ows(const char **s, size_t *n)
{
    while (*n > 0 && is_ows((*s)[0])) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_ows((*s)[*n - 1]))
        (*n)--;
}

/* Lowercase hex digit value, or -1: uppercase is not HEXDIGLC. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool unhex(const char *s, size_t nbytes, uint8_t *out)
{
    for (size_t i = 0; i < nbytes; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool fl_trace_id_is_zero(const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (id[i])
            return false;
    return true;
}

void fl_trace_hex(const uint8_t *id, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * n] = '\0';
}

int fl_traceparent_parse(const char *s, size_t n, fl_tracectx_t *ctx)
{
    uint8_t version, trace_id[16], span_id[8], flags;
    if (!s)
        return FL_EMALFORMED;
    trim_ows(&s, &n);
    if (n < FL_TRACEPARENT_LEN || s[2] != '-' || !unhex(s, 1, &version) || version == 0xff)
        return FL_EMALFORMED;
    /* Version 00 is exactly 55 characters; a later version may add fields after a '-'. */
    if (version == 0 ? n != FL_TRACEPARENT_LEN : (n > FL_TRACEPARENT_LEN && s[55] != '-'))
        return FL_EMALFORMED;
    if (s[35] != '-' || s[52] != '-')
        return FL_EMALFORMED;
    if (!unhex(s + 3, 16, trace_id) || !unhex(s + 36, 8, span_id) || !unhex(s + 53, 1, &flags))
        return FL_EMALFORMED;
    if (fl_trace_id_is_zero(trace_id, 16) || fl_trace_id_is_zero(span_id, 8))
        return FL_EMALFORMED;
    memcpy(ctx->trace_id, trace_id, 16);
    memcpy(ctx->span_id, span_id, 8);
    ctx->flags = flags & FL_TRACE_FLAG_SAMPLED;
    ctx->remote = true;
    return 0;
}

size_t fl_traceparent_format(const fl_tracectx_t *ctx, char out[FL_TRACEPARENT_LEN + 1])
{
    memcpy(out, "00-", 3);
    fl_trace_hex(ctx->trace_id, 16, out + 3);
    out[35] = '-';
    fl_trace_hex(ctx->span_id, 8, out + 36);
    out[52] = '-';
    uint8_t flags = ctx->flags & FL_TRACE_FLAG_SAMPLED;
    fl_trace_hex(&flags, 1, out + 53);
    return FL_TRACEPARENT_LEN;
}

/* keychar of the spec, without '@' (which only separates tenant from system). */
static bool is_keychar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
           c == '/';
}

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool keychars_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_keychar(s[i]))
            return false;
    return true;
}

/* simple-key = lcalpha 0*255(keychar)
 * multi-tenant-key = tenant-id "@" system-id
 * tenant-id = (lcalpha / DIGIT) 0*240(keychar); system-id = lcalpha 0*13(keychar) */
static bool valid_key(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at)
        return n >= 1 && n <= 256 && is_lcalpha(k[0]) && keychars_only(k, n);
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    const char *sys = at + 1;
    return tn >= 1 && tn <= 241 && (is_lcalpha(k[0]) || (k[0] >= '0' && k[0] <= '9')) &&
           keychars_only(k, tn) && sn >= 1 && sn <= 14 && is_lcalpha(sys[0]) &&
           keychars_only(sys, sn);
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E.
 * Trailing spaces are OWS and were trimmed with the member, so the last one is never ' '. */
static bool valid_value(const char *v, size_t n)
{
    if (n < 1 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=')
            return false;
    }
    return true;
}

typedef struct {
    const char *p;
    size_t len;    /* the whole member, "key=value" */
    size_t keylen; /* up to the '=' */
} member_t;

/* Length of the kept members joined with ','. */
static size_t joined_len(const member_t *m, const bool *keep, size_t count)
{
    size_t total = 0, kept = 0;
    for (size_t j = 0; j < count; j++)
        if (keep[j]) {
            total += m[j].len;
            kept++;
        }
    return total + (kept ? kept - 1 : 0);
}

int fl_tracestate_parse(const char *s, size_t n, char out[FL_TRACESTATE_MAX + 1])
{
    member_t m[FL_TRACESTATE_MEMBERS];
    size_t count = 0;
    out[0] = '\0';
    if (!s)
        return 0;
    for (size_t i = 0; i <= n;) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - s) : n;
        const char *p = s + i;
        size_t len = end - i;
        i = end + 1;
        trim_ows(&p, &len);
        if (len == 0)
            continue; /* empty and whitespace-only members are allowed */
        if (count == FL_TRACESTATE_MEMBERS)
            return FL_EMALFORMED;
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return FL_EMALFORMED;
        size_t keylen = (size_t)(eq - p);
        if (!valid_key(p, keylen) || !valid_value(eq + 1, len - keylen - 1))
            return FL_EMALFORMED;
        for (size_t j = 0; j < count; j++)
            if (m[j].keylen == keylen && memcmp(m[j].p, p, keylen) == 0)
                return FL_EMALFORMED; /* one entry per key */
        m[count++] = (member_t){p, len, keylen};
    }
    /* Over the size limit: whole entries go, those over 128 characters first, then from the
     * end (the spec's truncation order). */
    bool keep[FL_TRACESTATE_MEMBERS];
    for (size_t j = 0; j < count; j++)
        keep[j] = true;
    for (size_t j = 0; j < count && joined_len(m, keep, count) > FL_TRACESTATE_MAX; j++)
        if (m[j].len > 128)
            keep[j] = false;
    for (size_t j = count; j-- > 0 && joined_len(m, keep, count) > FL_TRACESTATE_MAX;)
        keep[j] = false;
    size_t o = 0;
    for (size_t j = 0; j < count; j++) {
        if (!keep[j])
            continue;
        if (o > 0)
            out[o++] = ',';
        memcpy(out + o, m[j].p, m[j].len);
        o += m[j].len;
    }
    out[o] = '\0';
    return 0;
}

int fl_tracectx_extract(const char *traceparent, size_t tp_len, const char *tracestate,
                        size_t ts_len, fl_tracectx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    if (!traceparent)
        return FL_ENOTFOUND;
    if (fl_traceparent_parse(traceparent, tp_len, ctx) < 0)
        return FL_EMALFORMED;
    if (tracestate)
        fl_tracestate_parse(tracestate, ts_len, ctx->tracestate); /* "" when invalid */
    return 0;
}

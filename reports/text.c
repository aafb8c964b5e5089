/* Text helpers for the report writers (text.h). The escapers decode UTF-8 strictly, one
 * sequence at a time, and copy runs of harmless bytes in one append; anything else is replaced
 * by an entity or by "\xNN" text, so the output is valid UTF-8 whatever the input was. */
#include "reports/text.h"

#include <stdarg.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

/* Length (1..4) of the valid UTF-8 sequence at p[0..n), storing its code point in *cp, or 0
 * when the bytes there are not valid UTF-8: a stray continuation byte, a truncated sequence,
 * an overlong form (C0 AF for '/'), a surrogate (ED A0 80) or a value beyond U+10FFFF. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Appends "\xNN" for each of the n bytes at p. */
static int put_hex(fl_buf_t *out, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = fl_buf_reserve(out, 4 * n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        char *d = out->data + out->len;
        d[0] = '\\';
        d[1] = 'x';
        d[2] = hex[p[i] >> 4];
        d[3] = hex[p[i] & 15];
        out->len += 4;
    }
    out->data[out->len] = '\0';
    return 0;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Embeddings, overrides and isolates: they reorder what follows on screen (a log line could
 * show text that is not what the service printed). */
static int is_bidi_control(uint32_t cp)
{
    return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static const char *xml_entity(uint32_t cp, int attr)
{
    switch (cp) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&apos;";
    case '\r':
        return "&#13;"; /* a literal CR would be normalised away by the parser */
    case '\n':
        return attr ? "&#10;" : NULL;
    case '\t':
        return attr ? "&#9;" : NULL;
    }
    return NULL;
}

int fl_text_escape_xml(fl_buf_t *out, const char *s, size_t len, int attr)
{
    if (len == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t done = 0, i = 0; /* p[done..i) is waiting to be copied as is */
    int rc = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(p + i, len - i, &cp);
        const char *entity = n ? xml_entity(cp, attr) : NULL;
        int hex = !n || (!entity && cp != '\t' && cp != '\n' && is_control(cp)) || cp == 0xfffe ||
                  cp == 0xffff || is_bidi_control(cp);
        if (!entity && !hex) {
            i += n;
            continue;
        }
        if (!n)
            n = 1;
        rc = fl_buf_append(out, p + done, i - done);
        if (rc)
            goto fail;
        rc = entity ? fl_buf_puts(out, entity) : put_hex(out, p + i, n);
        if (rc)
            goto fail;
        i += n;
        done = i;
    }
    rc = fl_buf_append(out, p + done, i - done);
fail:
    return rc;
}

int fl_text_escape_term(fl_buf_t *out, const char *s, size_t len, int multiline)
{
    if (len == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t done = 0, i = 0;
    int rc = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(p + i, len - i, &cp);
        int keep = n && !is_bidi_control(cp) &&
                   (!is_control(cp) || (multiline && (cp == '\n' || cp == '\t')));
        if (keep) {
            i += n;
            continue;
        }
        if (!n)
            n = 1;
        rc = fl_buf_append(out, p + done, i - done);
        if (rc)
            goto fail;
        rc = put_hex(out, p + i, n);
        if (rc)
            goto fail;
        i += n;
        done = i;
    }
    rc = fl_buf_append(out, p + done, i - done);
fail:
    return rc;
}

int fl_text_escape_json(fl_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t done = 0, i = 0;
    int rc = 0;
    while (i < len) {
        uint32_t cp = 0;
        size_t n = utf8_decode(p + i, len - i, &cp);
        int special =
            !n || cp == '"' || cp == '\\' || is_control(cp) || cp == 0x2028 || cp == 0x2029;
        if (!special) {
            i += n;
            continue;
        }
        rc = fl_buf_append(out, p + done, i - done);
        if (rc)
            goto fail;
        if (!n) {
            char esc[6] = {'\\', '\\', 'x', hex[p[i] >> 4], hex[p[i] & 15], 0};
            rc = fl_buf_append(out, esc, 5);
            n = 1;
        } else if (cp == '"' || cp == '\\') {
            char esc[2] = {'\\', (char)cp};
            rc = fl_buf_append(out, esc, 2);
        } else if (cp == '\n') {
            rc = fl_buf_puts(out, "\\n");
        } else if (cp == '\t') {
            rc = fl_buf_puts(out, "\\t");
        } else if (cp == '\r') {
            rc = fl_buf_puts(out, "\\r");
        } else {
            rc = fl_buf_printf(out, "\\u%04x", (unsigned)cp);
        }
        if (rc)
            goto fail;
        i += n;
        done = i;
    }
    rc = fl_buf_append(out, p + done, i - done);
fail:
    return rc;
}

int fl_text_put_number(fl_buf_t *out, double v, int decimals)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    if (!(v == v))
        v = 0;
    if (v > 1e15)
        v = 1e15;
    if (v < -1e15)
        v = -1e15;
    unsigned long long scale = 1;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    int neg = v < 0;
    unsigned long long units = (unsigned long long)llround((neg ? -v : v) * (double)scale);
    unsigned long long whole = units / scale, frac = units % scale;
    int digits = decimals;
    while (digits > 0 && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (neg && units == 0)
        neg = 0;
    if (digits == 0)
        return fl_buf_printf(out, "%s%llu", neg ? "-" : "", whole);
    return fl_buf_printf(out, "%s%llu.%0*llu", neg ? "-" : "", whole, digits, frac);
}

int fl_text_put_ns(fl_buf_t *out, uint64_t ns)
{
    return fl_buf_printf(out, "%llu.%06llu", (unsigned long long)(ns / 1000000000ull),
                         (unsigned long long)(ns % 1000000000ull / 1000ull));
}

int fl_text_write_file(const char *path, const fl_buf_t *doc)
{
    int rc = 0, saved;
    FILE *f = fopen(path, "wb");
    if (!f)
        return FL_EIO;
    if (doc->len && fwrite(doc->data, 1, doc->len, f) != doc->len)
        rc = FL_EIO;
    saved = errno;
    if (fclose(f) != 0 && !rc) {
        rc = FL_EIO;
        saved = errno;
    }
    errno = saved;
    return rc;
}

int fl_text_put_seconds(fl_buf_t *out, double seconds, int decimals)
{
    if (decimals < 1)
        decimals = 1;
    if (decimals > 3)
        decimals = 3;
    unsigned long long scale = decimals == 1 ? 10 : decimals == 2 ? 100 : 1000;
    double v = seconds >= 0 ? seconds : 0; /* false for NaN too */
    if (v > 1e12)
        v = 1e12;
    unsigned long long units = (unsigned long long)llround(v * (double)scale);
    /* integer arithmetic: printf's %f would follow LC_NUMERIC and print "1,234" */
    return fl_buf_printf(out, "%llu.%0*llu", units / scale, decimals, units % scale);
}

size_t fl_text_failure_end(const fl_scenario_result_t *r)
{
    if (r->verdict != FL_VERDICT_FAIL)
        return r->nevents;
    size_t first = r->nevents;
    for (size_t i = 0; i < r->nevents; i++) {
        const fl_event_t *ev = &r->events[i];
        if (ev->kind != FL_EV_ASSERT || ev->ok)
            continue;
        if (r->where && ev->where && strcmp(ev->where, r->where) == 0)
            return i + 1;
        if (first == r->nevents)
            first = i;
    }
    return first == r->nevents ? r->nevents : first + 1;
}

const char *fl_text_kind_name(fl_event_kind_t kind)
{
    switch (kind) {
    case FL_EV_PROCESS:
        return "process";
    case FL_EV_FAULT:
        return "fault";
    case FL_EV_ASSERT:
        return "assert";
    case FL_EV_NOTE:
        return "note";
    }
    return "event";
}

void fl_out_put(fl_out_t *o, const char *s)
{
    if (!o->rc)
        o->rc = fl_buf_puts(o->b, s);
}

void fl_out_putf(fl_out_t *o, const char *fmt, ...)
{
    if (o->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->rc = fl_buf_vprintf(o->b, fmt, ap);
    va_end(ap);
}

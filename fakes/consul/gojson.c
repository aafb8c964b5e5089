/* Consul is written in Go, and what clients see of its errors is Go's wording: the JSON
 * decoder's syntax and type errors, time.ParseDuration's and strconv's. This file reproduces
 * them. The syntax check is a byte-for-byte port of the state machine of encoding/json's
 * scanner (scanner.go), run as json.Decoder runs it: it stops after the first value, so
 * trailing bytes are ignored, an empty body is "EOF" and a truncated one "unexpected EOF".
 * Valid input is then parsed with jansson, and fields are read the way Go fills a struct. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fakes/consul/internal.h"

/* ------------------------------------------------------------ the syntax check ---- */

enum {
    S_VALUE,          /* stateBeginValue */
    S_VALUE_OR_EMPTY, /* stateBeginValueOrEmpty: after '[' */
    S_STRING_OR_EMPTY,
    S_KEY, /* stateBeginString */
    S_END_VALUE,
    S_STR,
    S_STR_ESC,
    S_STR_U1,
    S_STR_U2,
    S_STR_U3,
    S_STR_U4,
    S_NEG,
    S_1,
    S_0,
    S_DOT,
    S_DOT0,
    S_E,
    S_ESIGN,
    S_E0,
    S_LIT, /* inside true/false/null: lit points at the bytes still expected */
    S_DONE,
};

#define MAX_DEPTH 10000

typedef struct {
    int state;
    const char *lit;     /* S_LIT: the rest of the literal */
    const char *litname; /* "true", "false", "null" */
    char *stack;         /* 'o' object key, 'v' object value, 'a' array */
    size_t depth, cap;
    fl_buf_t *err;
} scan_t;

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* strconv.IsPrint for U+0080..U+00FF */
static int latin1_printable(unsigned c)
{
    return c >= 0xa1 && c != 0xad;
}

/* encoding/json's quoteChar: how a bad byte is shown. */
static void quote_char(fl_buf_t *b, unsigned char c)
{
    static const char *const esc[] = {
        ['\a'] = "\\a", ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n",
        ['\r'] = "\\r", ['\t'] = "\\t", ['\v'] = "\\v"};
    if (c == '\'') {
        fl_buf_puts(b, "'\\''");
    } else if (c == '"') {
        fl_buf_puts(b, "'\"'");
    } else if (c < sizeof esc / sizeof esc[0] && esc[c]) {
        fl_buf_printf(b, "'%s'", esc[c]);
    } else if (c < 0x20 || c == 0x7f) {
        fl_buf_printf(b, "'\\x%02x'", c);
    } else if (c < 0x80) {
        fl_buf_printf(b, "'%c'", c);
    } else if (!latin1_printable(c)) {
        fl_buf_printf(b, "'\\u%04x'", c);
    } else { /* the byte as a rune, in UTF-8 */
        fl_buf_printf(b, "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    }
}

static int scan_error(scan_t *s, unsigned char c, const char *context)
{
    fl_buf_puts(s->err, "invalid character ");
    quote_char(s->err, c);
    fl_buf_printf(s->err, " %s", context);
    return -1;
}

static int push(scan_t *s, char kind)
{
    if (s->depth >= MAX_DEPTH) {
        fl_buf_puts(s->err, "exceeded max depth");
        return -1;
    }
    if (s->depth == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        char *n = realloc(s->stack, cap);
        if (!n) {
            fl_buf_puts(s->err, "out of memory");
            return -1;
        }
        s->stack = n;
        s->cap = cap;
    }
    s->stack[s->depth++] = kind;
    return 0;
}

static int begin_value(scan_t *s, unsigned char c)
{
    if (is_space(c))
        return 0;
    switch (c) {
    case '{':
        s->state = S_STRING_OR_EMPTY;
        return push(s, 'o');
    case '[':
        s->state = S_VALUE_OR_EMPTY;
        return push(s, 'a');
    case '"':
        s->state = S_STR;
        return 0;
    case '-':
        s->state = S_NEG;
        return 0;
    case '0':
        s->state = S_0;
        return 0;
    case 't':
    case 'f':
    case 'n':
        s->state = S_LIT;
        s->litname = c == 't' ? "true" : c == 'f' ? "false" : "null";
        s->lit = s->litname + 1;
        return 0;
    }
    if (c >= '1' && c <= '9') {
        s->state = S_1;
        return 0;
    }
    return scan_error(s, c, "looking for beginning of value");
}

static int end_value(scan_t *s, unsigned char c)
{
    if (s->depth == 0) {
        s->state = S_DONE; /* the Decoder stops here: the rest is not its business */
        return 0;
    }
    if (is_space(c)) {
        s->state = S_END_VALUE;
        return 0;
    }
    char *top = &s->stack[s->depth - 1];
    if (*top == 'o') {
        if (c == ':') {
            *top = 'v';
            s->state = S_VALUE;
            return 0;
        }
        return scan_error(s, c, "after object key");
    }
    if (*top == 'v') {
        if (c == ',') {
            *top = 'o';
            s->state = S_KEY;
            return 0;
        }
        if (c == '}') {
            s->depth--;
            return end_value(s, ' ');
        }
        return scan_error(s, c, "after object key:value pair");
    }
    if (c == ',') {
        s->state = S_VALUE;
        return 0;
    }
    if (c == ']') {
        s->depth--;
        return end_value(s, ' ');
    }
    return scan_error(s, c, "after array element");
}

static int step_number(scan_t *s, unsigned char c)
{
    int digit = c >= '0' && c <= '9';
    switch (s->state) {
    case S_NEG:
        if (c == '0') {
            s->state = S_0;
            return 0;
        }
        if (digit) {
            s->state = S_1;
            return 0;
        }
        return scan_error(s, c, "in numeric literal");
    case S_1: /* then as state0 */
        if (digit)
            return 0;
        /* fall through */
    case S_0:
        if (c == '.') {
            s->state = S_DOT;
            return 0;
        }
        if (c == 'e' || c == 'E') {
            s->state = S_E;
            return 0;
        }
        return end_value(s, c);
    case S_DOT:
        if (digit) {
            s->state = S_DOT0;
            return 0;
        }
        return scan_error(s, c, "after decimal point in numeric literal");
    case S_DOT0:
        if (digit)
            return 0;
        if (c == 'e' || c == 'E') {
            s->state = S_E;
            return 0;
        }
        return end_value(s, c);
    case S_E: /* then as stateESign */
        if (c == '+' || c == '-') {
            s->state = S_ESIGN;
            return 0;
        }
        /* fall through */
    case S_ESIGN:
        if (digit) {
            s->state = S_E0;
            return 0;
        }
        return scan_error(s, c, "in exponent of numeric literal");
    default: /* S_E0 */
        if (digit)
            return 0;
        return end_value(s, c);
    }
}

static int step_string(scan_t *s, unsigned char c)
{
    switch (s->state) {
    case S_STR:
        if (c == '"') {
            s->state = S_END_VALUE;
            return 0;
        }
        if (c == '\\') {
            s->state = S_STR_ESC;
            return 0;
        }
        if (c < 0x20)
            return scan_error(s, c, "in string literal");
        return 0;
    case S_STR_ESC:
        if (strchr("bfnrt\\/\"", c) && c) {
            s->state = S_STR;
            return 0;
        }
        if (c == 'u') {
            s->state = S_STR_U1;
            return 0;
        }
        return scan_error(s, c, "in string escape code");
    default: /* S_STR_U1..4 */
        if (!isxdigit(c))
            return scan_error(s, c, "in \\u hexadecimal character escape");
        s->state = s->state == S_STR_U4 ? S_STR : s->state + 1;
        return 0;
    }
}

static int step(scan_t *s, unsigned char c)
{
    switch (s->state) {
    case S_VALUE:
        return begin_value(s, c);
    case S_VALUE_OR_EMPTY:
        if (is_space(c))
            return 0;
        if (c == ']') {
            s->depth--;
            return end_value(s, ' ');
        }
        return begin_value(s, c);
    case S_STRING_OR_EMPTY:
        if (is_space(c))
            return 0;
        if (c == '}') {
            s->depth--;
            return end_value(s, ' ');
        }
        /* fall through */
    case S_KEY:
        if (is_space(c)) {
            s->state = S_KEY;
            return 0;
        }
        if (c == '"') {
            s->state = S_STR;
            return 0;
        }
        return scan_error(s, c, "looking for beginning of object key string");
    case S_END_VALUE:
        return end_value(s, c);
    case S_STR:
    case S_STR_ESC:
    case S_STR_U1:
    case S_STR_U2:
    case S_STR_U3:
    case S_STR_U4:
        return step_string(s, c);
    case S_LIT:
        if (c != (unsigned char)*s->lit) {
            char ctx[64];
            snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", s->litname, *s->lit);
            return scan_error(s, c, ctx);
        }
        if (!*++s->lit)
            s->state = S_END_VALUE;
        return 0;
    default:
        return step_number(s, c);
    }
}

/* 0 when buf starts with a complete JSON value (by Go's rules), else -1 and err. */
static int go_json_syntax(const char *buf, size_t len, fl_buf_t *err)
{
    scan_t s = {.state = S_VALUE, .err = err};
    int nonspace = 0, rc = 0;
    size_t i;
    for (i = 0; i < len && s.state != S_DONE; i++) {
        unsigned char c = (unsigned char)buf[i];
        nonspace |= !is_space(c);
        if ((rc = step(&s, c)) < 0)
            break;
    }
    if (rc == 0 && s.state != S_DONE) {
        /* At EOF the Decoder steps once more with a space: a top-level number ends there. */
        int pending_number =
            s.depth == 0 && (s.state == S_1 || s.state == S_0 || s.state == S_DOT0 ||
                             s.state == S_E0 || s.state == S_END_VALUE);
        if (!pending_number) {
            fl_buf_puts(err, nonspace ? "unexpected EOF" : "EOF");
            rc = -1;
        }
    }
    free(s.stack);
    return rc;
}

json_t *go_json_parse(const char *body, size_t len, fl_buf_t *err)
{
    if (go_json_syntax(body, len, err) < 0)
        return NULL;
    json_error_t jerr;
    json_t *j =
        json_loadb(body, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &jerr);
    if (!j)
        fl_buf_puts(err, jerr.text); /* valid for Go, not for jansson: a huge integer */
    return j;
}

/* ------------------------------------------------------------ struct fields ---- */

const json_t *go_field(const json_t *obj, const char *name)
{
    const json_t *exact = json_object_get(obj, name), *loose = NULL;
    if (exact)
        return exact;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, name) == 0)
            loose = v;
    }
    return loose;
}

/* What Go calls a JSON value in its type errors. */
static void value_desc(const json_t *v, char *out, size_t n)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(out, n, "string");
        break;
    case JSON_INTEGER:
        snprintf(out, n, "number %lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(out, n, "number %.17g", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        snprintf(out, n, "bool");
        break;
    case JSON_ARRAY:
        snprintf(out, n, "array");
        break;
    default:
        snprintf(out, n, "object");
    }
}

/* Records an UnmarshalTypeError. Go names a number by its literal only for numeric targets. */
static void type_error(godec_t *d, const json_t *v, const char *field, const char *type,
                       int numeric_target)
{
    if (d->err.len)
        return;
    char desc[64];
    value_desc(v, desc, sizeof desc);
    if (!numeric_target && strncmp(desc, "number", 6) == 0)
        desc[6] = '\0';
    fl_buf_printf(&d->err, "json: cannot unmarshal %s into Go struct field %s.%s of type %s", desc,
                  d->st ? d->st : "", field, type);
}

static const json_t *present(const json_t *obj, const char *field)
{
    const json_t *v = obj ? go_field(obj, field) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

void go_string(godec_t *d, const json_t *obj, const char *field, const char **out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (json_is_string(v))
        *out = json_string_value(v);
    else
        type_error(d, v, field, "string", 0);
}

void go_int(godec_t *d, const json_t *obj, const char *field, long long *out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (json_is_integer(v))
        *out = (long long)json_integer_value(v);
    else
        type_error(d, v, field, "int", 1);
}

void go_bool(godec_t *d, const json_t *obj, const char *field, int *out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (json_is_boolean(v))
        *out = json_is_true(v);
    else
        type_error(d, v, field, "bool", 0);
}

void go_strings(godec_t *d, const json_t *obj, const char *field, json_t **out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (!json_is_array(v)) {
        type_error(d, v, field, "[]string", 0);
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach((json_t *)v, i, e)
    {
        if (!json_is_string(e) && !json_is_null(e)) {
            type_error(d, e, field, "string", 0);
            return;
        }
    }
    json_decref(*out);
    *out = json_incref((json_t *)v);
}

void go_strmap(godec_t *d, const json_t *obj, const char *field, json_t **out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (!json_is_object(v)) {
        type_error(d, v, field, "map[string]string", 0);
        return;
    }
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        if (!json_is_string(e) && !json_is_null(e)) {
            type_error(d, e, field, "string", 0);
            return;
        }
    }
    json_decref(*out);
    *out = json_incref((json_t *)v);
}

void go_strsmap(godec_t *d, const json_t *obj, const char *field, json_t **out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (!json_is_object(v)) {
        type_error(d, v, field, "map[string][]string", 0);
        return;
    }
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        if (!json_is_array(e) && !json_is_null(e)) {
            type_error(d, e, field, "[]string", 0);
            return;
        }
        size_t i;
        json_t *s;
        json_array_foreach(e, i, s)
        {
            if (!json_is_string(s)) {
                type_error(d, s, field, "string", 0);
                return;
            }
        }
    }
    json_decref(*out);
    *out = json_incref((json_t *)v);
}

void go_object(godec_t *d, const json_t *obj, const char *field, const char *type,
               const json_t **out)
{
    const json_t *v = present(obj, field);
    if (!v)
        return;
    if (json_is_object(v))
        *out = v;
    else
        type_error(d, v, field, type, 0);
}

int go_duration_field(godec_t *d, const json_t *obj, const char *field, long long *ns)
{
    const json_t *v = present(obj, field);
    if (!v)
        return 0;
    if (json_is_number(v)) {
        *ns = (long long)json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return 0;
    fl_buf_t msg = FL_BUF_INIT;
    int rc = go_parse_duration(json_string_value(v), ns, &msg);
    if (rc && !d->err.len)
        fl_buf_puts(&d->err, msg.data);
    fl_buf_free(&msg);
    return rc;
}

void go_expect_object(godec_t *d, const json_t *v, const char *type)
{
    if (json_is_object(v) || json_is_null(v) || d->err.len)
        return;
    char desc[64];
    value_desc(v, desc, sizeof desc);
    if (strncmp(desc, "number", 6) == 0)
        desc[6] = '\0';
    fl_buf_printf(&d->err, "json: cannot unmarshal %s into Go value of type %s", desc, type);
}

/* ------------------------------------------------------------ strings out ---- */

/* The length of the valid UTF-8 sequence at s (at most n bytes), 0 if there is none: Go's
 * utf8.DecodeRune without the decoding (no overlong forms, surrogates or code points past
 * U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

json_t *go_json_stringn(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    fl_buf_t b = FL_BUF_INIT;
    int rc = fl_buf_reserve(&b, n + 1);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; !rc && i < n;) {
        size_t len = utf8_len(p + i, n - i);
        rc = len ? fl_buf_append(&b, p + i, len) : fl_buf_puts(&b, "\xef\xbf\xbd");
        i += len ? len : 1;
    }
    j = rc ? NULL : json_stringn(b.data ? b.data : "", b.len);
    fl_buf_free(&b);
    return j;
}

/* ------------------------------------------------------------ time and strconv ---- */

/* time's quote(): ASCII as is ('"' and '\\' escaped), every other byte as \xHH. */
static void time_quote(fl_buf_t *b, const char *s, size_t n)
{
    fl_buf_puts(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < ' ' || c >= 0x80)
            fl_buf_printf(b, "\\x%02x", c);
        else if (c == '"' || c == '\\')
            fl_buf_printf(b, "\\%c", c);
        else
            fl_buf_printf(b, "%c", c);
    }
    fl_buf_puts(b, "\"");
}

static int dur_error(fl_buf_t *err, const char *what, const char *orig)
{
    if (err) {
        fl_buf_puts(err, what);
        time_quote(err, orig, strlen(orig));
    }
    return -1;
}

static unsigned long long unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *name;
        unsigned long long ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 */
        {"\xce\xbcs", 1000},                                            /* U+03BC */
        {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

int go_parse_duration(const char *orig, long long *ns, fl_buf_t *err)
{
    const char *s = orig;
    unsigned long long d = 0;
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*s)
        return dur_error(err, "time: invalid duration ", orig);
    while (*s) {
        unsigned long long v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return dur_error(err, "time: invalid duration ", orig);
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (1ull << 63) / 10)
                return dur_error(err, "time: invalid duration ", orig);
            v = v * 10 + (unsigned)(*s - '0');
            if (v > 1ull << 63)
                return dur_error(err, "time: invalid duration ", orig);
        }
        int pre = s != start, post = 0;
        if (*s == '.') {
            s++;
            int overflow = 0;
            for (; *s >= '0' && *s <= '9'; s++) {
                post = 1;
                if (overflow)
                    continue;
                if (f > (1ull << 63) / 10) {
                    overflow = 1;
                    continue;
                }
                f = f * 10 + (unsigned)(*s - '0');
                scale *= 10;
            }
        }
        if (!pre && !post)
            return dur_error(err, "time: invalid duration ", orig);
        const char *u = s;
        while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        if (s == u)
            return dur_error(err, "time: missing unit in duration ", orig);
        unsigned long long unit = unit_ns(u, (size_t)(s - u));
        if (!unit) {
            if (err) {
                fl_buf_puts(err, "time: unknown unit ");
                time_quote(err, u, (size_t)(s - u));
                fl_buf_puts(err, " in duration ");
                time_quote(err, orig, strlen(orig));
            }
            return -1;
        }
        if (v > (1ull << 63) / unit)
            return dur_error(err, "time: invalid duration ", orig);
        v *= unit;
        if (f > 0) {
            v += (unsigned long long)((double)f * ((double)unit / scale));
            if (v > 1ull << 63)
                return dur_error(err, "time: invalid duration ", orig);
        }
        d += v;
        if (d > 1ull << 63)
            return dur_error(err, "time: invalid duration ", orig);
    }
    if (neg) {
        *ns = d == 1ull << 63 ? INT64_MIN : -(long long)d;
        return 0;
    }
    if (d > (1ull << 63) - 1)
        return dur_error(err, "time: invalid duration ", orig);
    *ns = (long long)d;
    return 0;
}

/* Go's fmtFrac: the fraction v/10^prec at the tail of buf (before w), trailing zeros dropped. */
static int fmt_frac(char *buf, int w, unsigned long long *v, int prec)
{
    int print = 0;
    for (int i = 0; i < prec; i++) {
        int digit = (int)(*v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        *v /= 10;
    }
    if (print)
        buf[--w] = '.';
    return w;
}

static int fmt_int(char *buf, int w, unsigned long long v)
{
    if (v == 0)
        buf[--w] = '0';
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

void go_duration_string(long long ns, char *out)
{
    char buf[40];
    int w = (int)sizeof buf;
    unsigned long long u = ns < 0 ? -(unsigned long long)ns : (unsigned long long)ns;
    if (u < 1000000000ull) {
        int prec = 0;
        buf[--w] = 's';
        if (u == 0) {
            strcpy(out, "0s");
            return;
        } else if (u < 1000) {
            buf[--w] = 'n';
        } else if (u < 1000000) {
            prec = 3;
            buf[--w] = (char)0xb5; /* µ, U+00B5 in UTF-8 */
            buf[--w] = (char)0xc2;
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        w = fmt_frac(buf, w, &u, prec);
        w = fmt_int(buf, w, u);
    } else {
        buf[--w] = 's';
        w = fmt_frac(buf, w, &u, 9);
        w = fmt_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = fmt_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = fmt_int(buf, w, u);
            }
        }
    }
    if (ns < 0)
        buf[--w] = '-';
    memcpy(out, buf + w, sizeof buf - (size_t)w);
    out[sizeof buf - (size_t)w] = '\0';
}

int go_parse_uint(const char *s, unsigned long long *out, fl_buf_t *err)
{
    unsigned long long v = 0;
    const char *why = NULL;
    if (!*s)
        why = "invalid syntax";
    for (const char *p = s; !why && *p; p++) {
        if (*p < '0' || *p > '9')
            why = "invalid syntax";
        else if (v > (~0ull - (unsigned)(*p - '0')) / 10)
            why = "value out of range";
        else
            v = v * 10 + (unsigned)(*p - '0');
    }
    if (why) {
        if (err) {
            fl_buf_puts(err, "strconv.ParseUint: parsing ");
            /* strconv.Quote; our inputs are query values, mostly printable */
            fl_buf_puts(err, "\"");
            for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (c == '"' || c == '\\')
                    fl_buf_printf(err, "\\%c", c);
                else if (c < 0x20 || c == 0x7f)
                    fl_buf_printf(err, "\\x%02x", c);
                else
                    fl_buf_printf(err, "%c", c);
            }
            fl_buf_printf(err, "\": %s", why);
        }
        return -1;
    }
    *out = v;
    return 0;
}

int go_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

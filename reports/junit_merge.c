/* Merging JUnit shard files (report.h, `faultline merge-junit`). The inputs are files that
 * faultline's own JUnit writer produced (junit.c), so this is not a general XML parser: it
 * reads that layout (a <testsuites> root whose children are <testsuite> elements, no nested
 * suites, attribute values in double quotes) and refuses anything else with a message naming
 * the file. Suites of the same scenario file (a file split across shards) become one suite:
 * the first one's properties, every testcase in shard order, counts and times summed, the
 * earliest timestamp. The root gets the totals (tests, failures, errors, time), as junit.c
 * writes it. Element content is copied byte for byte (it is already escaped). */
#include "reports/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "reports/text.h"

#define MAX_INPUT (1024u * 1024u * 1024u) /* 1 GiB: far beyond any real report */

typedef struct {
    const char *name; /* escaped, as in the file */
    size_t namelen;
    unsigned long long tests, failures, errors, skipped, ms;
    char timestamp[32];
    const char *props; /* "<properties>...</properties>", or NULL */
    size_t propslen;
    fl_buf_t cases; /* the testcases, as text */
} suite_t;

typedef struct {
    suite_t *s;
    size_t n;
    char *err;
    size_t errlen;
    const char *path; /* the input being read, for messages */
} merge_t;

static int bad(merge_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(merge_t *m, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(m->err, m->errlen, "%s: not a faultline JUnit file: %s", m->path, what);
    return FL_ESYNTAX;
}

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return FL_EIO;
    fl_buf_t b = FL_BUF_INIT;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = b.len + n > MAX_INPUT ? FL_ETOOBIG : fl_buf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = FL_EIO;
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc) {
        fl_buf_free(&b);
        return rc;
    }
    if (!b.data && fl_buf_puts(&b, "") != 0)
        return FL_ENOMEM;
    *out = b.data;
    *len = b.len;
    return 0;
}

/* The value of attribute name in the start tag tag[0..len), or NULL. */
static const char *get_attr(const char *tag, size_t len, const char *name, size_t *vlen)
{
    char pat[40];
    snprintf(pat, sizeof pat, " %s=\"", name);
    size_t pl = strlen(pat);
    for (size_t i = 0; i + pl <= len; i++) {
        if (memcmp(tag + i, pat, pl) != 0)
            continue;
        const char *v = tag + i + pl, *end = memchr(v, '"', len - i - pl);
        if (!end)
            return NULL;
        *vlen = (size_t)(end - v);
        return v;
    }
    return NULL;
}

static int get_count(const char *tag, size_t len, const char *name, unsigned long long *out)
{
    size_t vl;
    const char *v = get_attr(tag, len, name, &vl);
    if (!v || vl == 0 || vl > 18)
        return -1;
    unsigned long long n = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (unsigned)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* "12.345" → 12345 (ms); up to 3 decimals. */
static int get_ms(const char *tag, size_t len, const char *name, unsigned long long *out)
{
    size_t vl, i = 0;
    const char *v = get_attr(tag, len, name, &vl);
    if (!v || vl == 0 || vl > 24)
        return -1;
    unsigned long long whole = 0, frac = 0;
    int digits = 0;
    for (; i < vl && v[i] >= '0' && v[i] <= '9'; i++)
        whole = whole * 10 + (unsigned)(v[i] - '0');
    if (i < vl && v[i] == '.')
        for (i++; i < vl && v[i] >= '0' && v[i] <= '9'; i++)
            if (digits < 3) {
                frac = frac * 10 + (unsigned)(v[i] - '0');
                digits++;
            }
    if (i != vl)
        return -1;
    while (digits++ < 3)
        frac *= 10;
    *out = whole * 1000 + frac;
    return 0;
}

static suite_t *find_suite(merge_t *m, const char *name, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->s[i].namelen == len && memcmp(m->s[i].name, name, len) == 0)
            return &m->s[i];
    return NULL;
}

/* Every <testsuite> of one document. The documents stay alive until the output is built
 * (names and properties point into them). */
static int read_suites(merge_t *m, const char *doc, size_t len)
{
    const char *root = strstr(doc, "<testsuites");
    if (!root || strncmp(doc, "<?xml", 5) != 0)
        return bad(m, "no <?xml ...?> declaration followed by a <testsuites> root");
    const char *p = strchr(root, '>');
    const char *end = NULL;
    for (const char *q = doc; (q = strstr(q, "</testsuites>")); q++)
        end = q;
    if (!p || !end || end < p)
        return bad(m, "the <testsuites> root is not closed");
    p++;
    for (;;) {
        const char *open = strstr(p, "<testsuite ");
        if (!open || open > end)
            break;
        const char *tag_end = strchr(open, '>');
        if (!tag_end || tag_end > end)
            return bad(m, "a <testsuite> start tag is not closed");
        size_t taglen = (size_t)(tag_end - open);
        int empty = tag_end[-1] == '/';
        const char *body = tag_end + 1, *close = body;
        if (!empty) {
            close = strstr(body, "</testsuite>");
            if (!close || close > end)
                return bad(m, "a <testsuite> is not closed");
        }
        size_t nl;
        const char *name = get_attr(open, taglen, "name", &nl);
        unsigned long long tests, failures, errors, skipped = 0, ms;
        if (!name || get_count(open, taglen, "tests", &tests) ||
            get_count(open, taglen, "failures", &failures) ||
            get_count(open, taglen, "errors", &errors) || get_ms(open, taglen, "time", &ms))
            return bad(m, "a <testsuite> lacks name, tests, failures, errors or time");
        get_count(open, taglen, "skipped", &skipped);
        size_t tl = 0;
        const char *ts = get_attr(open, taglen, "timestamp", &tl);

        suite_t *s = find_suite(m, name, nl);
        if (!s) {
            suite_t *more = realloc(m->s, (m->n + 1) * sizeof *more);
            if (!more)
                return FL_ENOMEM;
            m->s = more;
            s = &m->s[m->n++];
            memset(s, 0, sizeof *s);
            s->name = name;
            s->namelen = nl;
        }
        s->tests += tests;
        s->failures += failures;
        s->errors += errors;
        s->skipped += skipped;
        s->ms += ms;
        if (ts && tl < sizeof s->timestamp &&
            (!s->timestamp[0] || strncmp(ts, s->timestamp, tl) < 0)) {
            memcpy(s->timestamp, ts, tl);
            s->timestamp[tl] = '\0';
        }
        /* the body: properties (kept from the first shard), then testcases */
        const char *cases = body;
        const char *props = strstr(body, "<properties>");
        if (props && props < close) {
            const char *pe = strstr(props, "</properties>");
            if (!pe || pe > close)
                return bad(m, "<properties> is not closed");
            pe += strlen("</properties>");
            if (!s->props) {
                s->props = props;
                s->propslen = (size_t)(pe - props);
            }
            cases = pe;
        }
        while (cases < close && (*cases == '\n' || *cases == ' '))
            cases++;
        const char *ce = close;
        while (ce > cases && (ce[-1] == ' '))
            ce--;
        if (ce > cases) {
            int rc = fl_buf_puts(&s->cases, "    ");
            if (!rc)
                rc = fl_buf_append(&s->cases, cases, (size_t)(ce - cases));
            if (rc)
                return rc;
        }
        p = empty ? tag_end + 1 : close + strlen("</testsuite>");
    }
    return 0;
}

static void put_ms(fl_buf_t *b, unsigned long long ms)
{
    fl_buf_printf(b, "%llu.%03llu", ms / 1000, ms % 1000);
}

int fl_junit_merge(const char *out_path, char *const *in_paths, size_t nin, char *err,
                   size_t errlen)
{
    merge_t m = {NULL, 0, err, errlen, NULL};
    char **docs = calloc(nin ? nin : 1, sizeof *docs);
    fl_buf_t out = FL_BUF_INIT;
    int rc = docs ? 0 : FL_ENOMEM;
    err[0] = '\0';
    for (size_t i = 0; !rc && i < nin; i++) {
        size_t len;
        m.path = in_paths[i];
        rc = read_file(in_paths[i], &docs[i], &len);
        if (rc == FL_EIO) {
            snprintf(err, errlen, "%s: cannot read: %s", in_paths[i], strerror(errno));
            break;
        }
        if (!rc && memchr(docs[i], '\0', len))
            rc = bad(&m, "it holds a NUL byte");
        if (!rc)
            rc = read_suites(&m, docs[i], len);
    }
    unsigned long long tests = 0, failures = 0, errors = 0, ms = 0;
    for (size_t i = 0; !rc && i < m.n; i++) {
        tests += m.s[i].tests;
        failures += m.s[i].failures;
        errors += m.s[i].errors;
        ms += m.s[i].ms;
    }
    if (!rc) {
        fl_buf_printf(&out,
                      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"faultline\" "
                      "tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" time=\"",
                      tests, failures, errors);
        put_ms(&out, ms);
        fl_buf_puts(&out, "\">\n");
        for (size_t i = 0; i < m.n; i++) {
            suite_t *s = &m.s[i];
            fl_buf_puts(&out, "  <testsuite name=\"");
            fl_buf_append(&out, s->name, s->namelen);
            fl_buf_printf(&out,
                          "\" tests=\"%llu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\" "
                          "time=\"",
                          s->tests, s->failures, s->errors, s->skipped);
            put_ms(&out, s->ms);
            fl_buf_printf(&out, "\" timestamp=\"%s\" hostname=\"merged\" id=\"%zu\">\n",
                          s->timestamp[0] ? s->timestamp : "1970-01-01T00:00:00", i);
            if (s->props) {
                fl_buf_puts(&out, "    ");
                fl_buf_append(&out, s->props, s->propslen);
                fl_buf_puts(&out, "\n");
            } else {
                fl_buf_puts(&out, "    <properties/>\n");
            }
            if (s->cases.len)
                fl_buf_append(&out, s->cases.data, s->cases.len);
            fl_buf_puts(&out, "  </testsuite>\n");
        }
        if (fl_buf_puts(&out, "</testsuites>\n") != 0)
            rc = FL_ENOMEM;
    }
    if (!rc) {
        rc = fl_text_write_file(out_path, &out);
        if (rc)
            snprintf(err, errlen, "%s: cannot write: %s", out_path, strerror(errno));
    }
    if (rc && !err[0])
        snprintf(err, errlen, "%s", fl_strerror(rc));
    for (size_t i = 0; i < m.n; i++)
        fl_buf_free(&m.s[i].cases);
    free(m.s);
    for (size_t i = 0; docs && i < nin; i++)
        free(docs[i]);
    free(docs);
    fl_buf_free(&out);
    return rc;
}

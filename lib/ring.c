/* Fixed-capacity byte ring (ring.h). */
#include "lib/ring.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

int fl_ring_init(fl_ring_t *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->data = malloc(cap ? cap : 1);
    if (!r->data)
        return FL_ENOMEM;
    r->cap = cap ? cap : 1;
    return 0;
}

void fl_ring_write(fl_ring_t *r, const void *data, size_t len)
{
    const char *p = data;
    r->total += len;
    if (len >= r->cap) { /* only the last cap bytes can survive */
        memcpy(r->data, p + len - r->cap, r->cap);
        r->start = 0;
        r->len = r->cap;
        return;
    }
    size_t end = (r->start + r->len) % r->cap;
    size_t first = len < r->cap - end ? len : r->cap - end;
    memcpy(r->data + end, p, first);
    memcpy(r->data, p + first, len - first);
    if (r->len + len > r->cap) {
        size_t drop = r->len + len - r->cap;
        r->start = (r->start + drop) % r->cap;
        r->len = r->cap;
    } else {
        r->len += len;
    }
}

char *fl_ring_tail(const fl_ring_t *r, size_t max, size_t *outlen)
{
    size_t n = (max && max < r->len) ? max : r->len;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t from = (r->start + r->len - n) % r->cap;
    size_t first = n < r->cap - from ? n : r->cap - from;
    memcpy(out, r->data + from, first);
    memcpy(out + first, r->data, n - first);
    out[n] = '\0';
    if (outlen)
        *outlen = n;
    return out;
}

int fl_ring_truncated(const fl_ring_t *r)
{
    return r->total > r->len;
}

void fl_ring_reset(fl_ring_t *r)
{
    r->start = r->len = 0;
    r->total = 0;
}

void fl_ring_free(fl_ring_t *r)
{
    free(r->data);
    r->data = NULL;
    r->cap = r->len = 0;
}

/* The log-linear histogram of hdr.h. Bucket layout (M = 128 sub-buckets):
 *   v < 2M                       bucket v (exact)
 *   v in [2^k, 2^(k+1)), k >= 8  shift s = k - 7; bucket (s + 1) * M + (v >> s) - M
 * so consecutive powers of two follow each other with no gap, and a bucket's width over its
 * lowest value is at most 1/M. */
#include "lib/hdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

#define M (UINT64_C(1) << FL_HDR_SUB_BITS)

size_t fl_hdr_bucket(uint64_t v)
{
    if (v > FL_HDR_MAX)
        v = FL_HDR_MAX;
    if (v < 2 * M)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - FL_HDR_SUB_BITS;
    return (size_t)((uint64_t)(shift + 1) * M + (v >> shift) - M);
}

uint64_t fl_hdr_bucket_low(size_t idx)
{
    if (idx < 2 * M)
        return idx;
    uint64_t shift = idx / M - 1, sub = idx % M + M;
    return sub << shift;
}

uint64_t fl_hdr_bucket_high(size_t idx)
{
    if (idx < 2 * M)
        return idx;
    uint64_t shift = idx / M - 1, sub = idx % M + M;
    return ((sub + 1) << shift) - 1;
}

int fl_hdr_init(fl_hdr_t *h)
{
    memset(h, 0, sizeof *h);
    h->counts = calloc(FL_HDR_BUCKETS, sizeof *h->counts);
    if (!h->counts)
        return FL_ENOMEM;
    h->min = UINT64_MAX;
    return 0;
}

void fl_hdr_free(fl_hdr_t *h)
{
    free(h->counts);
    h->counts = NULL;
}

void fl_hdr_reset(fl_hdr_t *h)
{
    if (h->total)
        memset(h->counts, 0, FL_HDR_BUCKETS * sizeof *h->counts);
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
}

void fl_hdr_record(fl_hdr_t *h, uint64_t v)
{
    if (v > FL_HDR_MAX)
        v = FL_HDR_MAX;
    h->counts[fl_hdr_bucket(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void fl_hdr_merge(fl_hdr_t *dst, const fl_hdr_t *src)
{
    if (!src->total)
        return;
    for (size_t i = 0; i < FL_HDR_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t fl_hdr_quantile(const fl_hdr_t *h, double q)
{
    if (!h->total)
        return 0;
    if (!(q > 0)) /* also NaN */
        return h->min;
    if (q >= 1)
        return h->max;
    uint64_t rank = (uint64_t)ceil(q * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < FL_HDR_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t lo = fl_hdr_bucket_low(i), hi = fl_hdr_bucket_high(i);
        uint64_t v = lo + (hi - lo) / 2;
        if (v < h->min)
            v = h->min;
        if (v > h->max)
            v = h->max;
        return v;
    }
    return h->max;
}

double fl_hdr_mean(const fl_hdr_t *h)
{
    return h->total ? h->sum / (double)h->total : 0;
}

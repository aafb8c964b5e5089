/* An HDR-style latency histogram: log-linear buckets over unsigned 64-bit values (nanoseconds
 * in the load generator), with a fixed relative precision and constant-time recording. Values
 * below 256 are counted exactly; above, each power of two is split into 128 buckets, so a
 * reported quantile is within 1/256 of the true one (the bucket's midpoint is reported, and
 * clamped to the exact minimum and maximum). Values above FL_HDR_MAX count as FL_HDR_MAX.
 * Pure: no I/O, one allocation per histogram. */
#ifndef FL_HDR_H
#define FL_HDR_H

#include <stddef.h>
#include <stdint.h>

#define FL_HDR_SUB_BITS 7
#define FL_HDR_MAX_BITS 42 /* ~73 minutes in ns */
#define FL_HDR_MAX ((UINT64_C(1) << FL_HDR_MAX_BITS) - 1)
/* (shifts 1..MAX_BITS-SUB_BITS-1, plus the exact range) x 128 */
#define FL_HDR_BUCKETS ((FL_HDR_MAX_BITS - FL_HDR_SUB_BITS + 1) << FL_HDR_SUB_BITS)

typedef struct {
    uint64_t *counts; /* FL_HDR_BUCKETS of them */
    uint64_t total;
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    double sum;        /* for the mean */
} fl_hdr_t;

/* 0 or FL_ENOMEM. */
int fl_hdr_init(fl_hdr_t *h);
void fl_hdr_free(fl_hdr_t *h);
/* Forgets every value (keeps the memory). */
void fl_hdr_reset(fl_hdr_t *h);
void fl_hdr_record(fl_hdr_t *h, uint64_t v);
/* Adds every value of src to dst. */
void fl_hdr_merge(fl_hdr_t *dst, const fl_hdr_t *src);
/* The value at quantile q (0..1): the smallest recorded value v such that at least
 * ceil(q * total) values are <= v (q = 0: the minimum), to within the histogram's precision.
 * 0 when empty. */
uint64_t fl_hdr_quantile(const fl_hdr_t *h, double q);
double fl_hdr_mean(const fl_hdr_t *h);

/* The bucket of v and the lowest and highest value that bucket holds (for tests). */
size_t fl_hdr_bucket(uint64_t v);
uint64_t fl_hdr_bucket_low(size_t idx);
uint64_t fl_hdr_bucket_high(size_t idx);

#endif

/* A byte ring of fixed capacity that keeps the most recent bytes written to it: how the
 * supervisor keeps the tail of what each instance printed, with bounded memory. */
#ifndef FL_RING_H
#define FL_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t cap;
    size_t start;   /* index of the oldest byte */
    size_t len;     /* bytes held, at most cap */
    uint64_t total; /* bytes ever written */
} fl_ring_t;

/* Returns 0 or FL_ENOMEM. */
int fl_ring_init(fl_ring_t *r, size_t cap);
void fl_ring_write(fl_ring_t *r, const void *data, size_t len);
/* Copies the last at most max bytes (all held bytes if max is 0) into a new NUL-terminated
 * string; *outlen gets its length. Returns NULL on FL_ENOMEM. */
char *fl_ring_tail(const fl_ring_t *r, size_t max, size_t *outlen);
/* 1 when bytes were dropped to make room. */
int fl_ring_truncated(const fl_ring_t *r);
void fl_ring_reset(fl_ring_t *r);
void fl_ring_free(fl_ring_t *r);

#endif

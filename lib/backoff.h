/* Exponential backoff for retries: each failure waits twice as long as the one before,
 * from min_ms up to max_ms; a success starts again from min_ms. */
#ifndef FL_BACKOFF_H
#define FL_BACKOFF_H

#include <stdint.h>

typedef struct {
    uint64_t min_ms, max_ms, next_ms;
} fl_backoff_t;

void fl_backoff_init(fl_backoff_t *b, uint64_t min_ms, uint64_t max_ms);
/* The delay to wait now (ms); the next call gives twice as much, up to max_ms. */
uint64_t fl_backoff_next(fl_backoff_t *b);
void fl_backoff_reset(fl_backoff_t *b);

#endif

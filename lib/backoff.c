/* Exponential backoff (backoff.h). */
#include "lib/backoff.h"

void fl_backoff_init(fl_backoff_t *b, uint64_t min_ms, uint64_t max_ms)
{
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->next_ms = b->min_ms;
}

uint64_t fl_backoff_next(fl_backoff_t *b)
{
    uint64_t ms = b->next_ms;
    b->next_ms = ms > b->max_ms / 2 ? b->max_ms : ms * 2;
    return ms;
}

void fl_backoff_reset(fl_backoff_t *b)
{
    b->next_ms = b->min_ms;
}

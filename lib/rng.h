/* The seeded random number generator (xoshiro256**, seeded through splitmix64). One
 * instance per run, so --seed N fixes every random choice. Pure: no global state. */
#ifndef FL_RNG_H
#define FL_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} fl_rng_t;

void fl_rng_seed(fl_rng_t *r, uint64_t seed);
uint64_t fl_rng_next(fl_rng_t *r);
/* Uniform in [0, 1). */
double fl_rng_double(fl_rng_t *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint64_t fl_rng_below(fl_rng_t *r, uint64_t n);

#endif

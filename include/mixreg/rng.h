/* Counter-based random numbers (Philox4x32-10) and the distributions mixreg
 * needs. A generator is (seed, stream, counter): independent streams come from
 * the same seed without coordination, and the state is plain data that a
 * checkpoint can store and restore exactly. */
#ifndef MIXREG_RNG_H
#define MIXREG_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t key[2];     /* from the seed */
    uint32_t ctr[4];     /* ctr[2..3] hold the stream id, ctr[0..1] count blocks */
    uint32_t buf[4];     /* the current block's output */
    uint32_t used;       /* how many words of buf were consumed (4 = empty) */
} mx_rng;

/* Streams mixreg uses, so runs stay reproducible as code is added. */
enum {
    MX_STREAM_INIT = 1,     /* weight initialisation */
    MX_STREAM_SHUFFLE = 2,  /* epoch shuffles (re-seeded per epoch) */
    MX_STREAM_MIXUP = 3,    /* lambda, partners */
    MX_STREAM_AUGMENT = 4,
    MX_STREAM_DROPOUT = 5
    /* 6: the validation hold-out (src/data/subset.c); 7: the analysis's power iteration (src/mixup/analysis.c) */
};

void mx_rng_init(mx_rng *rng, uint64_t seed, uint64_t stream);
uint32_t mx_rng_u32(mx_rng *rng);
uint64_t mx_rng_u64(mx_rng *rng);
/* Uniform on the open interval (0, 1), 53 random bits. */
double mx_rng_uniform(mx_rng *rng);
/* Uniform integer in [0, n), unbiased (rejection); n > 0. */
uint32_t mx_rng_below(mx_rng *rng, uint32_t n);
/* Standard normal (Box-Muller on two uniforms). */
double mx_rng_normal(mx_rng *rng);
/* log of a Gamma(shape, 1) draw, shape > 0 (Marsaglia-Tsang; for shape < 1 the
 * boost Gamma(shape+1) * U^(1/shape) in log space so tiny shapes never underflow). */
double mx_rng_log_gamma(mx_rng *rng, double shape);
/* Gamma(shape, 1) draw. */
double mx_rng_gamma(mx_rng *rng, double shape);
/* Beta(a, b) draw in [0, 1], computed from two log-gamma draws (robust for a, b << 1). */
double mx_rng_beta(mx_rng *rng, double a, double b);
/* Fisher-Yates: perm becomes a uniformly random permutation of 0..n-1. */
void mx_rng_permutation(mx_rng *rng, uint32_t *perm, size_t n);

#endif

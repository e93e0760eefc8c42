/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011) and the distributions built on it. The generator is a pure function
 * of (key, counter), so the struct is all the state there is. */
#include <math.h>

#include "mixreg/rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */
#define PHILOX_ROUNDS 10

static void philox_round(uint32_t ctr[4], const uint32_t key[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
    uint32_t out0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ key[0];
    uint32_t out1 = (uint32_t)p1;
    uint32_t out2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ key[1];
    uint32_t out3 = (uint32_t)p0;
    ctr[0] = out0;
    ctr[1] = out1;
    ctr[2] = out2;
    ctr[3] = out3;
}

static void philox_block(const uint32_t ctr_in[4], const uint32_t key_in[2], uint32_t out[4])
{
    uint32_t key[2] = {key_in[0], key_in[1]};
    for (int w = 0; w < 4; w++) out[w] = ctr_in[w];
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        if (r > 0) {
            key[0] += PHILOX_W0;
            key[1] += PHILOX_W1;
        }
        philox_round(out, key);
    }
}

static void refill(mx_rng *rng)
{
    philox_block(rng->ctr, rng->key, rng->buf);
    /* Only the low 64 bits count blocks; the high half is the stream id. */
    if (++rng->ctr[0] == 0) ++rng->ctr[1];
    rng->used = 0;
}

void mx_rng_init(mx_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->key[0] = (uint32_t)seed;
    rng->key[1] = (uint32_t)(seed >> 32);
    rng->ctr[0] = 0;
    rng->ctr[1] = 0;
    rng->ctr[2] = (uint32_t)stream;
    rng->ctr[3] = (uint32_t)(stream >> 32);
    for (int w = 0; w < 4; w++) rng->buf[w] = 0;
    rng->used = 4;
}

uint32_t mx_rng_u32(mx_rng *rng)
{
    if (rng->used >= 4) refill(rng);
    return rng->buf[rng->used++];
}

uint64_t mx_rng_u64(mx_rng *rng)
{
    uint64_t hi = mx_rng_u32(rng);
    uint64_t lo = mx_rng_u32(rng);
    return (hi << 32) | lo;
}

double mx_rng_uniform(mx_rng *rng)
{
    /* k / 2^53 is exact for every 53-bit k; rejecting k = 0 (once in 2^53
     * draws) keeps log(u) and 1/u finite, and the largest value is 1 - 2^-53. */
    uint64_t k;
    do k = mx_rng_u64(rng) >> 11;
    while (k == 0);
    return (double)k * 0x1.0p-53;
}

uint32_t mx_rng_below(mx_rng *rng, uint32_t n)
{
    if (n <= 1) return 0;
    /* Reject the 2^32 mod n smallest words so every residue is equally likely. */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t r = mx_rng_u32(rng);
        if (r >= threshold) return r % n;
    }
}

double mx_rng_normal(mx_rng *rng)
{
    /* Only the cosine branch: caching the sine partner would add hidden state
     * that a checkpoint of the struct would have to capture. */
    double u1 = mx_rng_uniform(rng);
    double u2 = mx_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

/* Marsaglia & Tsang (2000), valid for shape >= 1; returns log of the draw. */
static double log_gamma_large_shape(mx_rng *rng, double shape)
{
    double d = shape - 1.0 / 3.0;
    double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = mx_rng_normal(rng);
        double v = 1.0 + c * x;
        if (v <= 0.0) continue;
        v = v * v * v;
        double u = mx_rng_uniform(rng);
        double x2 = x * x;
        if (u < 1.0 - 0.0331 * x2 * x2) return log(d) + log(v);
        if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) return log(d) + log(v);
    }
}

double mx_rng_log_gamma(mx_rng *rng, double shape)
{
    if (!(shape > 0.0) || isinf(shape)) return NAN;
    if (shape >= 1.0) return log_gamma_large_shape(rng, shape);
    /* Gamma(a) = Gamma(a + 1) * U^(1/a); in log space U^(1/a) cannot underflow
     * even when it is far below the smallest double (a = 0.01 gives e^-1000s). */
    double boosted = log_gamma_large_shape(rng, shape + 1.0);
    return boosted + log(mx_rng_uniform(rng)) / shape;
}

double mx_rng_gamma(mx_rng *rng, double shape) { return exp(mx_rng_log_gamma(rng, shape)); }

double mx_rng_beta(mx_rng *rng, double a, double b)
{
    double lg_a = mx_rng_log_gamma(rng, a);
    double lg_b = mx_rng_log_gamma(rng, b);
    /* G_a / (G_a + G_b) = 1 / (1 + exp(lg_b - lg_a)): the exponent may overflow
     * to +inf (result 0) or underflow to 0 (result 1), never 0/0. */
    return 1.0 / (1.0 + exp(lg_b - lg_a));
}

void mx_rng_permutation(mx_rng *rng, uint32_t *perm, size_t n)
{
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = mx_rng_below(rng, (uint32_t)i);
        uint32_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}

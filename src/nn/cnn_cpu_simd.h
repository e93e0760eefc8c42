/* What the cpu backend's kernel files share (cnn_cpu_kernels.c, cnn_cpu_blocked.c, cnn_cpu_bn_sums.c):
 * the size below which a loop stays on the calling thread, the float to
 * bfloat16 rounding of 16 lanes, and batch norm's per-channel arithmetic.
 * Static inline, so each file's loops inline them as when they were one file. */
#ifndef MIXREG_NN_CNN_CPU_SIMD_H
#define MIXREG_NN_CNN_CPU_SIMD_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CNN_CPU_PARALLEL_MIN 32768 /* elements: below, a team costs more than it saves */

/* 16 floats to bfloat16, rounded to nearest even (NaN stays NaN), as
 * oneDNN's reorders round. */
static inline void store_bf16x16(const float *v, uint16_t *out)
{
#ifdef __AVX512BF16__
    _mm256_storeu_si256((__m256i *)(void *)out, (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(v)));
#else
    for (int l = 0; l < 16; l++) {
        uint32_t u;
        memcpy(&u, &v[l], sizeof u);
        out[l] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40u)
                                                 : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
#endif
}

/* Element i of an operand held as float32, or (bf16 1) as bfloat16 in the
 * same order, widened (exactly); and where it is. The kernels take bf16 as a
 * constant through their always-inline bodies, so each form is its own loop. */
static inline float load_f32(const void *p, size_t i, int bf16)
{
    if (!bf16) return ((const float *)p)[i];
    const uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline const void *element_at(const void *p, size_t i, int bf16)
{
    return (const char *)p + i * (bf16 ? sizeof(uint16_t) : sizeof(float));
}
#ifdef __AVX512F__
static inline __m512 load_f32x16(const void *p, size_t i, int bf16)
{
    if (!bf16) return _mm512_loadu_ps((const float *)p + i);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)p + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

#ifdef __AVX512F__
/* store_bf16x16 of a register: the row converted where it was computed. A
 * row stored as two 256-bit halves and read back as one 512-bit vector
 * cannot be forwarded from the store buffer, and that stall took half of
 * the bf16 batch norms' output and gradient passes. */
static inline void store_bf16x16_reg(__m512 v, uint16_t *out)
{
#ifdef __AVX512BF16__
    _mm256_storeu_si256((__m256i *)(void *)out, (__m256i)_mm512_cvtneps_pbh(v));
#else
    float row[16];
    _mm512_storeu_ps(row, v);
    store_bf16x16(row, out);
#endif
}
#endif

/* The ReLU's backward mask of 16 outputs as bits (bit l for v[l]): set where
 * the output passes the gradient, v > 0 or NaN (as y <= 0 ? 0 : dy). */
static inline uint16_t relu_bits16(const float *v)
{
#ifdef __AVX512F__
    return (uint16_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(v), _mm512_setzero_ps(), _CMP_NLE_UQ);
#else
    uint16_t m = 0;
    for (int l = 0; l < 16; l++) m |= (uint16_t)(!(v[l] <= 0.0f) << l);
    return m;
#endif
}

/* y = relu?((x - mean) a + b) over one channel. */
static inline void channel_affine(size_t n, size_t hw, size_t stride, const float *x, float mean, float a, float b,
                                  int relu, float *y)
{
    for (size_t s = 0; s < n; s++) {
        const float *p = x + s * stride;
        float *q = y + s * stride;
        if (relu) {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) {
                float v = (p[i] - mean) * a + b;
                q[i] = (v > 0.0f || v != v) ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < hw; i++) q[i] = (p[i] - mean) * a + b;
        }
    }
}

/* Channel c of a training batch norm from its m values' sum and sum of
 * squares (double): the batch statistics saved for the backward, the running
 * ones moved PyTorch's way (unbiased variance), and the forward's constants
 * k = {mean, gamma / std, beta} as floats. */
static inline void bn_train_channel(size_t c, size_t m, double sum, double sumsq, const float *gamma, const float *beta,
                                    float momentum, float eps, float *running_mean, float *running_var,
                                    float *save_mean, float *save_invstd, float k[3])
{
    const double mean = m ? sum / (double)m : 0.0;
    double var = m ? sumsq / (double)m - mean * mean : 0.0;
    if (var < 0) var = 0;
    const double invstd = 1.0 / sqrt(var + eps);
    k[0] = (float)mean;
    k[1] = (float)((gamma ? gamma[c] : 1.0) * invstd);
    k[2] = beta ? beta[c] : 0.0f;
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)invstd;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + (double)momentum * mean);
    if (running_var) {
        double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
        running_var[c] = (float)((1.0 - momentum) * running_var[c] + (double)momentum * unbiased);
    }
}

#endif

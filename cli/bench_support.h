/* What `mixreg bench` needs besides the timed step (cli/cmd_bench.c): a
 * synthetic data set of any image shape, and the machine's peak rates its
 * GFLOP/s are set against. */
#ifndef MIXREG_CLI_BENCH_SUPPORT_H
#define MIXREG_CLI_BENCH_SUPPORT_H

#include <stddef.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

/* Whether spec names synthetic data ("synthetic:..."). */
int bench_is_synthetic(const char *spec);

/* "synthetic:CxHxW": C 1 to MX_MAX_CHANNELS, H and W 1 to 4096, plain
 * decimals. MX_ERR_ARG naming --data otherwise. */
mx_status bench_parse_synthetic(const char *spec, size_t *channels, size_t *height, size_t *width);

/* n images of uniformly random bytes and labels uniform in [0, classes),
 * fixed by the seed 0 (timing only: a model learns nothing from them).
 * MX_ERR_ARG above 2^31 bytes of pixels, MX_ERR_NOMEM. */
mx_status bench_synthetic_dataset(size_t channels, size_t height, size_t width, size_t classes, size_t n,
                                  mx_dataset *out);

/* The machine's float32 matrix-multiply rate, as the yardstick for the
 * model's: OpenBLAS cblas_sgemm on 2048 x 2048 matrices at the current
 * thread count, best of 5 after a warm-up, in GFLOP/s. */
double bench_sgemm_gflops(void);

/* The bfloat16 rate of the kernels --precision bf16 runs on: a oneDNN
 * bfloat16 1x1 convolution (a 6,272 x 512 x 512 matrix product in
 * nChw16c, operands already bfloat16), best of 5 after a warm-up, in
 * GFLOP/s; 0 where this CPU has no bfloat16 kernels (mx_dnnl_bf16_available)
 * or the plan cannot be made. */
double bench_bf16_gflops(void);

#endif

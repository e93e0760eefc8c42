/* Overflow-checked size arithmetic. Sizes read from files (tensor shapes,
 * a checkpoint's model dimensions) are multiplied and added before they are
 * allocated or indexed; a wrapped product would allocate too little and the
 * writes after it would land outside the block. Each helper returns 1 with the
 * exact result, or 0 with *out = SIZE_MAX (so a caller that only compares the
 * result against a limit may ignore the return value: SIZE_MAX exceeds any). */
#ifndef MIXREG_CHECKED_H
#define MIXREG_CHECKED_H

#include <stddef.h>

/* *out = a * b */
int mx_size_mul(size_t a, size_t b, size_t *out);
/* *out = a + b */
int mx_size_add(size_t a, size_t b, size_t *out);
/* *out = the product of dims[0..n) (1 when n is 0, 0 when a factor is 0) */
int mx_size_product(const size_t *dims, size_t n, size_t *out);

#endif

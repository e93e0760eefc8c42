/* Datasets held in memory as uint8 images plus int32 labels, read from the
 * IDX format (MNIST family, raw or gzip), and turned into normalised float
 * batches at the last moment. */
#ifndef MIXREG_DATA_H
#define MIXREG_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_MAX_CHANNELS 4

typedef struct {
    size_t n;            /* number of samples */
    size_t channels, height, width;
    size_t num_classes;  /* 1 + the largest label seen */
    uint8_t *pixels;     /* n x channels x height x width, row-major (NCHW) */
    int32_t *labels;     /* n */
} mx_dataset;

/* Reads an IDX image file (magic 0x00000803: n x rows x cols uint8), raw or
 * gzip-compressed (detected from the content, not the name). Errors
 * (MX_ERR_IO / MX_ERR_FORMAT) name the file: wrong magic, truncated payload,
 * trailing garbage, absurd dimensions (0, or rows/cols > 65536, or more than
 * 2^31 bytes in all). *pixels is malloc'd. */
mx_status mx_idx_read_images(const char *path, uint8_t **pixels, size_t *n,
                             size_t *rows, size_t *cols);

/* Reads an IDX label file (magic 0x00000801: n uint8 labels). */
mx_status mx_idx_read_labels(const char *path, int32_t **labels, size_t *n);

/* Loads split "train" or "test" of an IDX directory: DIR/train-images-idx3-ubyte
 * and DIR/train-labels-idx1-ubyte (or t10k-* for test), each optionally with a
 * .gz suffix. Image and label counts must match. num_classes = max label + 1. */
mx_status mx_dataset_load_idx(const char *dir, const char *split, mx_dataset *out);

void mx_dataset_free(mx_dataset *ds);

/* Copies samples idx[0..n) of src into a new dataset (num_classes kept from src). */
mx_status mx_dataset_subset(const mx_dataset *src, const uint32_t *idx, size_t n, mx_dataset *out);

/* The validation hold-out: a shuffle seeded by `seed`, its first
 * floor(fraction * n) samples into val, the rest into train (in original
 * order when fraction is 0, val then left empty). */
mx_status mx_dataset_split(const mx_dataset *full, uint64_t seed, double fraction, mx_dataset *train, mx_dataset *val);

/* Per-channel mean and standard deviation of the pixels scaled to [0, 1]
 * (computed in double over the whole dataset). */
void mx_dataset_channel_stats(const mx_dataset *ds, float *mean, float *std);

/* Per-sample normalisation: x = (pixel / 255 - mean[c]) / std[c]. */
typedef struct {
    size_t channels;
    float mean[MX_MAX_CHANNELS];
    float std[MX_MAX_CHANNELS];
    float lut[MX_MAX_CHANNELS][256];  /* precomputed per channel and byte value */
} mx_normalizer;

/* MX_ERR_ARG if channels is 0 or > MX_MAX_CHANNELS or a std is not > 0. */
mx_status mx_normalizer_init(mx_normalizer *nz, size_t channels, const float *mean, const float *std);

/* Gathers samples idx[0..n) into x (n x sample_size floats, normalised) and y. */
void mx_dataset_gather(const mx_dataset *ds, const mx_normalizer *nz, const uint32_t *idx,
                       size_t n, float *x, int32_t *y);

#endif

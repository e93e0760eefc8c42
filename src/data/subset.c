#include <stdlib.h>
#include <string.h>

#include "data/stream.h"
#include "mixreg/data.h"
#include "mixreg/rng.h"

#define MX_STREAM_SPLIT 6 /* the validation hold-out */

mx_status mx_dataset_subset(const mx_dataset *src, const uint32_t *idx, size_t n, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    size_t sample = mx_dataset_sample_size(src);
    /* Streamed: the subset picks entries of the same stream, no pixels. */
    if (src->stream) out->entries = malloc(n * sizeof(uint32_t) + 1);
    else out->pixels = malloc(n * sample + 1);
    out->labels = malloc(n * sizeof(int32_t) + 1);
    if (!(out->pixels || out->entries) || !out->labels) {
        mx_dataset_free(out);
        return mx_error_set(MX_ERR_NOMEM, "out of memory copying %zu samples", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (src->stream) out->entries[i] = src->entries[idx[i]];
        else memcpy(out->pixels + i * sample, src->pixels + (size_t)idx[i] * sample, sample);
        out->labels[i] = src->labels[idx[i]];
    }
    if (src->stream) {
        mx_stream_retain(src->stream);
        out->stream = src->stream;
    }
    out->n = n;
    out->channels = src->channels;
    out->height = src->height;
    out->width = src->width;
    out->num_classes = src->num_classes;
    mx_status st = mx_class_names_copy(src->class_names, src->num_classes, &out->class_names);
    if (st != MX_OK) mx_dataset_free(out);
    return st;
}

mx_status mx_dataset_split(const mx_dataset *full, uint64_t seed, double fraction, mx_dataset *train, mx_dataset *val)
{
    memset(val, 0, sizeof *val);
    size_t n_val = (size_t)(fraction * (double)full->n);
    if (fraction > 0 && (n_val == 0 || n_val >= full->n))
        return mx_error_set(MX_ERR_ARG, "a validation split of %g leaves no validation or no training samples", fraction);
    uint32_t *perm = calloc(full->n + 1, sizeof *perm);
    if (!perm) return mx_error_set(MX_ERR_NOMEM, "out of memory splitting the data");
    if (n_val) {
        mx_rng rng;
        mx_rng_init(&rng, seed, MX_STREAM_SPLIT);
        mx_rng_permutation(&rng, perm, full->n);
    } else {
        for (size_t i = 0; i < full->n; i++) perm[i] = (uint32_t)i;
    }
    mx_status st = mx_dataset_subset(full, perm + n_val, full->n - n_val, train);
    if (st == MX_OK && n_val) st = mx_dataset_subset(full, perm, n_val, val);
    free(perm);
    return st;
}

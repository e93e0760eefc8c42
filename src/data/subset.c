#include <stdlib.h>
#include <string.h>

#include "mixreg/data.h"

mx_status mx_dataset_subset(const mx_dataset *src, const uint32_t *idx, size_t n, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    size_t sample = src->channels * src->height * src->width;
    out->pixels = malloc(n * sample + 1);
    out->labels = malloc(n * sizeof(int32_t) + 1);
    if (!out->pixels || !out->labels) {
        mx_dataset_free(out);
        return mx_error_set(MX_ERR_NOMEM, "out of memory copying %zu samples", n);
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(out->pixels + i * sample, src->pixels + (size_t)idx[i] * sample, sample);
        out->labels[i] = src->labels[idx[i]];
    }
    out->n = n;
    out->channels = src->channels;
    out->height = src->height;
    out->width = src->width;
    out->num_classes = src->num_classes;
    return MX_OK;
}

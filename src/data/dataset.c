/* Datasets in memory: loading an IDX split, per-channel statistics, and the
 * byte -> normalised float conversion that every training step runs. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/stream.h"
#include "mixreg/augment.h"
#include "mixreg/data.h"

#define DATASET_PATH_MAX 4096

static mx_status split_prefix(const char *split, const char **prefix)
{
    if (!strcmp(split, "train")) *prefix = "train";
    else if (!strcmp(split, "test")) *prefix = "t10k";
    else return mx_error_set(MX_ERR_ARG, "unknown data split '%s' (expected train or test)", split);
    return MX_OK;
}

static int is_regular_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static mx_status check_directory(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return mx_error_set(MX_ERR_IO, "data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mx_error_set(MX_ERR_IO, "data directory %s: not a directory", dir);
    return MX_OK;
}

/* Finds DIR/NAME, else DIR/NAME.gz: the uncompressed file wins because it is
 * what a user who unpacked the download expects to be read. */
static mx_status find_idx_file(const char *dir, const char *name, char *path, size_t cap)
{
    static const char *const suffixes[] = {"", ".gz"};
    for (size_t k = 0; k < 2; k++) {
        if ((size_t)snprintf(path, cap, "%s/%s%s", dir, name, suffixes[k]) >= cap)
            return mx_error_set(MX_ERR_ARG, "data directory %s: path too long", dir);
        if (is_regular_file(path)) return MX_OK;
    }
    return mx_error_set(MX_ERR_IO, "data directory %s: neither %s nor %s.gz found", dir, name, name);
}

/* A classifier needs at least two classes; labels all 0 usually mean the
 * wrong file or a broken conversion. */
static mx_status count_classes(const char *labels_path, const int32_t *labels, size_t n, size_t *num_classes)
{
    int32_t max_label = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i] > max_label) max_label = labels[i];
    if (max_label < 1)
        return mx_error_set(MX_ERR_FORMAT, "%s: every label is 0, so there is only one class (need at least 2)",
                            labels_path);
    *num_classes = (size_t)max_label + 1;
    return MX_OK;
}

static mx_status load_split(const char *dir, const char *prefix, mx_dataset *out)
{
    char name[64], images_path[DATASET_PATH_MAX], labels_path[DATASET_PATH_MAX];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    mx_status st = find_idx_file(dir, name, images_path, sizeof images_path);
    if (st != MX_OK) return st;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    st = find_idx_file(dir, name, labels_path, sizeof labels_path);
    if (st != MX_OK) return st;

    size_t n_images = 0, n_labels = 0, rows = 0, cols = 0;
    st = mx_idx_read_images(images_path, &out->pixels, &n_images, &rows, &cols);
    if (st != MX_OK) return st;
    st = mx_idx_read_labels(labels_path, &out->labels, &n_labels);
    if (st != MX_OK) return st;
    if (n_images != n_labels)
        return mx_error_set(MX_ERR_FORMAT, "%s has %zu images but %s has %zu labels", images_path, n_images,
                            labels_path, n_labels);
    out->n = n_images;
    out->channels = 1;
    out->height = rows;
    out->width = cols;
    return count_classes(labels_path, out->labels, out->n, &out->num_classes);
}

mx_status mx_dataset_load_idx(const char *dir, const char *split, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    const char *prefix = NULL;
    mx_status st = split_prefix(split, &prefix);
    if (st == MX_OK) st = check_directory(dir);
    if (st == MX_OK) st = load_split(dir, prefix, out);
    if (st != MX_OK) mx_dataset_free(out);
    return st;
}

void mx_dataset_free(mx_dataset *ds)
{
    mx_class_names_free(ds->class_names, ds->num_classes);
    free(ds->pixels);
    free(ds->labels);
    free(ds->entries);
    if (ds->stream) mx_stream_release(ds->stream);
    memset(ds, 0, sizeof *ds);
}

mx_status mx_dataset_channel_stats(const mx_dataset *ds, float *mean, float *std)
{
    const size_t plane = ds->height * ds->width, channels = ds->channels, count = mx_dataset_stats_count(ds);
    /* Integer sums are exact (2^31 bytes of 255^2 stay far below 2^64), so
     * neither the thread count nor the order matters and only the final
     * division rounds. Only a streamed set has decoding worth threads. */
    uint64_t sum[MX_MAX_CHANNELS] = {0}, sum_sq[MX_MAX_CHANNELS] = {0};
    mx_first_error fe;
    mx_first_error_init(&fe);
    const int streamed = ds->stream != NULL;
#pragma omp parallel if (streamed)
    {
        uint64_t my_sum[MX_MAX_CHANNELS] = {0}, my_sq[MX_MAX_CHANNELS] = {0};
        uint8_t *scratch = streamed ? malloc(mx_dataset_sample_size(ds)) : NULL;
        const int usable = !streamed || scratch;
        if (!usable) mx_first_error_note(&fe, 0, mx_error_set(MX_ERR_NOMEM, "out of memory for statistics"));
#pragma omp for schedule(dynamic, 8)
        for (size_t k = 0; k < count; k++) {
            const uint8_t *px;
            mx_status st = usable ? mx_dataset_sample(ds, mx_dataset_stats_index(ds, k), scratch, &px) : MX_ERR_NOMEM;
            if (st != MX_OK) {
                if (usable) mx_first_error_note(&fe, k, st);
                continue;
            }
            for (size_t c = 0; c < channels && c < MX_MAX_CHANNELS; c++) {
                uint64_t s = 0, q = 0;
                for (size_t j = 0; j < plane; j++) {
                    s += px[c * plane + j];
                    q += (uint32_t)px[c * plane + j] * px[c * plane + j];
                }
                my_sum[c] += s;
                my_sq[c] += q;
            }
        }
        free(scratch);
#pragma omp critical(mx_channel_stats)
        for (size_t c = 0; c < MX_MAX_CHANNELS; c++) {
            sum[c] += my_sum[c];
            sum_sq[c] += my_sq[c];
        }
    }
    if (fe.status != MX_OK) return mx_first_error_raise(&fe);
    for (size_t c = 0; c < channels && c < MX_MAX_CHANNELS; c++) {
        double total = (double)count * (double)plane;
        double m = total > 0 ? (double)sum[c] / total : 0.0;
        double var = total > 0 ? (double)sum_sq[c] / total - m * m : 0.0;
        mean[c] = (float)(m / 255.0);
        std[c] = (float)(var > 0 ? sqrt(var) / 255.0 : 0.0);
    }
    return MX_OK;
}

mx_status mx_normalizer_init(mx_normalizer *nz, size_t channels, const float *mean, const float *std)
{
    if (channels == 0 || channels > MX_MAX_CHANNELS)
        return mx_error_set(MX_ERR_ARG, "normaliser: %zu channels (must be 1 to %d)", channels, MX_MAX_CHANNELS);
    for (size_t c = 0; c < channels; c++) {
        if (!isfinite(mean[c])) return mx_error_set(MX_ERR_ARG, "normaliser: channel %zu mean is not finite", c);
        if (!(std[c] > 0) || !isfinite(std[c]))
            return mx_error_set(MX_ERR_ARG, "normaliser: channel %zu std is %g (must be positive and finite)", c,
                                (double)std[c]);
    }
    memset(nz, 0, sizeof *nz);
    nz->channels = channels;
    for (size_t c = 0; c < channels; c++) {
        nz->mean[c] = mean[c];
        nz->std[c] = std[c];
        for (int v = 0; v < 256; v++) nz->lut[c][v] = (float)(((double)v / 255.0 - mean[c]) / std[c]);
    }
    return MX_OK;
}

/* One table lookup per byte; the caller matches nz->channels to ds->channels.
 * A streamed set goes through the augmenting gather, which decodes. */
mx_status mx_dataset_gather(const mx_dataset *ds, const mx_normalizer *nz, const uint32_t *idx, size_t n, float *x,
                            int32_t *y)
{
    if (ds->stream) {
        mx_augment_config none = mx_augment_config_none();
        return mx_augment_gather(&none, 0, 0, ds, nz, idx, n, x, y);
    }
    const size_t plane = ds->height * ds->width, sample = ds->channels * plane;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *restrict src = ds->pixels + (size_t)idx[i] * sample;
        float *restrict dst = x + i * sample;
        for (size_t c = 0; c < ds->channels; c++) {
            const float *restrict lut = nz->lut[c];
            for (size_t k = 0; k < plane; k++) dst[c * plane + k] = lut[src[c * plane + k]];
        }
        if (y) y[i] = ds->labels[idx[i]];
    }
    return MX_OK;
}

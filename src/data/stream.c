/* Streamed datasets: an image-folder index whose samples are read and
 * decoded when asked for, so a dataset larger than memory trains in memory
 * proportional to its index and the batches in flight, not its pixels.
 *
 * A file that fails to decode is an error naming it, unless the stream skips
 * bad images: then the sample is made from the next sample of the same
 * dataset (in its order, wrapping round) with the same label whose file does
 * decode, and the file is counted once. Which files decode is a property of
 * the files alone, so the replacement, like everything else about a sample,
 * does not depend on the order samples are asked for, the batch or the
 * thread count. The label stays the sample's own. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/stream.h"
#include "mixreg/folder.h"
#include "mixreg/image.h"
#include "mixreg/resized_crop.h"

struct mx_stream {
    atomic_size_t refs;
    mx_folder_index index;
    size_t side;
    int skip_bad;
    atomic_uchar *bad;        /* index.n: the file failed to decode */
    atomic_size_t bad_count;  /* distinct files found bad */
};

void mx_stream_retain(mx_stream *s) { atomic_fetch_add(&s->refs, 1); }

void mx_stream_release(mx_stream *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    mx_folder_index_free(&s->index);
    free(s->bad);
    free(s);
}

mx_status mx_dataset_stream_folder(mx_folder_index *index, size_t side, int skip_bad, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    size_t n = index->n;
    if (!side || side > MX_IMAGE_MAX_SIDE)
        return mx_error_set(MX_ERR_ARG, "image folder: image side %zu out of range (1 to %d)", side, MX_IMAGE_MAX_SIDE);
    if (!n) return mx_error_set(MX_ERR_FORMAT, "image folder %s: no images", index->root);
    if (n > UINT32_MAX) return mx_error_set(MX_ERR_FORMAT, "image folder %s: more than 2^32 images", index->root);
    mx_stream *s = calloc(1, sizeof *s);
    atomic_uchar *bad = calloc(n, sizeof *bad);
    out->labels = malloc(n * sizeof *out->labels);
    out->entries = malloc(n * sizeof *out->entries);
    if (!s || !bad || !out->labels || !out->entries) {
        free(s);
        free(bad);
        mx_dataset_free(out);
        return mx_error_set(MX_ERR_NOMEM, "image folder %s: out of memory indexing %zu images", index->root, n);
    }
    atomic_init(&s->refs, 1);
    atomic_init(&s->bad_count, 0);
    for (size_t i = 0; i < n; i++) atomic_init(&bad[i], 0);
    s->index = *index;
    memset(index, 0, sizeof *index);
    s->side = side;
    s->skip_bad = skip_bad;
    s->bad = bad;
    memcpy(out->labels, s->index.labels, n * sizeof *out->labels);
    for (size_t i = 0; i < n; i++) out->entries[i] = (uint32_t)i;
    out->n = n;
    out->channels = 3;
    out->height = out->width = side;
    out->num_classes = s->index.num_classes;
    out->stream = s;
    mx_status st = mx_class_names_copy(s->index.class_names, s->index.num_classes, &out->class_names);
    if (st != MX_OK) mx_dataset_free(out);
    return st;
}

size_t mx_dataset_sample_size(const mx_dataset *ds) { return ds->channels * ds->height * ds->width; }

size_t mx_dataset_bad_images(const mx_dataset *ds)
{
    return ds->stream ? atomic_load(&ds->stream->bad_count) : 0;
}

size_t mx_dataset_stats_count(const mx_dataset *ds)
{
    return ds->stream && ds->n > MX_STATS_SUBSAMPLE ? MX_STATS_SUBSAMPLE : ds->n;
}

size_t mx_dataset_stats_index(const mx_dataset *ds, size_t k)
{
    size_t m = mx_dataset_stats_count(ds);
    if (m == ds->n) return k;
    /* floor(k n / m) without overflow: n < 2^32 and k < m <= 10^4. */
    return (size_t)((unsigned long long)k * ds->n / m);
}

/* How one file becomes a sample: the evaluation recipe, or the training
 * recipe drawn for a sample number. */
typedef struct {
    int train, hflip;
    uint32_t draw;
    uint64_t seed, epoch;
} recipe;

static mx_status decode_entry(const mx_stream *s, size_t entry, const recipe *r, uint8_t *out)
{
    if (r->train) return mx_folder_load_sample_train_as(&s->index, entry, r->draw, s->side, r->seed, r->epoch, r->hflip, out);
    return mx_folder_load_sample(&s->index, entry, s->side, out);
}

/* Decodes entry e; a failure worth skipping marks the file (counted once). */
static mx_status try_entry(mx_stream *s, size_t e, const recipe *r, uint8_t *out, int *skipped)
{
    *skipped = 0;
    if (atomic_load(&s->bad[e])) {
        *skipped = 1;
        return MX_ERR_FORMAT;
    }
    mx_status st = decode_entry(s, e, r, out);
    if (st == MX_OK || !s->skip_bad || st == MX_ERR_NOMEM) return st;
    if (!atomic_exchange(&s->bad[e], 1)) atomic_fetch_add(&s->bad_count, 1);
    *skipped = 1;
    return st;
}

static mx_status load(const mx_dataset *ds, size_t i, const recipe *r, uint8_t *out)
{
    if (i >= ds->n) return mx_error_set(MX_ERR_ARG, "streamed dataset: sample %zu of %zu", i, ds->n);
    mx_stream *s = ds->stream;
    int skipped;
    mx_status st = try_entry(s, ds->entries[i], r, out, &skipped);
    if (!skipped) return st;
    for (size_t k = 1; k < ds->n; k++) {
        size_t j = i + k < ds->n ? i + k : i + k - ds->n;
        if (ds->labels[j] != ds->labels[i]) continue;
        st = try_entry(s, ds->entries[j], r, out, &skipped);
        if (!skipped) return st;
    }
    /* The class as the folder names it (ds->labels may be a model's after mx_dataset_match_classes). */
    int32_t label = s->index.labels[ds->entries[i]];
    return mx_error_set(MX_ERR_FORMAT, "image folder %s: no image of class '%s' in this set could be decoded",
                        s->index.root, label >= 0 && (size_t)label < s->index.num_classes ? s->index.class_names[label] : "?");
}

mx_status mx_dataset_sample(const mx_dataset *ds, size_t i, uint8_t *scratch, const uint8_t **pixels)
{
    if (!ds->stream) {
        *pixels = ds->pixels + i * mx_dataset_sample_size(ds);
        return MX_OK;
    }
    *pixels = scratch;
    recipe r = {0, 0, 0, 0, 0};
    return load(ds, i, &r, scratch);
}

mx_status mx_dataset_sample_resized_crop(const mx_dataset *ds, size_t i, int hflip, uint64_t seed, uint64_t epoch,
                                         uint8_t *out)
{
    if (!ds->stream)
        return mx_error_set(MX_ERR_ARG, "the random resized crop needs the original images: a streamed image folder");
    recipe r = {1, hflip, (uint32_t)i, seed, epoch};
    return load(ds, i, &r, out);
}

/* ---- the first error of a parallel loop ---- */

void mx_first_error_init(mx_first_error *fe)
{
    fe->at = SIZE_MAX;
    fe->status = MX_OK;
    fe->message[0] = '\0';
}

void mx_first_error_note(mx_first_error *fe, size_t at, mx_status status)
{
#pragma omp critical(mx_first_error)
    if (at < fe->at) {
        fe->at = at;
        fe->status = status;
        snprintf(fe->message, sizeof fe->message, "%s", mx_error_message());
    }
}

mx_status mx_first_error_raise(const mx_first_error *fe)
{
    return fe->status == MX_OK ? MX_OK : mx_error_set(fe->status, "%s", fe->message);
}

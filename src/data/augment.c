/* Pad + random crop + horizontal flip, one sample at a time. A sample's draws
 * come from its own Philox counter range, so a batch is just independent
 * samples: any split over threads or batches gives the same bytes. Each
 * output row is at most three runs (zeros, pixels, zeros), written with
 * memset/memcpy or one tight loop when mirrored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/stream.h"
#include "mixreg/augment.h"
#include "mixreg/resized_crop.h"
#include "mixreg/rng.h"

/* Below this many output bytes per batch the work is a few microseconds and
 * the OpenMP fork/join is not worth it. Measured (2 cores, CIFAR crop:4,flip):
 * two threads already give 1.4x on a batch of 4 images (12 KiB) and 2x on 128,
 * ~1.15M images/s on one. Each sample is computed alone, so the thread count
 * never changes the result. */
#ifndef PARALLEL_MIN_BYTES
#define PARALLEL_MIN_BYTES ((size_t)8 << 10)
#endif

mx_augment_config mx_augment_config_none(void)
{
    mx_augment_config cfg = {.pad = 0, .crop_height = 0, .crop_width = 0, .hflip = 0, .resized_crop = 0};
    return cfg;
}

void mx_augment_output_size(const mx_augment_config *cfg, size_t height, size_t width, size_t *out_height,
                            size_t *out_width)
{
    *out_height = cfg->crop_height ? cfg->crop_height : height;
    *out_width = cfg->crop_width ? cfg->crop_width : width;
}

int mx_augment_random(const mx_augment_config *cfg, size_t height, size_t width)
{
    size_t oh, ow;
    mx_augment_output_size(cfg, height, width, &oh, &ow);
    return cfg->hflip || cfg->resized_crop || height + 2 * cfg->pad != oh || width + 2 * cfg->pad != ow;
}

mx_status mx_augment_config_validate(const mx_augment_config *cfg, size_t height, size_t width)
{
    if (cfg->pad > MX_AUGMENT_MAX_PAD)
        return mx_error_set(MX_ERR_ARG, "--augment: padding %zu is larger than %d", cfg->pad, MX_AUGMENT_MAX_PAD);
    if (height == 0 || width == 0 || height > UINT32_MAX / 2 || width > UINT32_MAX / 2)
        return mx_error_set(MX_ERR_ARG, "--augment: cannot augment %zux%zu images", height, width);
    size_t oh, ow;
    mx_augment_output_size(cfg, height, width, &oh, &ow);
    if (oh > height + 2 * cfg->pad || ow > width + 2 * cfg->pad)
        return mx_error_set(MX_ERR_ARG, "--augment: a %zux%zu crop does not fit in %zux%zu images padded by %zu", oh,
                            ow, height, width, cfg->pad);
    return MX_OK;
}

/* ---- the spec string ---- */

/* A decimal number of at most 9 digits spanning exactly [s, end). */
static int parse_count(const char *s, const char *end, size_t *value)
{
    if (s == end || end - s > 9) return 0;
    size_t v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (size_t)(*p - '0');
    }
    *value = v;
    return 1;
}

static mx_status parse_crop(const char *item, size_t len, const char *spec, mx_augment_config *cfg)
{
    const char *end = item + len, *p = item + 5; /* past "crop:" */
    const char *colon = memchr(p, ':', (size_t)(end - p));
    const char *pad_end = colon ? colon : end;
    size_t pad;
    if (!parse_count(p, pad_end, &pad))
        return mx_error_set(MX_ERR_ARG, "--augment: '%.*s' in '%s': the padding must be a whole number", (int)len,
                            item, spec);
    if (pad > MX_AUGMENT_MAX_PAD)
        return mx_error_set(MX_ERR_ARG, "--augment: '%.*s' in '%s': padding larger than %d", (int)len, item, spec,
                            MX_AUGMENT_MAX_PAD);
    size_t h = 0, w = 0;
    if (colon) {
        const char *s = colon + 1;
        const char *x = memchr(s, 'x', (size_t)(end - s));
        int ok = x ? parse_count(s, x, &h) && parse_count(x + 1, end, &w) : parse_count(s, end, &h);
        if (!x) w = h;
        if (!ok)
            return mx_error_set(MX_ERR_ARG,
                                "--augment: '%.*s' in '%s': the crop size must be SIZE or HxW (whole numbers)",
                                (int)len, item, spec);
    }
    cfg->pad = pad;
    cfg->crop_height = h;
    cfg->crop_width = w;
    return MX_OK;
}

mx_status mx_augment_parse(const char *spec, mx_augment_config *cfg)
{
    static const char expected[] = "none, or a comma-separated list of flip, crop:PAD, crop:PAD:SIZE, crop:PAD:HxW, "
                                   "rrc";
    mx_augment_config out = mx_augment_config_none();
    if (!spec || !*spec) return mx_error_set(MX_ERR_ARG, "--augment: empty value (expected %s)", expected);
    if (strcmp(spec, "none") == 0) {
        *cfg = out;
        return MX_OK;
    }
    int have_crop = 0, have_flip = 0;
    const char *item = spec;
    for (;;) {
        const char *comma = strchr(item, ',');
        size_t len = comma ? (size_t)(comma - item) : strlen(item);
        if (len == 0)
            return mx_error_set(MX_ERR_ARG, "--augment: empty item in '%s' (expected %s)", spec, expected);
        if (len == 4 && memcmp(item, "flip", 4) == 0) {
            if (have_flip) return mx_error_set(MX_ERR_ARG, "--augment: 'flip' given twice in '%s'", spec);
            have_flip = 1;
            out.hflip = 1;
        } else if (len == 3 && memcmp(item, "rrc", 3) == 0) {
            if (out.resized_crop) return mx_error_set(MX_ERR_ARG, "--augment: 'rrc' given twice in '%s'", spec);
            if (have_crop) return mx_error_set(MX_ERR_ARG, "--augment: 'rrc' and 'crop' exclude each other in '%s'", spec);
            out.resized_crop = 1;
        } else if (len >= 5 && memcmp(item, "crop:", 5) == 0) {
            if (have_crop) return mx_error_set(MX_ERR_ARG, "--augment: 'crop' given twice in '%s'", spec);
            if (out.resized_crop)
                return mx_error_set(MX_ERR_ARG, "--augment: 'rrc' and 'crop' exclude each other in '%s'", spec);
            have_crop = 1;
            mx_status st = parse_crop(item, len, spec, &out);
            if (st != MX_OK) return st;
        } else if (len == 4 && memcmp(item, "none", 4) == 0) {
            return mx_error_set(MX_ERR_ARG, "--augment: 'none' cannot be combined with other items in '%s'", spec);
        } else if (len == 4 && memcmp(item, "crop", 4) == 0) {
            return mx_error_set(MX_ERR_ARG, "--augment: 'crop' needs a padding, e.g. crop:4 (in '%s')", spec);
        } else {
            return mx_error_set(MX_ERR_ARG, "--augment: unknown item '%.*s' in '%s' (expected %s)", (int)len, item,
                                spec, expected);
        }
        if (!comma) break;
        item = comma + 1;
    }
    *cfg = out;
    return MX_OK;
}

const char *mx_augment_format(const mx_augment_config *cfg, char *buf, size_t size)
{
    if (size == 0) return buf;
    int crop = cfg->pad || cfg->crop_height || cfg->crop_width;
    if (cfg->resized_crop) {
        snprintf(buf, size, "rrc%s", cfg->hflip ? ",flip" : "");
        return buf;
    }
    if (!crop && !cfg->hflip) {
        snprintf(buf, size, "none");
        return buf;
    }
    char size_part[48] = "";
    if (cfg->crop_height == cfg->crop_width && cfg->crop_height)
        snprintf(size_part, sizeof size_part, ":%zu", cfg->crop_height);
    else if (cfg->crop_height || cfg->crop_width)
        snprintf(size_part, sizeof size_part, ":%zux%zu", cfg->crop_height, cfg->crop_width);
    if (crop)
        snprintf(buf, size, "crop:%zu%s%s", cfg->pad, size_part, cfg->hflip ? ",flip" : "");
    else
        snprintf(buf, size, "flip");
    return buf;
}

/* ---- draws ---- */

mx_augment_draw mx_augment_sample_draw(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, uint32_t index,
                                       size_t height, size_t width)
{
    size_t oh, ow;
    mx_augment_output_size(cfg, height, width, &oh, &ow);
    mx_rng rng;
    mx_rng_init(&rng, seed, (epoch << 32) | MX_STREAM_AUGMENT);
    /* Skip ahead to block index * 2^32: the high word of the block counter
     * names the sample, the low word counts its blocks (one is ever used). */
    rng.ctr[1] = index;
    mx_augment_draw d;
    uint32_t coin = mx_rng_u32(&rng);
    d.flip = cfg->hflip ? (int)(coin >> 31) : 0;
    d.top = mx_rng_below(&rng, (uint32_t)(height + 2 * cfg->pad - oh + 1));
    d.left = mx_rng_below(&rng, (uint32_t)(width + 2 * cfg->pad - ow + 1));
    return d;
}

/* ---- pixels ---- */

/* Where the source image lands in the output: output rows [y0, y1) and
 * columns [x0, x1) (unmirrored) read source row y + dy and column x + dx. */
typedef struct {
    size_t oh, ow, y0, y1, x0, x1;
    ptrdiff_t dy, dx;
} placement;

static size_t clamp_to(ptrdiff_t v, size_t hi) { return v < 0 ? 0 : ((size_t)v > hi ? hi : (size_t)v); }

static placement place(const mx_augment_config *cfg, mx_augment_draw d, size_t height, size_t width)
{
    placement p;
    mx_augment_output_size(cfg, height, width, &p.oh, &p.ow);
    p.dy = (ptrdiff_t)d.top - (ptrdiff_t)cfg->pad;
    p.dx = (ptrdiff_t)d.left - (ptrdiff_t)cfg->pad;
    p.y0 = clamp_to(-p.dy, p.oh);
    p.y1 = clamp_to((ptrdiff_t)height - p.dy, p.oh);
    p.x0 = clamp_to(-p.dx, p.ow);
    p.x1 = clamp_to((ptrdiff_t)width - p.dx, p.ow);
    if (p.y1 < p.y0) p.y1 = p.y0;
    if (p.x1 < p.x0) p.x1 = p.x0;
    return p;
}

void mx_augment_apply(const mx_augment_config *cfg, mx_augment_draw d, const uint8_t *in, size_t channels,
                      size_t height, size_t width, uint8_t *out)
{
    placement p = place(cfg, d, height, width);
    size_t run = p.x1 - p.x0;
    for (size_t c = 0; c < channels; c++) {
        const uint8_t *plane = in + c * height * width;
        for (size_t y = 0; y < p.oh; y++) {
            uint8_t *restrict dst = out + (c * p.oh + y) * p.ow;
            if (y < p.y0 || y >= p.y1 || run == 0) {
                memset(dst, 0, p.ow);
                continue;
            }
            const uint8_t *restrict src = plane + (size_t)((ptrdiff_t)y + p.dy) * width + (size_t)((ptrdiff_t)p.x0 + p.dx);
            /* Mirrored, the run [x0, x1) lands on [ow - x1, ow - x0). */
            size_t lo = d.flip ? p.ow - p.x1 : p.x0, hi = lo + run;
            memset(dst, 0, lo);
            if (d.flip)
                for (size_t k = 0; k < run; k++) dst[hi - 1 - k] = src[k];
            else
                memcpy(dst + lo, src, run);
            memset(dst + hi, 0, p.ow - hi);
        }
    }
}

/* The same geometry straight into normalised floats. */
static void apply_normalized(const mx_augment_config *cfg, mx_augment_draw d, const uint8_t *in, size_t channels,
                             size_t height, size_t width, const mx_normalizer *nz, float *out)
{
    placement p = place(cfg, d, height, width);
    size_t run = p.x1 - p.x0;
    for (size_t c = 0; c < channels; c++) {
        const uint8_t *plane = in + c * height * width;
        const float *restrict lut = nz->lut[c];
        const float zero = lut[0];
        for (size_t y = 0; y < p.oh; y++) {
            float *restrict dst = out + (c * p.oh + y) * p.ow;
            if (y < p.y0 || y >= p.y1 || run == 0) {
                for (size_t x = 0; x < p.ow; x++) dst[x] = zero;
                continue;
            }
            const uint8_t *restrict src = plane + (size_t)((ptrdiff_t)y + p.dy) * width + (size_t)((ptrdiff_t)p.x0 + p.dx);
            size_t lo = d.flip ? p.ow - p.x1 : p.x0, hi = lo + run;
            for (size_t x = 0; x < lo; x++) dst[x] = zero;
            if (d.flip)
                for (size_t k = 0; k < run; k++) dst[hi - 1 - k] = lut[src[k]];
            else
                for (size_t k = 0; k < run; k++) dst[lo + k] = lut[src[k]];
            for (size_t x = hi; x < p.ow; x++) dst[x] = zero;
        }
    }
}

void mx_augment_batch(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const uint8_t *in,
                      const uint32_t *index, size_t n, size_t channels, size_t height, size_t width, uint8_t *out)
{
    size_t oh, ow;
    mx_augment_output_size(cfg, height, width, &oh, &ow);
    const size_t in_size = channels * height * width, out_size = channels * oh * ow;
    const int draws = mx_augment_random(cfg, height, width);
    const long long count = (long long)n;
#pragma omp parallel for schedule(static) if (n * out_size >= PARALLEL_MIN_BYTES)
    for (long long i = 0; i < count; i++) {
        mx_augment_draw d = {0, 0, 0};
        if (draws) d = mx_augment_sample_draw(cfg, seed, epoch, index[i], height, width);
        mx_augment_apply(cfg, d, in + (size_t)i * in_size, channels, height, width, out + (size_t)i * out_size);
    }
}

mx_status mx_augment_sample(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const mx_dataset *ds, size_t i,
                            uint8_t *scratch, uint8_t *out)
{
    if (cfg->resized_crop) return mx_dataset_sample_resized_crop(ds, i, cfg->hflip, seed, epoch, out);
    const uint8_t *px;
    mx_status st = mx_dataset_sample(ds, i, scratch, &px);
    if (st != MX_OK) return st;
    mx_augment_draw d = {0, 0, 0};
    if (mx_augment_random(cfg, ds->height, ds->width))
        d = mx_augment_sample_draw(cfg, seed, epoch, (uint32_t)i, ds->height, ds->width);
    mx_augment_apply(cfg, d, px, ds->channels, ds->height, ds->width, out);
    return MX_OK;
}

/* Streamed: each sample decoded (and augmented) as bytes into per-thread
 * buffers, then normalised; decoding dominates, so always in parallel. */
static mx_status gather_streamed(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const mx_dataset *ds,
                                 const mx_normalizer *nz, const uint32_t *idx, size_t n, float *x, int32_t *y)
{
    size_t oh, ow;
    mx_augment_output_size(cfg, ds->height, ds->width, &oh, &ow);
    const size_t plane = oh * ow, out_size = ds->channels * plane;
    mx_first_error fe;
    mx_first_error_init(&fe);
#pragma omp parallel
    {
        uint8_t *scratch = malloc(mx_dataset_sample_size(ds)), *image = malloc(out_size);
        const int usable = scratch && image;
        if (!usable) mx_first_error_note(&fe, 0, mx_error_set(MX_ERR_NOMEM, "out of memory decoding a batch"));
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++) {
            if (!usable) continue;
            mx_status st = mx_augment_sample(cfg, seed, epoch, ds, idx[i], scratch, image);
            if (st != MX_OK) {
                mx_first_error_note(&fe, i, st);
                continue;
            }
            float *restrict dst = x + i * out_size;
            for (size_t c = 0; c < ds->channels; c++) {
                const float *restrict lut = nz->lut[c];
                for (size_t k = 0; k < plane; k++) dst[c * plane + k] = lut[image[c * plane + k]];
            }
            if (y) y[i] = ds->labels[idx[i]];
        }
        free(scratch);
        free(image);
    }
    return mx_first_error_raise(&fe);
}

mx_status mx_augment_gather(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const mx_dataset *ds,
                            const mx_normalizer *nz, const uint32_t *idx, size_t n, float *x, int32_t *y)
{
    if (ds->stream) return gather_streamed(cfg, seed, epoch, ds, nz, idx, n, x, y);
    if (cfg->resized_crop)
        return mx_error_set(MX_ERR_ARG, "--augment rrc needs the original images: a streamed image folder");
    size_t oh, ow;
    mx_augment_output_size(cfg, ds->height, ds->width, &oh, &ow);
    const size_t in_size = ds->channels * ds->height * ds->width, out_size = ds->channels * oh * ow;
    const int draws = mx_augment_random(cfg, ds->height, ds->width);
    const long long count = (long long)n;
#pragma omp parallel for schedule(static) if (n * out_size * sizeof(float) >= PARALLEL_MIN_BYTES)
    for (long long i = 0; i < count; i++) {
        mx_augment_draw d = {0, 0, 0};
        if (draws) d = mx_augment_sample_draw(cfg, seed, epoch, idx[i], ds->height, ds->width);
        apply_normalized(cfg, d, ds->pixels + (size_t)idx[i] * in_size, ds->channels, ds->height, ds->width, nz,
                         x + (size_t)i * out_size);
        if (y) y[i] = ds->labels[idx[i]];
    }
    return MX_OK;
}

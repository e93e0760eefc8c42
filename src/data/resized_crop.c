/* RandomResizedCrop + horizontal flip, torchvision's ImageNet training recipe. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/fileio.h"
#include "mixreg/image.h"
#include "mixreg/resized_crop.h"

#define SCALE_MIN 0.08
#define RATIO_MIN (3.0 / 4.0)
#define RATIO_MAX (4.0 / 3.0)

mx_resized_crop_draw mx_resized_crop_sample(mx_rng *rng, size_t height, size_t width)
{
    mx_resized_crop_draw d = {0, 0, height, width, 0};
    double area = (double)height * (double)width;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * (SCALE_MIN + (1.0 - SCALE_MIN) * mx_rng_uniform(rng));
        double log_ratio = log(RATIO_MIN) + (log(RATIO_MAX) - log(RATIO_MIN)) * mx_rng_uniform(rng);
        double aspect = exp(log_ratio);
        long w = lround(sqrt(target * aspect)), h = lround(sqrt(target / aspect));
        if (w > 0 && h > 0 && (size_t)w <= width && (size_t)h <= height) {
            d.height = (size_t)h, d.width = (size_t)w;
            d.top = mx_rng_below(rng, (uint32_t)(height - d.height + 1));
            d.left = mx_rng_below(rng, (uint32_t)(width - d.width + 1));
            d.flip = (int)(mx_rng_u32(rng) >> 31);
            return d;
        }
    }
    /* Fallback: the whole image, clamped to the ratio range, centred. */
    double in_ratio = (double)width / (double)height;
    if (in_ratio < RATIO_MIN) d.height = (size_t)lround((double)width / RATIO_MIN);
    else if (in_ratio > RATIO_MAX) d.width = (size_t)lround((double)height * RATIO_MAX);
    if (d.height > height) d.height = height;
    if (d.width > width) d.width = width;
    d.top = (height - d.height) / 2;
    d.left = (width - d.width) / 2;
    d.flip = (int)(mx_rng_u32(rng) >> 31);
    return d;
}

mx_resized_crop_draw mx_resized_crop_draw_for(uint64_t seed, uint64_t epoch, uint32_t index, size_t height, size_t width)
{
    mx_rng rng;
    mx_rng_init(&rng, seed, (epoch << 32) | MX_STREAM_AUGMENT);
    rng.ctr[1] = index;  /* each sample its own block range, as in augment.c */
    return mx_resized_crop_sample(&rng, height, width);
}

mx_status mx_resized_crop_apply(const uint8_t *in, size_t channels, size_t height, size_t width,
                                const mx_resized_crop_draw *d, size_t side, uint8_t *out)
{
    if (!side || !d->height || !d->width || d->top + d->height > height || d->left + d->width > width)
        return mx_error_set(MX_ERR_ARG, "resized crop: window %zux%zu at (%zu, %zu) does not fit %zux%zu", d->height,
                            d->width, d->top, d->left, height, width);
    uint8_t *window = malloc(channels * d->height * d->width);
    if (!window) return mx_error_set(MX_ERR_NOMEM, "out of memory for a crop");
    for (size_t c = 0; c < channels; c++)
        for (size_t y = 0; y < d->height; y++)
            memcpy(window + (c * d->height + y) * d->width, in + (c * height + d->top + y) * width + d->left, d->width);
    mx_status st = mx_image_resize(window, channels, d->height, d->width, 1, out, side, side);
    free(window);
    if (st != MX_OK || !d->flip) return st;
    for (size_t row = 0; row < channels * side; row++) {
        uint8_t *p = out + row * side;
        for (size_t x = 0; x < side / 2; x++) {
            uint8_t t = p[x];
            p[x] = p[side - 1 - x];
            p[side - 1 - x] = t;
        }
    }
    return MX_OK;
}

mx_status mx_folder_load_sample_train(const mx_folder_index *index, size_t i, size_t side, uint64_t seed,
                                      uint64_t epoch, uint8_t *out_chw)
{
    return mx_folder_load_sample_train_as(index, i, (uint32_t)i, side, seed, epoch, 1, out_chw);
}

mx_status mx_folder_load_sample_train_as(const mx_folder_index *index, size_t i, uint32_t draw_index, size_t side,
                                         uint64_t seed, uint64_t epoch, int hflip, uint8_t *out_chw)
{
    if (i >= index->n || !side) return mx_error_set(MX_ERR_ARG, "folder sample %zu of %zu (side %zu)", i, index->n, side);
    const char *path = index->paths[i];
    char *data;
    size_t len;
    mx_status st = mx_file_read_all(path, MX_IMAGE_MAX_FILE_BYTES, &data, &len);
    if (st != MX_OK) return st;
    /* The size from the header, the window from the size, then only the
     * pixels under the window. */
    mx_image_source *src;
    mx_image_info info;
    st = mx_image_source_open(path, data, len, NULL, &src, &info);
    if (st == MX_OK) {
        mx_resized_crop_draw d = mx_resized_crop_draw_for(seed, epoch, draw_index, info.height, info.width);
        if (!hflip) d.flip = 0;
        st = mx_image_source_resized_crop(src, d.top, d.left, d.height, d.width, side, side, d.flip, 1, out_chw);
        mx_image_source_close(src);
    }
    free(data);
    return st;
}

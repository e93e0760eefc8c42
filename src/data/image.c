/* Still images: format detection, the size limits, the entry points
 * (mx_image_decode, mx_image_read) and image sources (the header first, then
 * only the pixels wanted). The decoders are image_jpeg.c and image_png.c, the
 * resampling image_resample.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_internal.h"
#include "mixreg/fileio.h"

mx_image_format mx_image_detect(const void *data, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = data;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return MX_IMAGE_JPEG;
    if (len >= 8 && !memcmp(b, png_sig, 8)) return MX_IMAGE_PNG;
    return MX_IMAGE_UNKNOWN;
}

mx_status mx_image_max_pixels(size_t *out)
{
    *out = MX_IMAGE_DEFAULT_MAX_PIXELS;
    const char *env = getenv("MIXREG_MAX_IMAGE_PIXELS");
    if (!env) return MX_OK;
    /* Digits only: strtoull alone would take " 12", "-1" (as a huge number) and "12abc". */
    size_t digits = strspn(env, "0123456789");
    unsigned long long v = digits && digits <= 19 && !env[digits] ? strtoull(env, NULL, 10) : 0;
    if (v < 1 || v > MX_IMAGE_MAX_PIXELS)
        return mx_error_set(MX_ERR_ARG, "$MIXREG_MAX_IMAGE_PIXELS: '%.40s' is not a whole number from 1 to %zu", env,
                            MX_IMAGE_MAX_PIXELS);
    *out = (size_t)v;
    return MX_OK;
}

mx_status mx_img_pixel_limit(const mx_image_decode_options *opts, size_t *limit)
{
    if (opts && opts->max_pixels) {
        *limit = opts->max_pixels < MX_IMAGE_MAX_PIXELS ? opts->max_pixels : MX_IMAGE_MAX_PIXELS;
        return MX_OK;
    }
    return mx_image_max_pixels(limit);
}

mx_status mx_img_check_dimensions(const char *name, const char *kind, unsigned long width, unsigned long height,
                                  size_t max_pixels)
{
    if (width == 0 || height == 0)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s image of %lux%lu pixels is empty", name, kind, width, height);
    if (width > MX_IMAGE_MAX_SIDE || height > MX_IMAGE_MAX_SIDE)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s image of %lux%lu pixels (width x height) is over the limit of %d "
                            "pixels a side", name, kind, width, height, MX_IMAGE_MAX_SIDE);
    if ((size_t)width * height > max_pixels)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s image of %lux%lu pixels (width x height) is over the limit of %zu "
                            "pixels ($MIXREG_MAX_IMAGE_PIXELS raises it, up to %zu)", name, kind, width, height,
                            max_pixels, MX_IMAGE_MAX_PIXELS);
    return MX_OK;
}

/* ---- entry points ---------------------------------------------------------- */

static mx_status not_an_image(const char *name, const void *data, size_t len)
{
    if (len == 0) return mx_error_set(MX_ERR_FORMAT, "%s: the file is empty (expected a JPEG or PNG image)", name);
    const uint8_t *b = data;
    char first[32] = "";
    for (size_t i = 0; i < len && i < 4; i++) snprintf(first + 3 * i, sizeof first - 3 * i, " %02x", b[i]);
    return mx_error_set(MX_ERR_FORMAT, "%s: not a JPEG or PNG image (it starts with bytes%s)", name, first);
}

mx_status mx_image_decode(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                          mx_image *out)
{
    memset(out, 0, sizeof *out);
    switch (len ? mx_image_detect(data, len) : MX_IMAGE_UNKNOWN) {
    case MX_IMAGE_JPEG:
        return mx_img_decode_jpeg(name, data, len, opts, out);
    case MX_IMAGE_PNG:
        return mx_img_decode_png(name, data, len, opts, out);
    default:
        return not_an_image(name, data, len);
    }
}

mx_status mx_image_read(const char *path, const mx_image_decode_options *opts, mx_image *out)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    mx_status st = mx_file_read_all(path, MX_IMAGE_MAX_FILE_BYTES, &data, &len);
    if (st != MX_OK) return st;
    st = mx_image_decode(path, data, len, opts, out);
    free(data);
    return st;
}

void mx_image_free(mx_image *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* ---- sources: the header first, then only the pixels wanted ---------------- */

struct mx_image_source {
    mx_image_format format;
    char *name;
    size_t height, width;
    mx_img_jpeg *jpeg;  /* JPEG: the header read */
    mx_image png;    /* PNG: the whole image */
};

mx_status mx_image_source_open(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                               mx_image_source **out, mx_image_info *info)
{
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    mx_image_format format = len ? mx_image_detect(data, len) : MX_IMAGE_UNKNOWN;
    if (format == MX_IMAGE_UNKNOWN) return not_an_image(name, data, len);
    mx_image_source *s = calloc(1, sizeof *s);
    size_t name_len = strlen(name);
    char *copy = malloc(name_len + 1);
    if (!s || !copy) {
        free(s);
        free(copy);
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    }
    memcpy(copy, name, name_len + 1);
    s->name = copy;
    s->format = format;
    mx_status st;
    if (format == MX_IMAGE_JPEG) {
        st = mx_img_jpeg_open(s->name, data, len, opts, &s->jpeg, &s->height, &s->width);
    } else {
        st = mx_img_decode_png(s->name, data, len, opts, &s->png);
        s->height = s->png.height, s->width = s->png.width;
    }
    if (st != MX_OK) {
        mx_image_source_close(s);
        return st;
    }
    if (info) info->format = format, info->height = s->height, info->width = s->width;
    *out = s;
    return MX_OK;
}

void mx_image_source_close(mx_image_source *src)
{
    if (!src) return;
    mx_img_jpeg_close(src->jpeg);
    mx_image_free(&src->png);
    free(src->name);
    free(src);
}

static mx_status check_window(const mx_image_source *s, size_t top, size_t left, size_t height, size_t width)
{
    if (!height || !width || height > s->height || top > s->height - height || width > s->width ||
        left > s->width - width)
        return mx_error_set(MX_ERR_ARG, "%s: a %zux%zu window at (%zu, %zu) does not fit in the %zux%zu image",
                            s->name, width, height, left, top, s->width, s->height);
    return MX_OK;
}

mx_status mx_image_source_decode_region(mx_image_source *src, size_t top, size_t left, size_t height, size_t width,
                                        size_t min_height, size_t min_width, mx_image *out, mx_image_region *where)
{
    memset(out, 0, sizeof *out);
    if (where) memset(where, 0, sizeof *where);
    mx_status st = check_window(src, top, left, height, width);
    if (st != MX_OK) return st;
    unsigned d = src->format == MX_IMAGE_JPEG ? mx_img_window_reduction(height, width, min_height, min_width) : 1;
    size_t y0 = top / d, y1 = (top + height + d - 1) / d, x0 = left / d, x1 = (left + width + d - 1) / d;
    if (y1 > mx_img_scaled_side(src->height, d)) y1 = mx_img_scaled_side(src->height, d);
    if (x1 > mx_img_scaled_side(src->width, d)) x1 = mx_img_scaled_side(src->width, d);
    if (src->format == MX_IMAGE_JPEG) {
        st = mx_img_jpeg_decode_chw(src->jpeg, d, y0, y1, x0, x1, out);
        if (st != MX_OK) return st;
    } else {
        size_t w = x1 - x0, h = y1 - y0;
        if (!(out->pixels = malloc(3 * h * w)))
            return mx_error_set(MX_ERR_NOMEM, "%s: out of memory for a %zux%zu window", src->name, w, h);
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < h; y++)
                memcpy(out->pixels + (c * h + y) * w, src->png.pixels + (c * src->height + y0 + y) * src->width + x0,
                       w);
        out->height = h;
        out->width = w;
    }
    if (where) {
        where->scale_denom = d;
        where->top = y0;
        where->left = x0;
        where->box_top = (double)top / d - (double)y0;
        where->box_left = (double)left / d - (double)x0;
        where->box_height = (double)height / d;
        where->box_width = (double)width / d;
    }
    return MX_OK;
}

mx_status mx_image_decode_region(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                                 size_t top, size_t left, size_t height, size_t width, size_t min_height,
                                 size_t min_width, mx_image *out, mx_image_region *where)
{
    memset(out, 0, sizeof *out);
    if (where) memset(where, 0, sizeof *where);
    mx_image_source *src;
    mx_status st = mx_image_source_open(name, data, len, opts, &src, NULL);
    if (st != MX_OK) return st;
    st = mx_image_source_decode_region(src, top, left, height, width, min_height, min_width, out, where);
    mx_image_source_close(src);
    return st;
}

mx_status mx_image_source_resized_crop(mx_image_source *src, size_t top, size_t left, size_t height, size_t width,
                                       size_t out_height, size_t out_width, int flip, int dct_scaling, uint8_t *out)
{
    mx_status st = check_window(src, top, left, height, width);
    if (st != MX_OK) return st;
    if (!out_height || !out_width)
        return mx_error_set(MX_ERR_ARG, "%s: resizing a window to %zux%zu", src->name, out_width, out_height);
    unsigned d = src->format == MX_IMAGE_JPEG && dct_scaling
                     ? mx_img_window_reduction(height, width, out_height, out_width) : 1;
    mx_img_resampler r;
    mx_img_resampler_plan(&r, src->name, mx_img_scaled_side(src->height, d), mx_img_scaled_side(src->width, d), d, top, left, height, width,
                   out_height, out_width, flip, out);
    if (src->format == MX_IMAGE_JPEG) {
        st = mx_img_jpeg_resize(src->jpeg, d, &r);
    } else {
        st = mx_img_resampler_begin(&r, r.rx0, r.rx1 - r.rx0);
        const size_t plane = src->height * src->width, w = r.rx1 - r.rx0;
        for (size_t y = r.ry0; st == MX_OK && y < r.ry1; y++) {
            const uint8_t *p = src->png.pixels + y * src->width + r.rx0;
            uint8_t *row = mx_img_resampler_row(&r, y);
            for (size_t x = 0; x < w; x++, row += 4)
                row[0] = p[x], row[1] = p[plane + x], row[2] = p[2 * plane + x], row[3] = 255;
            mx_img_resampler_put(&r, y);
        }
    }
    if (st == MX_OK && r.next != out_height) /* cannot happen: the last input row completes every output row */
        st = mx_error_set(MX_ERR_FORMAT, "%s: internal error: %zu of %zu rows resized", src->name, r.next, out_height);
    mx_img_resampler_free(&r);
    return st;
}

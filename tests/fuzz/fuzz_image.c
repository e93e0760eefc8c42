/* libFuzzer target for the JPEG and PNG decoders: any bytes must decode or
 * fail cleanly (an mx_status, never a crash, an exit from libjpeg, an
 * out-of-bounds access or a leak; ASan and UBSan watch). Decoded images are
 * then run through the resampling helpers, and a window picked by the input's
 * last bytes is decoded alone (mx_image_source_*), several times from one
 * source, which must give exactly the full decode's pixels (and the resize
 * of them) when the full decode succeeded at full scale. The pixel limit is
 * lowered to 2^22 so a header claiming a huge image is refused rather than
 * slowly filled; the last byte of the input picks the JPEG reduction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The window decoders on bytes that decoded whole into img. */
static void window_checks(const uint8_t *data, size_t size, const mx_image_decode_options *opts, const mx_image *img)
{
    mx_image_source *src;
    mx_image_info info;
    if (mx_image_source_open("fuzz", data, size, opts, &src, &info) != MX_OK) abort(); /* the header was fine */
    int full_scale = info.height == img->height && info.width == img->width;
    size_t h = info.height, w = info.width, b[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < 4 && i + 1 < size; i++) b[i] = data[size - 2 - i] * 257u + data[i];
    size_t top = b[0] % h, left = b[1] % w, wh = 1 + b[2] % (h - top), ww = 1 + b[3] % (w - left);
    for (int pass = 0; pass < 2; pass++) { /* twice: a source decodes again after a success or a failure */
        mx_image r;
        mx_image_region where;
        mx_status st = mx_image_source_decode_region(src, top, left, wh, ww, 0, 0, &r, &where);
        if (st == MX_OK) {
            if (r.height != wh || r.width != ww || where.scale_denom != 1) abort();
            if (full_scale)
                for (size_t c = 0; c < 3; c++)
                    for (size_t y = 0; y < wh; y++)
                        if (memcmp(r.pixels + (c * wh + y) * ww, img->pixels + (c * h + top + y) * w + left, ww))
                            abort();
            mx_image_free(&r);
        } else if (r.pixels) {
            abort();
        }
        if (mx_image_source_decode_region(src, top, left, wh, ww, 3, 2, &r, &where) == MX_OK) mx_image_free(&r);
        uint8_t got[3 * 9 * 7], want[3 * 9 * 7];
        if (mx_image_source_resized_crop(src, top, left, wh, ww, 5, 6, pass, 1, got) != MX_OK) continue;
        if (mx_image_source_resized_crop(src, top, left, wh, ww, 9, 7, 0, 0, got) != MX_OK || !full_scale) continue;
        uint8_t *crop = malloc(3 * wh * ww);
        if (!crop) abort();
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < wh; y++)
                memcpy(crop + (c * wh + y) * ww, img->pixels + (c * h + top + y) * w + left, ww);
        if (mx_image_resize(crop, 3, wh, ww, 1, want, 9, 7) != MX_OK || memcmp(got, want, sizeof got)) abort();
        free(crop);
    }
    mx_image_source_close(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t min_sides[4] = {0, 1, 16, 100};
    mx_image_decode_options opts = {size ? min_sides[data[size - 1] & 3] : 0, (size_t)1 << 22};
    mx_image img;
    mx_status st = mx_image_decode("fuzz", data, size, &opts, &img);
    if (st != MX_OK) {
        if (img.pixels || img.width || img.height) abort(); /* a failure leaves nothing behind */
        return 0;
    }
    if (!img.pixels || !img.width || !img.height || img.width > MX_IMAGE_MAX_SIDE || img.height > MX_IMAGE_MAX_SIDE)
        abort();
    /* Touch every pixel, then resample both ways. */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < 3 * img.width * img.height; i++) sink ^= img.pixels[i];
    (void)sink;
    uint8_t out[3 * 9 * 7];
    if (mx_image_resize(img.pixels, 3, img.height, img.width, 0, out, 9, 7) != MX_OK) abort();
    if (mx_image_resize(img.pixels, 3, img.height, img.width, 1, out, 7, 9) != MX_OK) abort();
    if (mx_image_resize_center_crop(img.pixels, 3, img.height, img.width, 8, 7, 1, out) != MX_OK) abort();
    window_checks(data, size, &opts, &img);
    mx_image_free(&img);
    return 0;
}

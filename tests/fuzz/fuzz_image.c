/* libFuzzer target for the JPEG and PNG decoders: any bytes must decode or
 * fail cleanly (an mx_status, never a crash, an exit from libjpeg, an
 * out-of-bounds access or a leak; ASan and UBSan watch). Decoded images are
 * then run through the resampling helpers. The pixel limit is lowered to 2^22
 * so a header claiming a huge image is refused rather than slowly filled;
 * the first byte of the input picks the JPEG reduction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    mx_image_free(&img);
    return 0;
}

/* Writes the seed corpus of fuzz_image into the directory given: small valid
 * images of each kind the decoders take (baseline, progressive, grayscale,
 * CMYK and YCCK JPEGs; RGB, interlaced, RGBA, gray, 16-bit and palette PNGs),
 * encoded with libjpeg and libpng (tests/image_fixtures.h), beside the found
 * inputs kept in tests/fuzz/seeds/fuzz_image. Built and run by
 * scripts/fuzz.sh. */
#include <stdio.h>

#include "image_fixtures.h"

static const char *g_dir;

static void save(const char *name, fx_buf b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    fx_write_file(path, b.data, b.len);
    free(b.data);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    enum { w = 11, h = 7 };
    uint8_t *rgb = fx_gradient_rgb(w, h), gray[w * h], cmyk[w * h * 4], rgba[w * h * 4], rows16[w * h * 6];
    for (size_t i = 0; i < (size_t)w * h; i++) {
        gray[i] = (uint8_t)(i * 3);
        for (size_t c = 0; c < 4; c++) cmyk[4 * i + c] = (uint8_t)(i * (c + 1) + 40 * c);
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(255 - i);
        for (size_t c = 0; c < 6; c++) rows16[6 * i + c] = (uint8_t)(i * 7 + c * 31);
    }
    fx_jpeg_options base = {90, 0, 0, JCS_UNKNOWN, 0}, prog = {90, 1, 1, JCS_UNKNOWN, 0},
                    ycck = {90, 1, 0, JCS_YCCK, 0};
    save("seed-rgb.jpg", fx_encode_jpeg(rgb, w, h, JCS_RGB, &base));
    save("seed-progressive.jpg", fx_encode_jpeg(rgb, w, h, JCS_RGB, &prog));
    save("seed-gray.jpg", fx_encode_jpeg(gray, w, h, JCS_GRAYSCALE, &base));
    save("seed-cmyk.jpg", fx_encode_jpeg(cmyk, w, h, JCS_CMYK, &base));
    save("seed-ycck.jpg", fx_encode_jpeg(cmyk, w, h, JCS_CMYK, &ycck));
    save("seed-rgb.png", fx_encode_png_rgb(rgb, w, h));
    fx_png_options adam7 = {PNG_COLOR_TYPE_RGB, 8, 1, NULL, 0, NULL, 0};
    save("seed-interlaced.png", fx_encode_png(rgb, 3 * w, w, h, &adam7));
    fx_png_options o_rgba = {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, NULL, 0, NULL, 0};
    save("seed-rgba.png", fx_encode_png(rgba, 4 * w, w, h, &o_rgba));
    fx_png_options o_gray = {PNG_COLOR_TYPE_GRAY, 8, 0, NULL, 0, NULL, 0};
    save("seed-gray.png", fx_encode_png(gray, w, w, h, &o_gray));
    fx_png_options o_16 = {PNG_COLOR_TYPE_RGB, 16, 0, NULL, 0, NULL, 0};
    save("seed-rgb16.png", fx_encode_png(rows16, 6 * w, w, h, &o_16));
    png_color palette[4] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
    png_byte trans[2] = {0, 128};
    uint8_t packed[h][(w + 3) / 4];
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < (w + 3) / 4; x++) packed[y][x] = (uint8_t)(0x1b + x + y);
    fx_png_options o_pal = {PNG_COLOR_TYPE_PALETTE, 2, 0, palette, 4, trans, 2};
    save("seed-palette.png", fx_encode_png(&packed[0][0], (w + 3) / 4, w, h, &o_pal));
    free(rgb);
    return 0;
}

/* JPEG and PNG decoding (fixtures encoded here with libjpeg and libpng: odd
 * sizes, grayscale, CMYK and YCCK, progressive, palette, 1- to 16-bit, alpha,
 * interlaced), every way a file can be bad, and the resampling helpers. */
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "test_tmp.h"
#include "image_fixtures.h"
#include "mixreg/image.h"


#define W 37
#define H 23

static const fx_jpeg_options JPEG_BEST = {100, 1, 0, JCS_UNKNOWN, 0};

/* Largest |decoded - expected| over all pixels, expected(c, x, y) given
 * interleaved with `comps` channels (1: replicated). */
static int max_error(const mx_image *img, const uint8_t *expected, size_t comps)
{
    int worst = 0;
    for (size_t c = 0; c < 3; c++)
        for (size_t y = 0; y < img->height; y++)
            for (size_t x = 0; x < img->width; x++) {
                int got = img->pixels[(c * img->height + y) * img->width + x];
                int want = expected[(y * img->width + x) * comps + (comps == 1 ? 0 : c)];
                int d = got > want ? got - want : want - got;
                if (d > worst) worst = d;
            }
    return worst;
}

/* ---- JPEG ---------------------------------------------------------------- */

static void test_jpeg_rgb(void)
{
    uint8_t *rgb = fx_gradient_rgb(W, H);
    fx_buf j = fx_encode_jpeg(rgb, W, H, JCS_RGB, &JPEG_BEST);
    CHECK(mx_image_detect(j.data, j.len) == MX_IMAGE_JPEG);
    mx_image img;
    CHECK_OK(mx_image_decode("rgb.jpg", j.data, j.len, NULL, &img));
    CHECK(img.width == W && img.height == H && img.pixels);
    CHECK(max_error(&img, rgb, 3) <= 3);
    mx_image_free(&img);
    CHECK(img.pixels == NULL);

    /* Progressive, default 4:2:0 chroma: still close on a smooth image. */
    fx_jpeg_options prog = {95, 0, 1, JCS_UNKNOWN, 0};
    fx_buf p = fx_encode_jpeg(rgb, W, H, JCS_RGB, &prog);
    CHECK_OK(mx_image_decode("prog.jpg", p.data, p.len, NULL, &img));
    CHECK(img.width == W && img.height == H && max_error(&img, rgb, 3) <= 8);
    mx_image_free(&img);

    /* Stored as RGB rather than YCbCr. */
    fx_jpeg_options stored_rgb = {100, 1, 0, JCS_RGB, 0};
    fx_buf s = fx_encode_jpeg(rgb, W, H, JCS_RGB, &stored_rgb);
    CHECK_OK(mx_image_decode("stored-rgb.jpg", s.data, s.len, NULL, &img));
    CHECK(img.width == W && max_error(&img, rgb, 3) <= 3);
    mx_image_free(&img);
    free(j.data);
    free(p.data);
    free(s.data);
    free(rgb);
}

static void test_jpeg_gray(void)
{
    uint8_t gray[W * H];
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) gray[y * W + x] = (uint8_t)(5 * x + 3 * y);
    fx_buf j = fx_encode_jpeg(gray, W, H, JCS_GRAYSCALE, &JPEG_BEST);
    mx_image img;
    CHECK_OK(mx_image_decode("gray.jpg", j.data, j.len, NULL, &img));
    CHECK(img.width == W && img.height == H);
    CHECK(max_error(&img, gray, 1) <= 2);
    size_t plane = W * H, same = 1;
    for (size_t i = 0; i < plane; i++)
        same &= img.pixels[i] == img.pixels[plane + i] && img.pixels[i] == img.pixels[2 * plane + i];
    CHECK(same); /* replicated exactly */
    mx_image_free(&img);
    free(j.data);
}

/* CMYK and YCCK (libjpeg writes the Adobe marker, so the values read as
 * inverted: R = C * K / 255), and plain CMYK without the marker. */
static void test_jpeg_cmyk(void)
{
    uint8_t cmyk[W * H * 4], inverted[W * H * 3], plain[W * H * 3];
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) {
            uint8_t *p = cmyk + (y * W + x) * 4;
            p[0] = (uint8_t)(100 + 3 * x), p[1] = (uint8_t)(50 + 4 * y), p[2] = (uint8_t)(200 - 2 * x);
            p[3] = (uint8_t)(180 + y);
            for (size_t c = 0; c < 3; c++) {
                inverted[(y * W + x) * 3 + c] = (uint8_t)((p[c] * p[3] + 127) / 255);
                plain[(y * W + x) * 3 + c] = (uint8_t)(((255 - p[c]) * (255 - p[3]) + 127) / 255);
            }
        }
    mx_image img;
    fx_buf j = fx_encode_jpeg(cmyk, W, H, JCS_CMYK, &JPEG_BEST);
    CHECK_OK(mx_image_decode("cmyk.jpg", j.data, j.len, NULL, &img));
    CHECK(img.width == W && img.height == H && max_error(&img, inverted, 3) <= 4);
    mx_image_free(&img);
    free(j.data);

    fx_jpeg_options ycck = {100, 1, 0, JCS_YCCK, 0};
    j = fx_encode_jpeg(cmyk, W, H, JCS_CMYK, &ycck);
    CHECK_OK(mx_image_decode("ycck.jpg", j.data, j.len, NULL, &img));
    CHECK(img.width == W && img.height == H && max_error(&img, inverted, 3) <= 4);
    mx_image_free(&img);
    free(j.data);

    fx_jpeg_options bare = {100, 1, 0, JCS_CMYK, 1};
    j = fx_encode_jpeg(cmyk, W, H, JCS_CMYK, &bare);
    CHECK_OK(mx_image_decode("cmyk-no-adobe.jpg", j.data, j.len, NULL, &img));
    CHECK(img.width == W && img.height == H && max_error(&img, plain, 3) <= 4);
    mx_image_free(&img);
    free(j.data);
}

/* DCT scaling: the smallest power-of-two reduction keeping the shorter side
 * >= min_side. */
static void test_jpeg_scaled(void)
{
    size_t w = 200, h = 120;
    uint8_t *rgb = fx_gradient_rgb(w, h);
    fx_buf j = fx_encode_jpeg(rgb, w, h, JCS_RGB, &JPEG_BEST);
    static const size_t min_side[] = {0, 200, 121, 120, 61, 60, 50, 30, 20, 15, 1};
    static const size_t want_w[] = {200, 200, 200, 200, 200, 100, 100, 50, 50, 25, 25};
    for (size_t k = 0; k < sizeof min_side / sizeof *min_side; k++) {
        mx_image_decode_options o = {min_side[k], 0};
        mx_image img;
        CHECK_OK(mx_image_decode("big.jpg", j.data, j.len, &o, &img));
        CHECK(img.width == want_w[k] && img.height == want_w[k] * 120 / 200);
        mx_image_free(&img);
    }
    free(j.data);
    free(rgb);
}

/* ---- PNG ----------------------------------------------------------------- */

/* Decodes a PNG and checks every pixel against expected (interleaved RGB). */
static void check_png(const char *name, fx_buf b, const uint8_t *expected, size_t w, size_t h)
{
    mx_image img;
    CHECK(mx_image_detect(b.data, b.len) == MX_IMAGE_PNG);
    mx_status st = mx_image_decode(name, b.data, b.len, NULL, &img);
    CHECK_OK(st);
    if (st != MX_OK) return;
    CHECK(img.width == w && img.height == h);
    if (img.width == w && img.height == h) {
        int err = max_error(&img, expected, 3);
        if (err) fprintf(stderr, "%s: off by up to %d\n", name, err);
        CHECK(err == 0);
    }
    mx_image_free(&img);
}

static void test_png_rgb(void)
{
    uint8_t *rgb = fx_gradient_rgb(W, H);
    fx_buf b = fx_encode_png_rgb(rgb, W, H);
    check_png("rgb.png", b, rgb, W, H);
    free(b.data);

    fx_png_options adam7 = {PNG_COLOR_TYPE_RGB, 8, 1, NULL, 0, NULL, 0};
    b = fx_encode_png(rgb, 3 * W, W, H, &adam7);
    check_png("interlaced.png", b, rgb, W, H);
    free(b.data);

    /* RGBA and gray + alpha: the alpha is dropped, colours kept as stored. */
    uint8_t rgba[W * H * 4], ga[W * H * 2], ga_rgb[W * H * 3];
    for (size_t i = 0; i < W * H; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i * 7);
        ga[2 * i] = (uint8_t)(i * 3), ga[2 * i + 1] = (uint8_t)(255 - i);
        memset(ga_rgb + 3 * i, ga[2 * i], 3);
    }
    fx_png_options o_rgba = {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, NULL, 0, NULL, 0};
    b = fx_encode_png(rgba, 4 * W, W, H, &o_rgba);
    check_png("rgba.png", b, rgb, W, H);
    free(b.data);
    fx_png_options o_ga = {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, NULL, 0, NULL, 0};
    b = fx_encode_png(ga, 2 * W, W, H, &o_ga);
    check_png("gray-alpha.png", b, ga_rgb, W, H);
    free(b.data);
    free(rgb);
}

/* 16-bit RGB and gray: scaled to 8 bits as (v * 255 + 32767) / 65535. */
static void test_png_16bit(void)
{
    uint8_t rows[H][W * 6], expected[W * H * 3], grows[H][W * 2], gexpected[W * H * 3];
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++)
            for (size_t c = 0; c < 3; c++) {
                unsigned v = (unsigned)((x * 1777 + y * 2711 + c * 20000 + x * y * 13) % 65536);
                rows[y][6 * x + 2 * c] = (uint8_t)(v >> 8), rows[y][6 * x + 2 * c + 1] = (uint8_t)v;
                expected[(y * W + x) * 3 + c] = (uint8_t)((v * 255 + 32767) / 65535);
                if (c == 0) {
                    unsigned g = 65535 - v;
                    grows[y][2 * x] = (uint8_t)(g >> 8), grows[y][2 * x + 1] = (uint8_t)g;
                    memset(gexpected + (y * W + x) * 3, (g * 255 + 32767) / 65535, 3);
                }
            }
    fx_png_options o = {PNG_COLOR_TYPE_RGB, 16, 0, NULL, 0, NULL, 0};
    fx_buf b = fx_encode_png(&rows[0][0], W * 6, W, H, &o);
    check_png("rgb16.png", b, expected, W, H);
    free(b.data);
    fx_png_options og = {PNG_COLOR_TYPE_GRAY, 16, 1, NULL, 0, NULL, 0};
    b = fx_encode_png(&grows[0][0], W * 2, W, H, &og);
    check_png("gray16-interlaced.png", b, gexpected, W, H);
    free(b.data);
}

/* Gray at 1, 2, 4 and 8 bits (scaled up: v * 255 / (2^depth - 1)), and a
 * 4-bit palette with transparency (which is dropped). */
static void test_png_gray_palette(void)
{
    static const int depths[] = {1, 2, 4, 8};
    for (size_t d = 0; d < 4; d++) {
        int depth = depths[d];
        uint8_t rows[H][W], expected[W * H * 3];
        memset(rows, 0, sizeof rows);
        unsigned maxv = (1u << depth) - 1;
        for (size_t y = 0; y < H; y++)
            for (size_t x = 0; x < W; x++) {
                unsigned v = (unsigned)(x + 2 * y) & maxv;
                size_t bit = x * (size_t)depth;
                rows[y][bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
                memset(expected + (y * W + x) * 3, (int)(v * 255 / maxv), 3);
            }
        fx_png_options o = {PNG_COLOR_TYPE_GRAY, depth, 0, NULL, 0, NULL, 0};
        fx_buf b = fx_encode_png(&rows[0][0], W, W, H, &o); /* rows W bytes apart, row_bytes used */
        char name[32];
        snprintf(name, sizeof name, "gray%d.png", depth);
        check_png(name, b, expected, W, H);
        free(b.data);
    }
    png_color palette[16];
    png_byte trans[16];
    for (int k = 0; k < 16; k++) {
        palette[k].red = (png_byte)(k * 16), palette[k].green = (png_byte)(255 - k * 9);
        palette[k].blue = (png_byte)(k * k);
        trans[k] = (png_byte)(k * 17);
    }
    uint8_t rows[H][(W + 1) / 2], expected[W * H * 3];
    memset(rows, 0, sizeof rows);
    for (size_t y = 0; y < H; y++)
        for (size_t x = 0; x < W; x++) {
            unsigned k = (unsigned)(x * 3 + y) % 16;
            rows[y][x / 2] |= (uint8_t)(x % 2 ? k : k << 4);
            uint8_t *e = expected + (y * W + x) * 3;
            e[0] = palette[k].red, e[1] = palette[k].green, e[2] = palette[k].blue;
        }
    fx_png_options o = {PNG_COLOR_TYPE_PALETTE, 4, 0, palette, 16, trans, 16};
    fx_buf b = fx_encode_png(&rows[0][0], (W + 1) / 2, W, H, &o);
    check_png("palette4-trns.png", b, expected, W, H);
    free(b.data);
    o.trans = NULL, o.num_trans = 0, o.interlace = 1;
    b = fx_encode_png(&rows[0][0], (W + 1) / 2, W, H, &o);
    check_png("palette4-interlaced.png", b, expected, W, H);
    free(b.data);
}

/* ---- bad files ------------------------------------------------------------ */

/* A PNG signature and an IHDR chunk (with a correct CRC) claiming w x h. */
static size_t png_header(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memcpy(out, sig, 8);
    uint8_t *c = out + 8;
    c[0] = 0, c[1] = 0, c[2] = 0, c[3] = 13;
    memcpy(c + 4, "IHDR", 4);
    for (int k = 0; k < 4; k++) c[8 + k] = (uint8_t)(w >> (24 - 8 * k)), c[12 + k] = (uint8_t)(h >> (24 - 8 * k));
    c[16] = 8, c[17] = 2, c[18] = 0, c[19] = 0, c[20] = 0; /* 8-bit RGB */
    uLong crc = crc32(0, c + 4, 17);
    for (int k = 0; k < 4; k++) c[21 + k] = (uint8_t)(crc >> (24 - 8 * k));
    return 8 + 25;
}

static void test_bad_files(void)
{
    mx_image img;
    CHECK_FAILS(mx_image_decode("empty.jpg", "", 0, NULL, &img), MX_ERR_FORMAT, "empty.jpg: the file is empty");
    CHECK_FAILS(mx_image_decode("text.jpg", "hello, world", 12, NULL, &img), MX_ERR_FORMAT,
                "text.jpg: not a JPEG or PNG image (it starts with bytes 68 65 6c 6c)");
    CHECK(img.pixels == NULL && img.width == 0);
    CHECK(mx_image_detect("\xff\xd8", 2) == MX_IMAGE_UNKNOWN);

    uint8_t *rgb = fx_gradient_rgb(W, H);
    fx_buf j = fx_encode_jpeg(rgb, W, H, JCS_RGB, &JPEG_BEST);
    for (size_t cut = j.len / 2; cut < j.len; cut = cut + (j.len - cut + 1) / 2)
        CHECK_FAILS(mx_image_decode("cut.jpg", j.data, cut, NULL, &img), MX_ERR_FORMAT, "cut.jpg: truncated JPEG");
    CHECK_FAILS(mx_image_decode("head.jpg", j.data, 3, NULL, &img), MX_ERR_FORMAT, "head.jpg: truncated JPEG");
    /* Cut short inside the scan and given an end marker (FF D9): libjpeg meets
     * the marker where entropy-coded data should be, only warns ("premature
     * end of data segment") and fills the rest with gray. An error here. */
    uint8_t *sealed = malloc(j.len + 2);
    for (size_t cut = j.len / 2; cut + 40 < j.len; cut += (j.len - cut) / 3) {
        memcpy(sealed, j.data, cut);
        sealed[cut] = 0xff, sealed[cut + 1] = 0xd9;
        /* Cut inside a Huffman code, the marker can also read as the data running out. */
        CHECK(mx_image_decode("sealed.jpg", sealed, cut + 2, NULL, &img) == MX_ERR_FORMAT);
        CHECK(strstr(mx_error_message(), "sealed.jpg: corrupt JPEG: premature end of data segment") ||
              strstr(mx_error_message(), "sealed.jpg: truncated JPEG"));
        CHECK(img.pixels == NULL);
    }
    /* Scan data damaged in the middle (a run of bytes zeroed): bad Huffman
     * codes, which libjpeg also only warns about. */
    memcpy(sealed, j.data, j.len);
    for (size_t i = j.len / 2; i < j.len / 2 + 24; i++) sealed[i] = sealed[i] == 0xff ? 0xff : (uint8_t)(sealed[i] ^ 0x55) & 0xfe;
    CHECK_FAILS(mx_image_decode("damaged.jpg", sealed, j.len, NULL, &img), MX_ERR_FORMAT, "damaged.jpg: corrupt JPEG: ");
    free(sealed);
    /* JPEG magic, then garbage. */
    uint8_t garbage[600];
    memcpy(garbage, j.data, 3);
    for (size_t i = 3; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 37 + 11);
    CHECK_FAILS(mx_image_decode("junk.jpg", garbage, sizeof garbage, NULL, &img), MX_ERR_FORMAT,
                "junk.jpg: corrupt JPEG: ");
    /* Absurd dimensions in the frame header (SOF0: FF C0, length, precision,
     * height, width), refused before anything is allocated. */
    uint8_t *big = malloc(j.len);
    memcpy(big, j.data, j.len);
    size_t sof = 2;
    while (sof + 9 < j.len && !(big[sof] == 0xff && big[sof + 1] == 0xc0)) sof++;
    CHECK(sof + 9 < j.len);
    big[sof + 5] = 0x4e, big[sof + 6] = 0x20; /* height 20000 */
    CHECK_FAILS(mx_image_decode("tall.jpg", big, j.len, NULL, &img), MX_ERR_FORMAT,
                "tall.jpg: JPEG image of 37x20000 pixels (width x height) is over the limit of 16384 pixels a side");
    big[sof + 5] = 0, big[sof + 6] = H;
    big[sof + 4] = 12; /* 12-bit samples */
    CHECK_FAILS(mx_image_decode("12bit.jpg", big, j.len, NULL, &img), MX_ERR_FORMAT, "12bit.jpg: corrupt JPEG: ");
    big[sof + 4] = 8;
    CHECK_OK(mx_image_decode("patched.jpg", big, j.len, NULL, &img)); /* the patching is sound */
    mx_image_free(&img);
    big[sof + 5] = 0, big[sof + 6] = 200; /* 37 x 200 is fine, but not with a limit of 5000 pixels */
    mx_image_decode_options small = {0, 5000};
    CHECK_FAILS(mx_image_decode("limit.jpg", big, j.len, &small, &img), MX_ERR_FORMAT,
                "limit.jpg: JPEG image of 37x200 pixels (width x height) is over the limit of 5000 pixels "
                "($MIXREG_MAX_IMAGE_PIXELS raises it, up to 268435456)");
    free(big);
    free(j.data);

    fx_buf p = fx_encode_png_rgb(rgb, W, H);
    CHECK_FAILS(mx_image_decode("cut.png", p.data, p.len / 2, NULL, &img), MX_ERR_FORMAT,
                "cut.png: corrupt PNG: truncated");
    CHECK_FAILS(mx_image_decode("sig.png", p.data, 8, NULL, &img), MX_ERR_FORMAT, "sig.png: corrupt PNG: truncated");
    uint8_t *flipped = malloc(p.len);
    memcpy(flipped, p.data, p.len);
    flipped[26] ^= 0x40; /* IHDR's compression method: the CRC no longer matches */
    CHECK_FAILS(mx_image_decode("crc.png", flipped, p.len, NULL, &img), MX_ERR_FORMAT, "crc.png: corrupt PNG: ");
    memcpy(flipped, p.data, p.len);
    for (size_t i = 60; i < p.len - 20; i++) flipped[i] ^= 0x5a; /* the image data */
    CHECK_FAILS(mx_image_decode("data.png", flipped, p.len, NULL, &img), MX_ERR_FORMAT, "data.png: corrupt PNG: ");
    free(flipped);
    free(p.data);
    free(rgb);

    uint8_t hdr[64];
    size_t n = png_header(hdr, 20000, 10);
    CHECK_FAILS(mx_image_decode("wide.png", hdr, n, NULL, &img), MX_ERR_FORMAT,
                "wide.png: PNG image of 20000x10 pixels (width x height) is over the limit of 16384 pixels a side");
    n = png_header(hdr, 16385, 1);
    CHECK_FAILS(mx_image_decode("wide.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "16385x1 pixels");
    n = png_header(hdr, 16384, 16384);
    mx_image_decode_options limit = {0, 1 << 20};
    CHECK_FAILS(mx_image_decode("huge.png", hdr, n, &limit, &img), MX_ERR_FORMAT, "16384x16384 pixels");
    n = png_header(hdr, 0x7fffffffu, 0x7fffffffu);
    CHECK_FAILS(mx_image_decode("max.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "max.png: ");
    n = png_header(hdr, 10, 10); /* a sane header, then nothing */
    CHECK_FAILS(mx_image_decode("short.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "short.png: corrupt PNG: truncated");

    CHECK_FAILS(mx_image_read("/nonexistent/x.jpg", NULL, &img), MX_ERR_IO, "/nonexistent/x.jpg");
}

/* The pixel limit: 2^26 by default, $MIXREG_MAX_IMAGE_PIXELS (1 to 2^28)
 * otherwise, an explicit max_pixels over both; images over it refused from
 * their header (the PNG headers here have no pixel data at all, so a decode
 * that went on would fail differently). */
static void test_pixel_limit(void)
{
    mx_image img;
    size_t limit;
    uint8_t hdr[64];
    unsetenv("MIXREG_MAX_IMAGE_PIXELS");
    CHECK_OK(mx_image_max_pixels(&limit));
    CHECK(limit == MX_IMAGE_DEFAULT_MAX_PIXELS && limit == (size_t)1 << 26);
    /* 16384 x 16384 (2^28 pixels, 768 MiB decoded) in 33 bytes. */
    size_t n = png_header(hdr, 16384, 16384);
    CHECK_FAILS(mx_image_decode("huge.png", hdr, n, NULL, &img), MX_ERR_FORMAT,
                "huge.png: PNG image of 16384x16384 pixels (width x height) is over the limit of 67108864 pixels "
                "($MIXREG_MAX_IMAGE_PIXELS raises it, up to 268435456)");
    n = png_header(hdr, 8192, 8193); /* one row over */
    CHECK_FAILS(mx_image_decode("over.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "over the limit of 67108864 pixels");
    n = png_header(hdr, 8192, 8192); /* at the limit: accepted, then the missing data is the error */
    CHECK_FAILS(mx_image_decode("at.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "at.png: corrupt PNG: truncated");

    CHECK(setenv("MIXREG_MAX_IMAGE_PIXELS", "268435456", 1) == 0);
    CHECK_OK(mx_image_max_pixels(&limit));
    CHECK(limit == (size_t)1 << 28);
    n = png_header(hdr, 16384, 16384);
    CHECK_FAILS(mx_image_decode("huge.png", hdr, n, NULL, &img), MX_ERR_FORMAT, "huge.png: corrupt PNG: truncated");

    /* Lowered: a 37 x 23 (851-pixel) JPEG and PNG, and the image sources. */
    uint8_t *rgb = fx_gradient_rgb(W, H);
    fx_buf j = fx_encode_jpeg(rgb, W, H, JCS_RGB, &JPEG_BEST), p = fx_encode_png_rgb(rgb, W, H);
    CHECK(setenv("MIXREG_MAX_IMAGE_PIXELS", "850", 1) == 0);
    CHECK_FAILS(mx_image_decode("small.jpg", j.data, j.len, NULL, &img), MX_ERR_FORMAT,
                "small.jpg: JPEG image of 37x23 pixels (width x height) is over the limit of 850 pixels");
    CHECK_FAILS(mx_image_decode("small.png", p.data, p.len, NULL, &img), MX_ERR_FORMAT,
                "small.png: PNG image of 37x23 pixels (width x height) is over the limit of 850 pixels");
    mx_image_source *src;
    CHECK_FAILS(mx_image_source_open("small.jpg", j.data, j.len, NULL, &src, NULL), MX_ERR_FORMAT, "850 pixels");
    mx_image_decode_options explicit_limit = {0, 851}; /* an explicit limit wins over the variable */
    CHECK_OK(mx_image_decode("small.jpg", j.data, j.len, &explicit_limit, &img));
    mx_image_free(&img);
    CHECK(setenv("MIXREG_MAX_IMAGE_PIXELS", "851", 1) == 0);
    CHECK_OK(mx_image_decode("small.jpg", j.data, j.len, NULL, &img));
    mx_image_free(&img);
    CHECK_OK(mx_image_decode("small.png", p.data, p.len, NULL, &img));
    mx_image_free(&img);

    /* Not a whole number in range: an error naming the variable, for every decode. */
    const char *bad[] = {"", "0", "abc", "12abc", " 12", "-1", "268435457", "99999999999999999999999", "1e6"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(setenv("MIXREG_MAX_IMAGE_PIXELS", bad[i], 1) == 0);
        CHECK_FAILS(mx_image_max_pixels(&limit), MX_ERR_ARG, "$MIXREG_MAX_IMAGE_PIXELS: ");
        CHECK_FAILS(mx_image_decode("small.jpg", j.data, j.len, NULL, &img), MX_ERR_ARG,
                    "is not a whole number from 1 to 268435456");
        CHECK_FAILS(mx_image_decode("small.png", p.data, p.len, NULL, &img), MX_ERR_ARG, "$MIXREG_MAX_IMAGE_PIXELS");
    }
    unsetenv("MIXREG_MAX_IMAGE_PIXELS");
    free(j.data);
    free(p.data);
    free(rgb);
}

/* ---- resampling ------------------------------------------------------------ */

static uint8_t *random_image(size_t c, size_t h, size_t w, unsigned seed)
{
    uint8_t *p = malloc(c * h * w);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < c * h * w; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (uint8_t)(s >> 24);
    }
    return p;
}

static void test_resize_basics(void)
{
    /* Constant stays constant, at any size, both ways. */
    uint8_t flat[3 * H * W];
    memset(flat, 77, sizeof flat);
    static const size_t sizes[][2] = {{224, 224}, {3, 5}, {61, 100}, {1, 1}, {23, 37}, {500, 7}};
    for (int aa = 0; aa < 2; aa++)
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            size_t oh = sizes[k][0], ow = sizes[k][1];
            uint8_t *out = malloc(3 * oh * ow);
            CHECK_OK(mx_image_resize(flat, 3, H, W, aa, out, oh, ow));
            size_t ok = 1;
            for (size_t i = 0; i < 3 * oh * ow; i++) ok &= out[i] == 77;
            CHECK(ok);
            free(out);
        }
    /* Same size: the identity. */
    uint8_t *img = random_image(3, H, W, 1), out[3 * H * W];
    for (int aa = 0; aa < 2; aa++) {
        memset(out, 0, sizeof out);
        CHECK_OK(mx_image_resize(img, 3, H, W, aa, out, H, W));
        CHECK(!memcmp(out, img, sizeof out));
    }
    /* Known values: 2x up [0, 100] -> [0, 25, 75, 100] (half-pixel centres,
     * edges clamped); 2x down [0, 40, 80, 120] -> [20, 100] plain, [29, 91]
     * antialiased (PIL's BILINEAR). */
    uint8_t up_in[2] = {0, 100}, up[4], down_in[4] = {0, 40, 80, 120}, down[2];
    CHECK_OK(mx_image_resize(up_in, 1, 1, 2, 0, up, 1, 4));
    CHECK(up[0] == 0 && up[1] == 25 && up[2] == 75 && up[3] == 100);
    CHECK_OK(mx_image_resize(up_in, 1, 2, 1, 1, up, 4, 1)); /* the same vertically */
    CHECK(up[0] == 0 && up[1] == 25 && up[2] == 75 && up[3] == 100);
    CHECK_OK(mx_image_resize(down_in, 1, 1, 4, 0, down, 1, 2));
    CHECK(down[0] == 20 && down[1] == 100);
    CHECK_OK(mx_image_resize(down_in, 1, 1, 4, 1, down, 1, 2));
    CHECK(down[0] == 29 && down[1] == 91);
    /* 4x down, plain: samples between pixels 1,2 and 5,6 of 8. */
    uint8_t eight[8] = {0, 10, 20, 30, 40, 50, 60, 70}, two[2];
    CHECK_OK(mx_image_resize(eight, 1, 1, 8, 0, two, 1, 2));
    CHECK(two[0] == 15 && two[1] == 55);
    free(img);

    /* Large shrinks: thousands of taps a pixel still sum to exactly one; a
     * 255/0/0/255 stripe averages to mid-gray with antialias, while the plain
     * filter reads 2 of every 100 pixels and aliases to black. */
    uint8_t *wide = malloc(3000), one[10];
    memset(wide, 200, 3000);
    CHECK_OK(mx_image_resize(wide, 1, 1, 3000, 1, one, 1, 1));
    CHECK(one[0] == 200);
    for (size_t i = 0; i < 3000; i++) wide[i] = (uint8_t)(i % 4 == 0 || i % 4 == 3 ? 255 : 0);
    CHECK_OK(mx_image_resize(wide, 1, 1, 1000, 1, one, 1, 10));
    size_t gray = 1;
    for (size_t i = 0; i < 10; i++) gray &= one[i] >= 126 && one[i] <= 129;
    CHECK(gray);
    CHECK_OK(mx_image_resize(wide, 1, 1, 1000, 0, one, 1, 10));
    size_t aliased = 1; /* (x + 0.5) * 100 - 0.5 = 49.5 + 100x: pixels 49 and 50 (mod 4: 1, 2), both 0 */
    for (size_t i = 0; i < 10; i++) aliased &= one[i] == 0;
    CHECK(aliased);
    free(wide);

    /* Errors. */
    CHECK_FAILS(mx_image_resize(flat, 3, H, W, 0, out, 0, 5), MX_ERR_ARG, "a size is 0");
    CHECK_FAILS(mx_image_resize_crop(flat, 3, H, W, 10, 10, 5, 0, 0, out, 6, 10), MX_ERR_ARG,
                "a 10x6 window at (0, 5) does not fit in 10x10");
}

/* A window of the resized image is exactly that part of the full resize;
 * resize + centre crop in one pass equals the two steps. */
static void test_resize_crop(void)
{
    uint8_t *img = random_image(3, H, W, 2);
    for (int aa = 0; aa < 2; aa++) {
        size_t rh = 40, rw = 50;
        uint8_t full[3 * 40 * 50], win[3 * 20 * 30];
        CHECK_OK(mx_image_resize(img, 3, H, W, aa, full, rh, rw));
        CHECK_OK(mx_image_resize_crop(img, 3, H, W, rh, rw, 5, 7, aa, win, 20, 30));
        size_t same = 1;
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < 20; y++)
                for (size_t x = 0; x < 30; x++) same &= win[(c * 20 + y) * 30 + x] == full[(c * rh + 5 + y) * rw + 7 + x];
        CHECK(same);
        /* Downscaling too (17 x 12 of 23 x 37). */
        uint8_t small[3 * 12 * 17], part[3 * 5 * 9];
        CHECK_OK(mx_image_resize(img, 3, H, W, aa, small, 12, 17));
        CHECK_OK(mx_image_resize_crop(img, 3, H, W, 12, 17, 6, 8, aa, part, 5, 9));
        same = 1;
        for (size_t c = 0; c < 3; c++)
            for (size_t y = 0; y < 5; y++)
                for (size_t x = 0; x < 9; x++) same &= part[(c * 5 + y) * 9 + x] == small[(c * 12 + 6 + y) * 17 + 8 + x];
        CHECK(same);
    }
    free(img);

    /* The ImageNet recipe on a 500 x 375 image: 341 x 256, then 224 at (16, 58). */
    size_t rh, rw, top, left;
    mx_image_shorter_side_size(375, 500, 256, &rh, &rw);
    CHECK(rh == 256 && rw == 341);
    mx_image_shorter_side_size(500, 375, 256, &rh, &rw);
    CHECK(rh == 341 && rw == 256);
    mx_image_shorter_side_size(100, 100, 256, &rh, &rw);
    CHECK(rh == 256 && rw == 256);
    mx_image_center_crop_offsets(256, 341, 224, 224, &top, &left);
    CHECK(top == 16 && left == 58); /* (341 - 224) / 2 = 58.5 rounds to even */
    mx_image_center_crop_offsets(10, 11, 10, 8, &top, &left);
    CHECK(top == 0 && left == 2); /* 1.5 -> 2 */
    mx_image_center_crop_offsets(9, 13, 8, 8, &top, &left);
    CHECK(top == 0 && left == 2); /* 0.5 -> 0, 2.5 -> 2 */
    mx_image_center_crop_offsets(15, 12, 8, 8, &top, &left);
    CHECK(top == 4 && left == 2); /* 3.5 -> 4 */
    CHECK(mx_image_eval_resize(224) == 256 && mx_image_eval_resize(32) == 37 && mx_image_eval_resize(64) == 73);

    uint8_t *big = random_image(3, 75, 100, 3);
    for (int aa = 0; aa < 2; aa++) {
        uint8_t *resized = malloc(3 * 64 * 85), once[3 * 56 * 56], twice[3 * 56 * 56];
        mx_image_shorter_side_size(75, 100, 64, &rh, &rw);
        CHECK(rh == 64 && rw == 85);
        CHECK_OK(mx_image_resize(big, 3, 75, 100, aa, resized, rh, rw));
        CHECK_OK(mx_image_center_crop(resized, 3, rh, rw, twice, 56, 56));
        CHECK_OK(mx_image_resize_center_crop(big, 3, 75, 100, 64, 56, aa, once));
        CHECK(!memcmp(once, twice, sizeof once));
        free(resized);
    }
    /* Centre crop copies the right pixels. */
    uint8_t ramp[2 * 5 * 7], crop[2 * 3 * 4];
    for (size_t i = 0; i < sizeof ramp; i++) ramp[i] = (uint8_t)i;
    CHECK_OK(mx_image_center_crop(ramp, 2, 5, 7, crop, 3, 4));
    /* top = round(1) = 1, left = round(1.5) = 2 */
    CHECK(crop[0] == 1 * 7 + 2 && crop[3] == 1 * 7 + 5 && crop[4] == 2 * 7 + 2 && crop[12] == 35 + 7 + 2);
    CHECK_FAILS(mx_image_center_crop(ramp, 2, 5, 7, crop, 6, 4), MX_ERR_ARG, "centre crop: 4x6 does not fit in 7x5");
    CHECK_FAILS(mx_image_resize_center_crop(big, 3, 75, 100, 50, 56, 1, crop), MX_ERR_ARG,
                "a crop of 56 needs a shorter side of at least that (got 50)");
    free(big);
}

/* Decode + the recipe on a real JPEG, against the same steps by hand. */
static void test_decode_then_recipe(void)
{
    size_t w = 300, h = 200;
    uint8_t *rgb = fx_gradient_rgb(w, h);
    fx_buf j = fx_encode_jpeg(rgb, w, h, JCS_RGB, &JPEG_BEST);
    mx_image img;
    mx_image_decode_options o = {37, 0};
    CHECK_OK(mx_image_decode("photo.jpg", j.data, j.len, &o, &img));
    CHECK(img.width == 75 && img.height == 50); /* 1/4: 50 >= 37, 1/8 would be 25 */
    uint8_t out[3 * 32 * 32];
    CHECK_OK(mx_image_resize_center_crop(img.pixels, 3, img.height, img.width, 37, 32, 1, out));
    /* Channel 2 is 60 + 2y + x: the centre pixel is near its value at the
     * image centre, (60 + 200 + 150) = 410 mod 256 = 154. */
    CHECK_NEAR(out[2 * 1024 + 16 * 32 + 16], 154, 6);
    mx_image_free(&img);
    free(j.data);
    free(rgb);
}

int main(void)
{
    test_jpeg_rgb();
    test_jpeg_gray();
    test_jpeg_cmyk();
    test_jpeg_scaled();
    test_png_rgb();
    test_png_16bit();
    test_png_gray_palette();
    test_bad_files();
    test_pixel_limit();
    test_resize_basics();
    test_resize_crop();
    test_decode_then_recipe();
    CHECK_DONE();
}

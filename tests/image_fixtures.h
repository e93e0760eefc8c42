/* Small JPEG and PNG encoders for the image tests and the fuzz seed corpus:
 * fixtures are made here, in memory, with libjpeg and libpng, so nothing
 * binary needs to be committed. Failures abort (a broken fixture is a broken
 * test). Header-only, static inline functions. */
#ifndef MIXREG_TEST_IMAGE_FIXTURES_H
#define MIXREG_TEST_IMAGE_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

typedef struct {
    uint8_t *data;
    size_t len;
} fx_buf;

static inline void fx_die(const char *what)
{
    fprintf(stderr, "fixture: %s\n", what);
    abort();
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
    int quality;       /* 1..100 */
    int full_chroma;   /* 1: 4:4:4 instead of libjpeg's default 4:2:0; 422 or 440: 4:2:2 or 4:4:0 (the
                        * first component sampled 2x1 or 1x2, the others 1x1) */
    int progressive;
    J_COLOR_SPACE stored; /* JCS_UNKNOWN: libjpeg's default for the input (YCbCr, gray, CMYK) */
    int no_adobe;      /* leave out the Adobe APP14 marker (CMYK without it reads as not inverted) */
} fx_jpeg_options;

/* Encodes w x h interleaved pixels of `space` (JCS_GRAYSCALE: 1 byte, JCS_RGB:
 * 3, JCS_CMYK: 4 a pixel). */
static inline fx_buf fx_encode_jpeg(const uint8_t *pixels, size_t w, size_t h, J_COLOR_SPACE space,
                             const fx_jpeg_options *o)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    c.err = jpeg_std_error(&err); /* libjpeg's default: print and exit (fine for fixtures) */
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long mem_len = 0;
    jpeg_mem_dest(&c, &mem, &mem_len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.in_color_space = space;
    c.input_components = space == JCS_GRAYSCALE ? 1 : space == JCS_CMYK ? 4 : 3;
    jpeg_set_defaults(&c);
    if (o->stored != JCS_UNKNOWN) jpeg_set_colorspace(&c, o->stored);
    jpeg_set_quality(&c, o->quality, TRUE);
    if (o->full_chroma)
        for (int k = 0; k < c.num_components; k++) c.comp_info[k].h_samp_factor = c.comp_info[k].v_samp_factor = 1;
    if (o->full_chroma == 422) c.comp_info[0].h_samp_factor = 2;
    if (o->full_chroma == 440) c.comp_info[0].v_samp_factor = 2;
    if (o->progressive) jpeg_simple_progression(&c);
    if (o->no_adobe) c.write_Adobe_marker = FALSE;
    jpeg_start_compress(&c, TRUE);
    size_t stride = w * (size_t)c.input_components;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + c.next_scanline * stride);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fx_buf b = {mem, mem_len};
    return b;
}

/* ---- PNG ----------------------------------------------------------------- */

typedef struct {
    fx_buf *buf;
    size_t cap;
} fx_png_sink;

static inline void fx_png_write(png_structp png, png_bytep data, size_t n)
{
    fx_png_sink *s = png_get_io_ptr(png);
    if (s->buf->len + n > s->cap) {
        while (s->buf->len + n > s->cap) s->cap = s->cap ? 2 * s->cap : 1024;
        s->buf->data = realloc(s->buf->data, s->cap);
        if (!s->buf->data) fx_die("out of memory");
    }
    memcpy(s->buf->data + s->buf->len, data, n);
    s->buf->len += n;
}

static inline void fx_png_flush(png_structp png) { (void)png; }

typedef struct {
    int color_type;          /* PNG_COLOR_TYPE_* */
    int bit_depth;           /* 1, 2, 4, 8 or 16 */
    int interlace;           /* Adam7 */
    const png_color *palette;
    int num_palette;
    const png_byte *trans;   /* palette alpha, num_trans entries */
    int num_trans;
} fx_png_options;

/* Encodes h rows of `rows` (each row_bytes long, already in PNG's sample
 * layout: packed for depths below 8, big-endian for 16). */
static inline fx_buf fx_encode_png(const uint8_t *rows, size_t row_bytes, size_t w, size_t h, const fx_png_options *o)
{
    fx_buf b = {NULL, 0};
    fx_png_sink sink = {&b, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) fx_die("png_create_write_struct");
    if (setjmp(png_jmpbuf(png))) fx_die("libpng write error");
    png_set_write_fn(png, &sink, fx_png_write, fx_png_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, o->bit_depth, o->color_type,
                 o->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (o->palette) png_set_PLTE(png, info, o->palette, o->num_palette);
    if (o->trans) png_set_tRNS(png, info, o->trans, o->num_trans, NULL);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (size_t y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(rows + y * row_bytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return b;
}

/* 8-bit RGB, interleaved (w x h x 3). */
static inline fx_buf fx_encode_png_rgb(const uint8_t *rgb, size_t w, size_t h)
{
    fx_png_options o = {PNG_COLOR_TYPE_RGB, 8, 0, NULL, 0, NULL, 0};
    return fx_encode_png(rgb, 3 * w, w, h, &o);
}

/* The gradient the tests use for 3-channel images: smooth (JPEG keeps it
 * within a level or two at quality 100), different in each channel. */
static inline uint8_t fx_gradient(size_t c, size_t x, size_t y)
{
    switch (c) {
    case 0: return (uint8_t)((4 * x + 2 * y) % 256);
    case 1: return (uint8_t)((200 + 256 * 4 - 3 * x - y) % 256);
    default: return (uint8_t)((60 + 2 * y + x) % 256);
    }
}

/* w x h x 3 interleaved gradient (malloc'd). */
static inline uint8_t *fx_gradient_rgb(size_t w, size_t h)
{
    uint8_t *p = malloc(w * h * 3);
    if (!p) fx_die("out of memory");
    for (size_t y = 0; y < h; y++)
        for (size_t x = 0; x < w; x++)
            for (size_t c = 0; c < 3; c++) p[(y * w + x) * 3 + c] = fx_gradient(c, x, y);
    return p;
}

static inline void fx_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        abort();
    }
}

/* The gradient, each byte b turned into (b * scale + offset) mod 256 (so that
 * files differ), encoded as a PNG at path. */
static inline void fx_write_gradient_png(const char *path, size_t w, size_t h, unsigned scale, unsigned offset)
{
    uint8_t *rgb = fx_gradient_rgb(w, h);
    for (size_t i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(rgb[i] * scale + offset);
    fx_buf b = fx_encode_png_rgb(rgb, w, h);
    fx_write_file(path, b.data, b.len);
    free(b.data);
    free(rgb);
}

/* The gradient as an RGB JPEG of that quality at path, cut to `cut` bytes when
 * cut is not 0 (then it fails to decode). */
static inline void fx_write_gradient_jpeg(const char *path, size_t w, size_t h, int quality, size_t cut)
{
    uint8_t *rgb = fx_gradient_rgb(w, h);
    fx_jpeg_options o = {quality, 0, 0, JCS_UNKNOWN, 0};
    fx_buf b = fx_encode_jpeg(rgb, w, h, JCS_RGB, &o);
    fx_write_file(path, b.data, cut ? cut : b.len);
    free(b.data);
    free(rgb);
}

#endif

/* PNG decoding with libpng, whole images to CHW RGB.
 *
 * libpng reports fatal errors by calling a handler that must not return: the
 * decoder's state lives in one heap context, the handler copies the message
 * there and longjmps back into png_run, which touches nothing but that context
 * afterwards, and decode_png cleans up. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "data/image_internal.h"

typedef struct {
    png_structp png;
    png_infop info;
    jmp_buf jump;
    char message[256];
    const char *name;
    const uint8_t *data;
    size_t len, pos;
    size_t max_pixels;
    mx_status status;  /* of an error raised here rather than by libpng */
    uint8_t *rows;     /* interleaved RGB: one row, or the whole image when interlaced */
    png_bytep *row_ptrs;
    uint8_t *pixels;
    size_t height, width;
} png_ctx;

static void png_fail(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", msg);
    longjmp(c->jump, 1);
}

static void png_warn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep dst, size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (c->len - c->pos < n) png_error(png, "truncated (the data ends before the image does)");
    memcpy(dst, c->data + c->pos, n);
    c->pos += n;
}

static void deinterleave(const uint8_t *src, size_t w, size_t plane, uint8_t *r)
{
    uint8_t *g = r + plane, *b = g + plane;
    for (size_t x = 0; x < w; x++, src += 3) r[x] = src[0], g[x] = src[1], b[x] = src[2];
}

/* As jpeg_run: 0, 1 (c->status and the message set), or -1 (c->message). */
static int png_run(png_ctx *c)
{
    png_structp png = c->png;
    png_infop info = c->info;
    if (setjmp(c->jump)) return -1;
    png_set_read_fn(png, c, png_read_mem);
    /* Our own, clearer size check follows png_read_info; libpng's default
     * limit (1000000 a side) would otherwise speak first. */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_set_chunk_cache_max(png, 256);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)16 << 20);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_read_info(png, info);
    png_uint_32 w32, h32;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &color, &interlace, NULL, NULL);
    if (mx_img_check_dimensions(c->name, "PNG", w32, h32, c->max_pixels) != MX_OK) {
        c->status = MX_ERR_FORMAT;
        return 1;
    }
    if (depth == 16) png_set_scale_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (!(color & PNG_COLOR_MASK_COLOR)) {
        if (depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_strip_alpha(png); /* an alpha channel, or the one a palette's tRNS expands to */
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t w = w32, h = h32, plane = w * h;
    if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != 3 || png_get_rowbytes(png, info) != 3 * w) {
        c->status = mx_error_set(MX_ERR_FORMAT, "%s: PNG colour type %d at %d bits did not convert to 8-bit RGB",
                                 c->name, color, depth);
        return 1;
    }
    c->width = w;
    c->height = h;
    c->pixels = malloc(3 * plane);
    c->rows = malloc(3 * w * (passes > 1 ? h : 1));
    if (passes > 1) c->row_ptrs = malloc(h * sizeof *c->row_ptrs);
    if (!c->pixels || !c->rows || (passes > 1 && !c->row_ptrs)) {
        c->status = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for a %zux%zu image", c->name, w, h);
        return 1;
    }
    if (passes > 1) {
        for (size_t y = 0; y < h; y++) c->row_ptrs[y] = c->rows + 3 * w * y;
        png_read_image(png, c->row_ptrs);
        for (size_t y = 0; y < h; y++) deinterleave(c->rows + 3 * w * y, w, plane, c->pixels + y * w);
    } else {
        for (size_t y = 0; y < h; y++) {
            png_read_row(png, c->rows, NULL);
            deinterleave(c->rows, w, plane, c->pixels + y * w);
        }
    }
    /* The chunks after the image data (IEND included) are not read: a file
     * cut short after its last IDAT still has every pixel. */
    return 0;
}

mx_status mx_img_decode_png(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                            mx_image *out)
{
    /* The size is at a fixed place (signature, IHDR length and type, width,
     * height): refuse one over the limits before libpng reads any further. */
    size_t max_pixels;
    mx_status st = mx_img_pixel_limit(opts, &max_pixels);
    if (st != MX_OK) return st;
    if (len >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        unsigned long w = (unsigned long)data[16] << 24 | (unsigned long)data[17] << 16 | data[18] << 8 | data[19];
        unsigned long h = (unsigned long)data[20] << 24 | (unsigned long)data[21] << 16 | data[22] << 8 | data[23];
        st = mx_img_check_dimensions(name, "PNG", w, h, max_pixels);
        if (st != MX_OK) return st;
    }
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    c->name = name;
    c->data = data;
    c->len = len;
    c->max_pixels = max_pixels;
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_fail, png_warn);
    if (c->png) c->info = png_create_info_struct(c->png);
    if (!c->png || !c->info) {
        st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for the PNG decoder", name);
    } else {
        int rc = png_run(c);
        if (rc < 0) st = mx_error_set(MX_ERR_FORMAT, "%s: corrupt PNG: %s", name, c->message);
        else if (rc > 0) st = c->status;
    }
    png_destroy_read_struct(c->png ? &c->png : NULL, c->info ? &c->info : NULL, NULL);
    free(c->rows);
    free(c->row_ptrs);
    if (st == MX_OK) {
        out->height = c->height;
        out->width = c->width;
        out->pixels = c->pixels;
    } else {
        free(c->pixels);
    }
    free(c);
    return st;
}

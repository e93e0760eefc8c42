/* JPEG and PNG decoding to RGB CHW, and the resampling of uint8 CHW images.
 *
 * Both libraries report fatal errors by calling a handler that must not
 * return: each decoder's state lives in one heap context, the handler copies
 * the library's message there and longjmps back into the single function that
 * called setjmp, which touches nothing but that context afterwards (so no
 * local variable can be clobbered), and the caller cleans up. */
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "mixreg/fileio.h"
#include "mixreg/image.h"

/* A progressive JPEG can make libjpeg re-decode the whole image once per
 * scan; real encoders write about ten, so many hundreds mean an attack (the
 * limit libjpeg-turbo's own tools use). */
#define JPEG_MAX_SCANS 500

mx_image_format mx_image_detect(const void *data, size_t len)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = data;
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return MX_IMAGE_JPEG;
    if (len >= 8 && !memcmp(b, png_sig, 8)) return MX_IMAGE_PNG;
    return MX_IMAGE_UNKNOWN;
}

static size_t pixel_limit(const mx_image_decode_options *opts)
{
    return opts && opts->max_pixels && opts->max_pixels < MX_IMAGE_MAX_PIXELS ? opts->max_pixels
                                                                             : MX_IMAGE_MAX_PIXELS;
}

/* MX_ERR_FORMAT unless width x height is a sane image size. */
static mx_status check_dimensions(const char *name, const char *kind, unsigned long width, unsigned long height,
                                  size_t max_pixels)
{
    if (width == 0 || height == 0)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s image of %lux%lu pixels is empty", name, kind, width, height);
    if (width > MX_IMAGE_MAX_SIDE || height > MX_IMAGE_MAX_SIDE || (size_t)width * height > max_pixels)
        return mx_error_set(MX_ERR_FORMAT, "%s: %s image of %lux%lu pixels (width x height) is absurdly large "
                            "(more than %d a side or %zu pixels)", name, kind, width, height, MX_IMAGE_MAX_SIDE,
                            max_pixels);
    return MX_OK;
}

/* ---- JPEG ---------------------------------------------------------------- */

typedef struct {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
    const char *name;
    const uint8_t *data;
    size_t len;
    size_t min_side, max_pixels;
    mx_status status; /* of an error raised here rather than by libjpeg */
    uint8_t *row;     /* one scanline, interleaved */
    uint8_t *pixels;  /* the result, CHW */
    size_t height, width;
} jpeg_ctx;

static void jpeg_fail(j_common_ptr cinfo)
{
    jpeg_ctx *c = (jpeg_ctx *)cinfo->client_data;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(c->message, sizeof c->message, "truncated JPEG (the data ends before the image does)");
    } else {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, msg);
        snprintf(c->message, sizeof c->message, "corrupt JPEG: %s", msg);
    }
    longjmp(c->jump, 1);
}

/* Warnings (level -1) are counted silently except the end of the data, which
 * libjpeg would paper over with gray; trace messages (level >= 0) ignored. */
static void jpeg_emit(j_common_ptr cinfo, int level)
{
    if (level >= 0) return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_fail(cinfo);
    cinfo->err->num_warnings++;
}

static void jpeg_output_nothing(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_ctx *c = (jpeg_ctx *)cinfo->client_data;
        snprintf(c->message, sizeof c->message, "corrupt JPEG: more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(c->jump, 1);
    }
}

/* The largest power-of-two reduction (at most 8) keeping the shorter side at
 * least min_side. */
static unsigned jpeg_reduction(unsigned long width, unsigned long height, size_t min_side)
{
    unsigned long shorter = width < height ? width : height;
    unsigned d = 8;
    if (!min_side) return 1;
    while (d > 1 && (shorter + d - 1) / d < min_side) d /= 2;
    return d;
}

static uint8_t mul255(unsigned a, unsigned b) { return (uint8_t)((a * b + 127) / 255); }

/* Runs the whole decode; 0 on success, 1 for an error of ours (c->status,
 * the message set with mx_error_set), -1 for a libjpeg error (c->message). Only c changes after
 * setjmp, and nothing local is read after a longjmp. */
static int jpeg_run(jpeg_ctx *c)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    if (setjmp(c->jump)) return -1;
    ci->err = jpeg_std_error(&c->jerr);
    c->jerr.error_exit = jpeg_fail;
    c->jerr.emit_message = jpeg_emit;
    c->jerr.output_message = jpeg_output_nothing;
    jpeg_create_decompress(ci);
    ci->client_data = c;
    c->progress.progress_monitor = jpeg_progress;
    ci->progress = &c->progress;
    /* Bounds libjpeg's own buffers (a progressive image keeps all its DCT
     * coefficients, 2 bytes each per component sample) to what the pixel
     * limit allows: beyond it libjpeg fails for want of a backing store. */
    ci->mem->max_memory_to_use = (long)(c->max_pixels < (size_t)LONG_MAX / 16 ? c->max_pixels * 16 : LONG_MAX / 2);
    jpeg_mem_src(ci, c->data, (unsigned long)c->len);
    jpeg_read_header(ci, TRUE);
    if ((c->status = check_dimensions(c->name, "JPEG", ci->image_width, ci->image_height, c->max_pixels)) != MX_OK)
        return 1;
    int cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    ci->scale_num = 1;
    ci->scale_denom = jpeg_reduction(ci->image_width, ci->image_height, c->min_side);
    jpeg_start_decompress(ci);
    size_t comps = (size_t)ci->output_components;
    if (comps != (cmyk ? 4u : 3u)) {
        c->status = mx_error_set(MX_ERR_FORMAT, "%s: corrupt JPEG: %zu output components", c->name, comps);
        return 1;
    }
    size_t w = ci->output_width, h = ci->output_height, plane = w * h;
    c->width = w;
    c->height = h;
    c->row = malloc(w * comps);
    c->pixels = malloc(3 * plane);
    if (!c->row || !c->pixels) {
        c->status = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for a %zux%zu image", c->name, w, h);
        return 1;
    }
    int inverted = ci->saw_Adobe_marker;
    while (ci->output_scanline < ci->output_height) {
        size_t y = ci->output_scanline;
        JSAMPROW rows[1] = {c->row};
        if (jpeg_read_scanlines(ci, rows, 1) != 1) { /* only a suspending data source does that */
            c->status = mx_error_set(MX_ERR_FORMAT, "%s: corrupt JPEG: no data for row %zu", c->name, y);
            return 1;
        }
        uint8_t *r = c->pixels + y * w, *g = r + plane, *b = g + plane;
        const uint8_t *s = c->row;
        if (!cmyk) {
            for (size_t x = 0; x < w; x++, s += 3) r[x] = s[0], g[x] = s[1], b[x] = s[2];
        } else if (inverted) {
            for (size_t x = 0; x < w; x++, s += 4)
                r[x] = mul255(s[0], s[3]), g[x] = mul255(s[1], s[3]), b[x] = mul255(s[2], s[3]);
        } else {
            for (size_t x = 0; x < w; x++, s += 4)
                r[x] = mul255(255u - s[0], 255u - s[3]), g[x] = mul255(255u - s[1], 255u - s[3]),
                b[x] = mul255(255u - s[2], 255u - s[3]);
        }
    }
    jpeg_finish_decompress(ci);
    return 0;
}

static mx_status decode_jpeg(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                             mx_image *out)
{
    if (len > ULONG_MAX) return mx_error_set(MX_ERR_FORMAT, "%s: too large for libjpeg", name);
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    c->name = name;
    c->data = data;
    c->len = len;
    c->min_side = opts ? opts->min_side : 0;
    c->max_pixels = pixel_limit(opts);
    int rc = jpeg_run(c);
    jpeg_destroy_decompress(&c->cinfo);
    mx_status st = MX_OK;
    if (rc < 0) st = mx_error_set(MX_ERR_FORMAT, "%s: %s", name, c->message);
    else if (rc > 0) st = c->status;
    free(c->row);
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

/* ---- PNG ----------------------------------------------------------------- */

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
    if (check_dimensions(c->name, "PNG", w32, h32, c->max_pixels) != MX_OK) {
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

static mx_status decode_png(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                            mx_image *out)
{
    /* The size is at a fixed place (signature, IHDR length and type, width,
     * height): refuse an absurd one before libpng reads any further. */
    if (len >= 24 && !memcmp(data + 12, "IHDR", 4)) {
        unsigned long w = (unsigned long)data[16] << 24 | (unsigned long)data[17] << 16 | data[18] << 8 | data[19];
        unsigned long h = (unsigned long)data[20] << 24 | (unsigned long)data[21] << 16 | data[22] << 8 | data[23];
        mx_status st = check_dimensions(name, "PNG", w, h, pixel_limit(opts));
        if (st != MX_OK) return st;
    }
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    c->name = name;
    c->data = data;
    c->len = len;
    c->max_pixels = pixel_limit(opts);
    c->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_fail, png_warn);
    if (c->png) c->info = png_create_info_struct(c->png);
    mx_status st = MX_OK;
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

/* ---- entry points ---------------------------------------------------------- */

mx_status mx_image_decode(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                          mx_image *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0) return mx_error_set(MX_ERR_FORMAT, "%s: the file is empty (expected a JPEG or PNG image)", name);
    switch (mx_image_detect(data, len)) {
    case MX_IMAGE_JPEG:
        return decode_jpeg(name, data, len, opts, out);
    case MX_IMAGE_PNG:
        return decode_png(name, data, len, opts, out);
    default:
        break;
    }
    const uint8_t *b = data;
    char first[32] = "";
    for (size_t i = 0; i < len && i < 4; i++) snprintf(first + 3 * i, sizeof first - 3 * i, " %02x", b[i]);
    return mx_error_set(MX_ERR_FORMAT, "%s: not a JPEG or PNG image (it starts with bytes%s)", name, first);
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

/* ---- resampling ------------------------------------------------------------ */

#define WEIGHT_BITS 14
#define WEIGHT_ONE (1 << WEIGHT_BITS)
#define MID_SHIFT 7 /* bits dropped after the first (vertical) pass: 255 * 2^7 * 2^14 fits an int32 */

/* The input taps of `count` consecutive outputs first, first + 1, ... of a
 * resampling of `in` samples to `out` samples along one axis. */
typedef struct {
    size_t *start, *len;
    int32_t *w;  /* count x maxtaps */
    size_t maxtaps;
} taps;

static void taps_free(taps *t)
{
    free(t->start);
    free(t->len);
    free(t->w);
}

/* PIL's triangle-filter resampling: output o covers input centre
 * c = (o + 0.5) * scale; input pixel j weighs 1 - |j + 0.5 - c| / fs (fs =
 * the downscale factor with antialias, else 1), over the pixels inside the
 * image, normalised to sum to WEIGHT_ONE exactly. */
static mx_status taps_make(size_t in, size_t out, size_t first, size_t count, int antialias, taps *t)
{
    memset(t, 0, sizeof *t);
    double scale = (double)in / (double)out;
    double fs = antialias && scale > 1.0 ? scale : 1.0;
    t->maxtaps = 2 * (size_t)ceil(fs) + 1;
    t->start = malloc(count * sizeof *t->start);
    t->len = malloc(count * sizeof *t->len);
    t->w = count <= SIZE_MAX / sizeof *t->w / t->maxtaps ? malloc(count * t->maxtaps * sizeof *t->w) : NULL;
    double *tmp = malloc(t->maxtaps * sizeof *tmp);
    if (!t->start || !t->len || !t->w || !tmp) {
        free(tmp);
        taps_free(t);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for resampling weights");
    }
    for (size_t i = 0; i < count; i++) {
        double centre = ((double)(first + i) + 0.5) * scale;
        double lo = floor(centre - fs + 0.5), hi = floor(centre + fs + 0.5);
        size_t xmin = lo > 0 ? (size_t)lo : 0, xmax = hi < (double)in ? (size_t)hi : in;
        if (xmax > xmin + t->maxtaps) xmax = xmin + t->maxtaps; /* cannot happen; keeps the bound obvious */
        if (xmax <= xmin) { /* cannot happen either: the nearest pixel is within 1/2 */
            xmin = centre < (double)in ? (size_t)centre : in - 1;
            xmax = xmin + 1;
        }
        size_t n = xmax - xmin;
        double sum = 0;
        for (size_t k = 0; k < n; k++) {
            double v = 1.0 - fabs(((double)(xmin + k) - centre + 0.5) / fs);
            tmp[k] = v > 0 ? v : 0;
            sum += tmp[k];
        }
        /* Rounding the running total keeps every weight >= 0 and the sum
         * exactly WEIGHT_ONE, however many taps there are. */
        int32_t *w = t->w + i * t->maxtaps, prev = 0;
        double cum = 0;
        for (size_t k = 0; k < n; k++) {
            cum += sum > 0 ? tmp[k] / sum : (k == 0);
            int32_t r = k + 1 == n ? WEIGHT_ONE : (int32_t)lround(cum * WEIGHT_ONE);
            if (r > WEIGHT_ONE) r = WEIGHT_ONE;
            w[k] = r - prev;
            prev = r;
        }
        t->start[i] = xmin;
        t->len[i] = n;
    }
    free(tmp);
    return MX_OK;
}

mx_status mx_image_resize_crop(const uint8_t *in, size_t channels, size_t height, size_t width,
                               size_t resized_height, size_t resized_width, size_t top, size_t left, int antialias,
                               uint8_t *out, size_t out_height, size_t out_width)
{
    if (!channels || !height || !width || !resized_height || !resized_width || !out_height || !out_width)
        return mx_error_set(MX_ERR_ARG, "image resize: a size is 0 (%zux%zu to %zux%zu, window %zux%zu)", width,
                            height, resized_width, resized_height, out_width, out_height);
    if (out_height > resized_height || top > resized_height - out_height || out_width > resized_width ||
        left > resized_width - out_width)
        return mx_error_set(MX_ERR_ARG, "image resize: a %zux%zu window at (%zu, %zu) does not fit in %zux%zu",
                            out_width, out_height, left, top, resized_width, resized_height);
    taps tx, ty;
    mx_status st = taps_make(width, resized_width, left, out_width, antialias, &tx);
    if (st != MX_OK) return st;
    st = taps_make(height, resized_height, top, out_height, antialias, &ty);
    if (st != MX_OK) {
        taps_free(&tx);
        return st;
    }
    /* Vertical pass first (whole rows, which vectorises), over the input
     * columns the window needs; then the horizontal pass per output pixel. */
    size_t xmin = SIZE_MAX, xend = 0;
    for (size_t x = 0; x < out_width; x++) {
        if (tx.start[x] < xmin) xmin = tx.start[x];
        if (tx.start[x] + tx.len[x] > xend) xend = tx.start[x] + tx.len[x];
    }
    size_t cols = xend - xmin;
    int32_t *mid = cols <= SIZE_MAX / sizeof *mid / out_height ? malloc(out_height * cols * sizeof *mid) : NULL;
    int32_t *acc = malloc(cols * sizeof *acc);
    if (!mid || !acc) {
        st = mx_error_set(MX_ERR_NOMEM, "image resize: out of memory for %zu rows of %zu", out_height, cols);
    } else {
        for (size_t c = 0; c < channels; c++) {
            const uint8_t *plane = in + c * height * width + xmin;
            for (size_t y = 0; y < out_height; y++) {
                const int32_t *w = ty.w + y * ty.maxtaps;
                memset(acc, 0, cols * sizeof *acc);
                for (size_t k = 0; k < ty.len[y]; k++) {
                    const uint8_t *src = plane + (ty.start[y] + k) * width;
                    const int32_t wk = w[k];
                    if (!wk) continue;
#pragma omp simd
                    for (size_t x = 0; x < cols; x++) acc[x] += src[x] * wk;
                }
                int32_t *dst = mid + y * cols;
#pragma omp simd
                for (size_t x = 0; x < cols; x++) dst[x] = (acc[x] + (1 << (MID_SHIFT - 1))) >> MID_SHIFT;
            }
            const int shift = WEIGHT_BITS * 2 - MID_SHIFT;
            for (size_t y = 0; y < out_height; y++) {
                const int32_t *src = mid + y * cols - xmin;
                uint8_t *o = out + (c * out_height + y) * out_width;
                for (size_t x = 0; x < out_width; x++) {
                    const int32_t *p = src + tx.start[x], *w = tx.w + x * tx.maxtaps;
                    int32_t a = 0;
                    for (size_t k = 0; k < tx.len[x]; k++) a += p[k] * w[k];
                    int32_t v = (a + (1 << (shift - 1))) >> shift;
                    o[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
    }
    free(mid);
    free(acc);
    taps_free(&tx);
    taps_free(&ty);
    return st;
}

mx_status mx_image_resize(const uint8_t *in, size_t channels, size_t height, size_t width, int antialias,
                          uint8_t *out, size_t out_height, size_t out_width)
{
    return mx_image_resize_crop(in, channels, height, width, out_height, out_width, 0, 0, antialias, out,
                                out_height, out_width);
}

/* round(d / 2) with halves to even, as Python's round. */
static size_t half_to_even(size_t d)
{
    size_t h = d / 2;
    return h + ((d & 1) && (h & 1));
}

void mx_image_center_crop_offsets(size_t height, size_t width, size_t out_height, size_t out_width, size_t *top,
                                  size_t *left)
{
    *top = out_height <= height ? half_to_even(height - out_height) : 0;
    *left = out_width <= width ? half_to_even(width - out_width) : 0;
}

mx_status mx_image_center_crop(const uint8_t *in, size_t channels, size_t height, size_t width, uint8_t *out,
                               size_t out_height, size_t out_width)
{
    if (!channels || !out_height || !out_width || out_height > height || out_width > width)
        return mx_error_set(MX_ERR_ARG, "centre crop: %zux%zu does not fit in %zux%zu", out_width, out_height,
                            width, height);
    size_t top, left;
    mx_image_center_crop_offsets(height, width, out_height, out_width, &top, &left);
    for (size_t c = 0; c < channels; c++)
        for (size_t y = 0; y < out_height; y++)
            memcpy(out + (c * out_height + y) * out_width, in + (c * height + top + y) * width + left, out_width);
    return MX_OK;
}

void mx_image_shorter_side_size(size_t height, size_t width, size_t shorter, size_t *out_height, size_t *out_width)
{
    if (!height || !width) {
        *out_height = *out_width = shorter;
    } else if (width <= height) {
        *out_width = shorter;
        *out_height = (size_t)((unsigned long long)shorter * height / width);
    } else {
        *out_height = shorter;
        *out_width = (size_t)((unsigned long long)shorter * width / height);
    }
}

size_t mx_image_eval_resize(size_t crop) { return (crop * 256 + 112) / 224; }

mx_status mx_image_resize_center_crop(const uint8_t *in, size_t channels, size_t height, size_t width,
                                      size_t shorter, size_t crop, int antialias, uint8_t *out)
{
    if (!crop || crop > shorter)
        return mx_error_set(MX_ERR_ARG, "resize and centre crop: a crop of %zu needs a shorter side of at least "
                            "that (got %zu)", crop, shorter);
    size_t rh, rw, top, left;
    mx_image_shorter_side_size(height, width, shorter, &rh, &rw);
    mx_image_center_crop_offsets(rh, rw, crop, crop, &top, &left);
    return mx_image_resize_crop(in, channels, height, width, rh, rw, top, left, antialias, out, crop, crop);
}

/* JPEG decoding with libjpeg-turbo: the header first (the size known before
 * any pixel), then the rows, columns and DCT scale wanted, into CHW pixels or
 * a streaming resize.
 *
 * libjpeg reports fatal errors by calling a handler that must not return: the
 * decoder's state lives in one heap context, the handler copies the library's
 * message there and longjmps back into the single function that called
 * setjmp, which touches nothing but that context afterwards (so no local
 * variable can be clobbered), and the caller cleans up. */
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "data/image_internal.h"

/* A progressive JPEG can make libjpeg re-decode the whole image once per
 * scan; real encoders write about ten, so many hundreds mean an attack (the
 * limit libjpeg-turbo's own tools use). */
#define JPEG_MAX_SCANS 500

/* Columns of margin decoded on either side of a window (when the image has
 * them): libjpeg's cropped decode treats the edges of the band it decodes as
 * image edges for the smoothing ("fancy") chroma upsampling, so the band's
 * outermost pixels can differ from a full decode's; the margin keeps them out
 * of the window. One chroma sample (2 pixels) would do; a whole iMCU is
 * cheap. */
#define JPEG_CROP_MARGIN 16

/* Where decoded rows go: the same decode serves whole images, windows and the
 * streaming resize. */
typedef struct jpeg_sink jpeg_sink;
struct jpeg_sink {
    /* The band of columns libjpeg will deliver is known: allocate. MX_OK or
     * an error (its message set). */
    mx_status (*begin)(jpeg_sink *s, size_t band_left, size_t band_width);
    /* Where image row y goes: band_width pixels of R, G, B and a padding byte. */
    uint8_t *(*row)(jpeg_sink *s, size_t y);
    /* Row y is there. */
    void (*put)(jpeg_sink *s, size_t y);
};

/* What to decode, in the coordinates of the image at 1/denom of its size. */
typedef struct {
    unsigned denom;  /* 1, 2, 4 or 8 */
    size_t y0, y1;   /* rows [y0, y1) are read (the rows above skipped) */
    size_t x0, x1;   /* columns [x0, x1) are needed (libjpeg may deliver a wider band) */
} jpeg_plan;

struct mx_img_jpeg {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64];
    const char *name;
    const uint8_t *data;
    size_t len;
    size_t max_pixels;
    mx_status status; /* of an error raised here rather than by libjpeg */
    size_t height, width;  /* from the header */
    int cmyk, inverted;
    int started;      /* a decode has run: the header must be read again */
    uint8_t *row;     /* one CMYK scanline */
};

static void jpeg_fail(j_common_ptr cinfo)
{
    mx_img_jpeg *c = (mx_img_jpeg *)cinfo->client_data;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(c->message, sizeof c->message, "truncated JPEG (the data ends before the image does)");
    } else {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, msg);
        /* "corrupt JPEG: bad Huffman code", not "...: Corrupt JPEG data: bad Huffman code" */
        const char *prefix = "Corrupt JPEG data: ";
        size_t skip = strncmp(msg, prefix, strlen(prefix)) ? 0 : strlen(prefix);
        snprintf(c->message, sizeof c->message, "corrupt JPEG: %s", msg + skip);
    }
    longjmp(c->jump, 1);
}

/* The warnings after which libjpeg carries on with pixels that are not the
 * file's: data ending early (JWRN_JPEG_EOF), a marker met inside the
 * entropy-coded data (JWRN_HIT_MARKER: a file cut short and sealed with an end
 * marker, the rest of the scan filled with gray), lost restart markers and
 * codes that are not in the Huffman tables. (The arithmetic decoder's bad-code
 * warning is not in jerror.h's list for applications, which libjpeg-turbo
 * builds without its arithmetic-coding switches.) */
static int jpeg_warning_loses_data(int code)
{
    return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE;
}

/* Warnings (level -1) that lose data are errors; the others (extraneous bytes
 * before a marker and the like, common in real photo collections, where the
 * pixels are intact) are counted silently; trace messages (level >= 0)
 * ignored. */
static void jpeg_emit(j_common_ptr cinfo, int level)
{
    if (level >= 0) return;
    if (jpeg_warning_loses_data(cinfo->err->msg_code)) jpeg_fail(cinfo);
    cinfo->err->num_warnings++;
}

static void jpeg_output_nothing(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        mx_img_jpeg *c = (mx_img_jpeg *)cinfo->client_data;
        snprintf(c->message, sizeof c->message, "corrupt JPEG: more than %d progressive scans", JPEG_MAX_SCANS);
        longjmp(c->jump, 1);
    }
}

/* The largest power-of-two reduction (at most 8) keeping the shorter side at
 * least min_side, and none for a 1x1 image: the sides round up, so any
 * reduction leaves it 1x1, but as the average of its 8x8 block instead of
 * its one pixel (and a window of it, decoded at full scale, would differ). */
static unsigned jpeg_reduction(unsigned long width, unsigned long height, size_t min_side)
{
    unsigned long shorter = width < height ? width : height;
    unsigned d = 8;
    if (!min_side || (width == 1 && height == 1)) return 1;
    while (d > 1 && (shorter + d - 1) / d < min_side) d /= 2;
    return d;
}

/* The largest power-of-two reduction (at most 8) leaving a height x width
 * window at least min_height x min_width; 1 when either minimum is 0. */
unsigned mx_img_window_reduction(size_t height, size_t width, size_t min_height, size_t min_width)
{
    if (!min_height || !min_width) return 1;
    unsigned d = 8;
    while (d > 1 && (height / d < min_height || width / d < min_width)) d /= 2;
    return d;
}

static uint8_t mul255(unsigned a, unsigned b) { return (uint8_t)((a * b + 127) / 255); }

static void cmyk_to_rgbx(const uint8_t *s, uint8_t *d, size_t w, int inverted)
{
    if (inverted) {
        for (size_t x = 0; x < w; x++, s += 4, d += 4)
            d[0] = mul255(s[0], s[3]), d[1] = mul255(s[1], s[3]), d[2] = mul255(s[2], s[3]), d[3] = 255;
    } else {
        for (size_t x = 0; x < w; x++, s += 4, d += 4)
            d[0] = mul255(255u - s[0], 255u - s[3]), d[1] = mul255(255u - s[1], 255u - s[3]),
            d[2] = mul255(255u - s[2], 255u - s[3]), d[3] = 255;
    }
}

/* The setjmp functions below return 0 on success, 1 for an error of ours
 * (c->status, the message set with mx_error_set), -1 for a libjpeg error
 * (c->message). Only *c (and what the sink points to) changes after setjmp,
 * and nothing local is read after a longjmp. */

/* Creates the decompressor and reads the header (in the caller's setjmp). */
static void jpeg_create_and_read_header(mx_img_jpeg *c)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
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
}

static int jpeg_open_run(mx_img_jpeg *c)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    if (setjmp(c->jump)) return -1;
    jpeg_create_and_read_header(c);
    if ((c->status = mx_img_check_dimensions(c->name, "JPEG", ci->image_width, ci->image_height, c->max_pixels)) != MX_OK)
        return 1;
    c->height = ci->image_height;
    c->width = ci->image_width;
    c->cmyk = ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK;
    c->inverted = ci->saw_Adobe_marker;
    return 0;
}

/* Decodes the plan's rows and columns into the sink: the rows above y0 are
 * skipped (entropy-decoded only), the columns outside the band not
 * transformed, and the decoder stops after row y1 - 1 (jpeg_abort_decompress:
 * the rest of the data is never read) unless that is the last row, when it
 * reads on to the end marker as a full decode does. */
static int jpeg_decode_run(mx_img_jpeg *c, const jpeg_plan *p, jpeg_sink *s)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    if (setjmp(c->jump)) return -1;
    /* After an earlier decode (or its failure), a new decompressor: libjpeg
     * keeps the quantization and Huffman tables across jpeg_abort, so tables
     * that a crafted file redefines after its scan would decode the next
     * window with other tables than a fresh decode uses. */
    if (c->started) {
        jpeg_destroy_decompress(ci);
        jpeg_create_and_read_header(c);
    }
    c->started = 1;
    ci->out_color_space = c->cmyk ? JCS_CMYK : JCS_EXT_RGBX;
    ci->scale_num = 1;
    ci->scale_denom = p->denom;
    jpeg_start_decompress(ci);
    if (ci->output_components != 4 || ci->output_width != mx_img_scaled_side(c->width, p->denom) ||
        ci->output_height != mx_img_scaled_side(c->height, p->denom)) {
        c->status = mx_error_set(MX_ERR_FORMAT, "%s: corrupt JPEG: %d output components of %ux%u at 1/%u", c->name,
                                 ci->output_components, ci->output_width, ci->output_height, p->denom);
        return 1;
    }
    JDIMENSION band_left = 0, band_width = ci->output_width;
    if (p->x0 > 0 || p->x1 < band_width) {
        size_t x0 = p->x0 > JPEG_CROP_MARGIN ? p->x0 - JPEG_CROP_MARGIN : 0;
        size_t x1 = band_width - p->x1 > JPEG_CROP_MARGIN ? p->x1 + JPEG_CROP_MARGIN : band_width;
        band_left = (JDIMENSION)x0;
        band_width = (JDIMENSION)(x1 - x0);
        jpeg_crop_scanline(ci, &band_left, &band_width); /* moves band_left left to an iMCU boundary */
    }
    if (c->cmyk) {
        free(c->row);
        if (!(c->row = malloc((size_t)band_width * 4))) {
            c->status = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for a row of %u pixels", c->name, band_width);
            return 1;
        }
    }
    if ((c->status = s->begin(s, band_left, band_width)) != MX_OK) return 1;
    if (p->y0) jpeg_skip_scanlines(ci, (JDIMENSION)p->y0);
    while (ci->output_scanline < p->y1) {
        size_t y = ci->output_scanline;
        uint8_t *dst = s->row(s, y);
        JSAMPROW rows[1] = {c->cmyk ? c->row : dst};
        if (jpeg_read_scanlines(ci, rows, 1) != 1) { /* only a suspending data source does that */
            c->status = mx_error_set(MX_ERR_FORMAT, "%s: corrupt JPEG: no data for row %zu", c->name, y);
            return 1;
        }
        if (c->cmyk) cmyk_to_rgbx(c->row, dst, band_width, c->inverted);
        s->put(s, y);
    }
    if (p->y1 == ci->output_height) jpeg_finish_decompress(ci);
    else jpeg_abort_decompress(ci);
    return 0;
}

static mx_status jpeg_status(mx_img_jpeg *c, int rc)
{
    if (rc < 0) return mx_error_set(MX_ERR_FORMAT, "%s: %s", c->name, c->message);
    return rc > 0 ? c->status : MX_OK;
}

void mx_img_jpeg_close(mx_img_jpeg *c)
{
    if (!c) return;
    jpeg_destroy_decompress(&c->cinfo);
    free(c->row);
    free(c);
}

/* A decompressor with the header read, or NULL (the error set). */
static mx_status jpeg_open(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                           mx_img_jpeg **out)
{
    *out = NULL;
    if (len > ULONG_MAX) return mx_error_set(MX_ERR_FORMAT, "%s: too large for libjpeg", name);
    mx_img_jpeg *c = calloc(1, sizeof *c);
    if (!c) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    c->name = name;
    c->data = data;
    c->len = len;
    mx_status st = mx_img_pixel_limit(opts, &c->max_pixels);
    if (st == MX_OK) st = jpeg_status(c, jpeg_open_run(c));
    if (st != MX_OK) {
        mx_img_jpeg_close(c);
        return st;
    }
    *out = c;
    return MX_OK;
}

/* The sink that keeps rows [y0, y1) x columns [x0, x1) as CHW pixels. */
typedef struct {
    jpeg_sink base;
    size_t y0, y1, x0, x1;
    size_t band_left, band_width;
    uint8_t *scratch;  /* one row as libjpeg gives it */
    uint8_t *pixels;   /* 3 x (y1 - y0) x (x1 - x0) */
    const char *name;
} chw_sink;

static mx_status chw_begin(jpeg_sink *s, size_t band_left, size_t band_width)
{
    chw_sink *k = (chw_sink *)s;
    k->band_left = band_left, k->band_width = band_width;
    size_t h = k->y1 - k->y0, w = k->x1 - k->x0;
    k->scratch = malloc(4 * band_width);
    k->pixels = malloc(3 * h * w);
    if (!k->scratch || !k->pixels)
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory for a %zux%zu image", k->name, w, h);
    return MX_OK;
}

static uint8_t *chw_row(jpeg_sink *s, size_t y)
{
    (void)y;
    return ((chw_sink *)s)->scratch;
}

static void chw_put(jpeg_sink *s, size_t y)
{
    chw_sink *k = (chw_sink *)s;
    if (y < k->y0 || y >= k->y1) return;
    size_t w = k->x1 - k->x0, plane = (k->y1 - k->y0) * w;
    const uint8_t *src = k->scratch + 4 * (k->x0 - k->band_left);
    uint8_t *r = k->pixels + (y - k->y0) * w, *g = r + plane, *b = g + plane;
    for (size_t x = 0; x < w; x++, src += 4) r[x] = src[0], g[x] = src[1], b[x] = src[2];
}

/* Decodes rows [y0, y1) x columns [x0, x1) of the image at 1/denom into out. */
mx_status mx_img_jpeg_decode_chw(mx_img_jpeg *c, unsigned denom, size_t y0, size_t y1, size_t x0, size_t x1,
                                 mx_image *out)
{
    chw_sink k = {{chw_begin, chw_row, chw_put}, y0, y1, x0, x1, 0, 0, NULL, NULL, c->name};
    jpeg_plan p = {denom, y0, y1, x0, x1};
    mx_status st = jpeg_status(c, jpeg_decode_run(c, &p, &k.base));
    free(k.scratch);
    if (st != MX_OK) {
        free(k.pixels);
        return st;
    }
    out->height = y1 - y0;
    out->width = x1 - x0;
    out->pixels = k.pixels;
    return MX_OK;
}

mx_status mx_img_decode_jpeg(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                             mx_image *out)
{
    mx_img_jpeg *c;
    mx_status st = jpeg_open(name, data, len, opts, &c);
    if (st != MX_OK) return st;
    unsigned d = jpeg_reduction(c->width, c->height, opts ? opts->min_side : 0);
    st = mx_img_jpeg_decode_chw(c, d, 0, mx_img_scaled_side(c->height, d), 0, mx_img_scaled_side(c->width, d), out);
    mx_img_jpeg_close(c);
    return st;
}

/* The sink that feeds the streaming resize. */
typedef struct {
    jpeg_sink base;
    mx_img_resampler *r;
} resize_sink;

static mx_status resize_begin(jpeg_sink *s, size_t band_left, size_t band_width)
{
    return mx_img_resampler_begin(((resize_sink *)s)->r, band_left, band_width);
}

static uint8_t *resize_row(jpeg_sink *s, size_t y) { return mx_img_resampler_row(((resize_sink *)s)->r, y); }

static void resize_put(jpeg_sink *s, size_t y) { mx_img_resampler_put(((resize_sink *)s)->r, y); }

mx_status mx_img_jpeg_resize(mx_img_jpeg *c, unsigned denom, mx_img_resampler *r)
{
    resize_sink k = {{resize_begin, resize_row, resize_put}, r};
    jpeg_plan p = {denom, r->ry0, r->ry1, r->rx0, r->rx1};
    return jpeg_status(c, jpeg_decode_run(c, &p, &k.base));
}

mx_status mx_img_jpeg_open(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                           mx_img_jpeg **out, size_t *height, size_t *width)
{
    mx_status st = jpeg_open(name, data, len, opts, out);
    if (st == MX_OK) *height = (*out)->height, *width = (*out)->width;
    return st;
}

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

/* ---- resampling weights ---------------------------------------------------- */

#define WEIGHT_BITS 14
#define WEIGHT_ONE (1 << WEIGHT_BITS)
#define MID_SHIFT 7 /* bits dropped after the first (vertical) pass: 255 * 2^7 * 2^14 fits an int32 */

/* The input taps of `count` consecutive outputs first, first + 1, ... of a
 * resampling along one axis. */
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

/* PIL's triangle-filter resampling of the box [b0, b0 + bs) of `in` input
 * samples to `out` samples: output o covers input centre c = b0 + (o + 0.5) *
 * scale, scale = bs / out; input pixel j weighs 1 - |j + 0.5 - c| / fs (fs =
 * the downscale factor with antialias, else 1), over the pixels 0 .. in - 1,
 * normalised to sum to WEIGHT_ONE exactly. A plain resize of the whole input
 * is the box [0, in) (b0 = 0 adds exactly nothing); a fractional box is a
 * window of an image decoded at a reduced DCT scale. */
static mx_status taps_make(size_t in, double b0, double bs, size_t out, size_t first, size_t count, int antialias,
                           taps *t)
{
    memset(t, 0, sizeof *t);
    double scale = bs / (double)out;
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
        double centre = b0 + ((double)(first + i) + 0.5) * scale;
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

/* ---- a resize fed one row at a time ------------------------------------------ */

/* The window resize of mx_image_source_resized_crop, computed as rows of the
 * image arrive (from libjpeg, top to bottom, 4 bytes a pixel: R, G, B and a
 * padding byte, so one pixel is one 4-lane vector) and each output row made
 * as soon as its last input row is in: only the few rows the vertical filter
 * spans are kept (a ring), never the decoded window. The arithmetic is
 * mx_image_resize_crop's step for step (same weights, vertical pass, rounding
 * to MID_SHIFT, horizontal pass), so on a whole-pixel window the result is
 * bit-identical to resizing the window cut out of a full decode. */
typedef struct {
    /* set by resampler_plan */
    const char *name;              /* the file, for messages */
    size_t out_h, out_w;
    int flip;
    uint8_t *out;                  /* 3 x out_h x out_w */
    size_t ry0, ry1, rx0, rx1;     /* the input rows and columns the filter can touch (the box's pixels) */
    double by0, bh, bx0, bw;       /* the box, relative to (ry0, rx0) */
    /* set by resampler_begin, once the delivered band of columns is known */
    size_t band_left;              /* image column of an input row's pixel 0 */
    taps tx, ty;                   /* tx.start relative to the band, ty.start relative to ry0 */
    size_t xmin, cols;             /* band columns of the vertical pass: [xmin, xmin + cols) */
    size_t htaps;                  /* the most taps an output column takes */
    size_t ring_rows, row_bytes;
    uint8_t *ring;                 /* ring_rows rows of row_bytes */
    uint8_t *scratch;              /* a row outside [ry0, ry1) */
    int32_t *acc;                  /* 4 x cols */
    size_t next;                   /* the next output row to make */
} resampler;

/* The window top/left/height/width of an image (in its own pixels) seen at
 * 1/denom of its size (img_h x img_w there): the box in those coordinates
 * and the whole pixels under it. */
static void resampler_plan(resampler *r, const char *name, size_t img_h, size_t img_w, unsigned denom, size_t top,
                           size_t left, size_t height, size_t width, size_t out_h, size_t out_w, int flip,
                           uint8_t *out)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->out_h = out_h, r->out_w = out_w, r->flip = flip, r->out = out;
    double d = (double)denom;
    double y0 = (double)top / d, y1 = (double)(top + height) / d;
    double x0 = (double)left / d, x1 = (double)(left + width) / d;
    r->ry0 = (size_t)floor(y0), r->rx0 = (size_t)floor(x0);
    r->ry1 = (size_t)ceil(y1), r->rx1 = (size_t)ceil(x1);
    if (r->ry1 > img_h) r->ry1 = img_h;
    if (r->rx1 > img_w) r->rx1 = img_w;
    r->by0 = y0 - (double)r->ry0, r->bh = y1 - y0;
    r->bx0 = x0 - (double)r->rx0, r->bw = x1 - x0;
}

static void resampler_free(resampler *r)
{
    taps_free(&r->tx);
    taps_free(&r->ty);
    free(r->ring);
    free(r->scratch);
    free(r->acc);
    r->ring = r->scratch = NULL;
    r->acc = NULL;
    memset(&r->tx, 0, sizeof r->tx);
    memset(&r->ty, 0, sizeof r->ty);
}

/* Rows will come band_width pixels wide, pixel 0 being image column
 * band_left (<= rx0; band_left + band_width >= rx1). */
static mx_status resampler_begin(resampler *r, size_t band_left, size_t band_width)
{
    r->band_left = band_left;
    mx_status st = taps_make(r->rx1 - r->rx0, r->bx0, r->bw, r->out_w, 0, r->out_w, 1, &r->tx);
    if (st == MX_OK) st = taps_make(r->ry1 - r->ry0, r->by0, r->bh, r->out_h, 0, r->out_h, 1, &r->ty);
    if (st != MX_OK) return mx_error_wrap(st, "%s", r->name);
    size_t shift = r->rx0 - band_left, xend = 0;
    r->xmin = SIZE_MAX;
    for (size_t x = 0; x < r->out_w; x++) {
        r->tx.start[x] += shift;
        if (r->tx.start[x] < r->xmin) r->xmin = r->tx.start[x];
        if (r->tx.start[x] + r->tx.len[x] > xend) xend = r->tx.start[x] + r->tx.len[x];
    }
    r->cols = xend - r->xmin;
    r->htaps = 1;
    for (size_t x = 0; x < r->out_w; x++) {
        if (r->tx.len[x] > r->htaps) r->htaps = r->tx.len[x];
        for (size_t k = r->tx.len[x]; k < r->tx.maxtaps; k++) /* taps past an output's own count weigh 0 */
            r->tx.w[x * r->tx.maxtaps + k] = 0;
    }
    r->ring_rows = 1;
    for (size_t y = 0; y < r->out_h; y++)
        if (r->ty.len[y] > r->ring_rows) r->ring_rows = r->ty.len[y];
    r->row_bytes = 4 * band_width;
    r->ring = malloc(r->ring_rows * r->row_bytes);
    r->scratch = malloc(r->row_bytes);
    r->acc = calloc(4 * (r->cols + r->htaps), sizeof *r->acc); /* zeros past cols: see horizontal() */
    if (!r->ring || !r->scratch || !r->acc)
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory resizing a %zux%zu window", r->name, r->rx1 - r->rx0,
                            r->ry1 - r->ry0);
    return MX_OK;
}

/* Where image row y goes. */
static uint8_t *resampler_row(resampler *r, size_t y)
{
    if (y < r->ry0 || y >= r->ry1) return r->scratch;
    return r->ring + (y - r->ry0) % r->ring_rows * r->row_bytes;
}

/* Four int32 lanes (GCC's and Clang's vector extension): one pixel's R, G, B
 * and padding, added and scaled as one. */
typedef int32_t v4i __attribute__((vector_size(16)));

/* The horizontal pass of one output row from r->acc (the vertical pass's
 * result, 4 lanes a pixel) into row o of the output planes: every output
 * pixel takes n = r->htaps taps (the most any takes), those past its own
 * count weighing 0 (and acc padded with zeros past its end), so that a
 * constant n unrolls. */
static inline __attribute__((always_inline)) void horizontal(const resampler *r, uint8_t *o, const size_t n)
{
    const int shift = WEIGHT_BITS * 2 - MID_SHIFT;
    const size_t plane = r->out_h * r->out_w;
    const int32_t *acc = r->acc - 4 * r->xmin;
    for (size_t x = 0; x < r->out_w; x++) {
        const int32_t *p = acc + 4 * r->tx.start[x], *wx = r->tx.w + x * r->tx.maxtaps;
        v4i a = {0, 0, 0, 0};
#pragma GCC unroll 8
        for (size_t k = 0; k < n; k++) {
            v4i v;
            memcpy(&v, p + 4 * k, sizeof v);
            a += v * wx[k];
        }
        /* No clamping needed: the weights are >= 0 and sum to WEIGHT_ONE in
         * each pass, so the vertical pass gives 0 .. 255 << MID_SHIFT and
         * this one 0 .. 255 after the shift (as mx_image_resize_crop's
         * clamps never act either). */
        a = (a + (1 << (shift - 1))) >> shift;
        size_t xo = r->flip ? r->out_w - 1 - x : x;
        o[xo] = (uint8_t)a[0];
        o[plane + xo] = (uint8_t)a[1];
        o[2 * plane + xo] = (uint8_t)a[2];
    }
}

/* Output row yo, its input rows all in the ring. */
static void resampler_emit(resampler *r, size_t yo)
{
    int32_t *restrict acc = r->acc;
    const size_t lanes = 4 * r->cols;
    const int32_t *w = r->ty.w + yo * r->ty.maxtaps;
    memset(acc, 0, lanes * sizeof *acc);
    for (size_t k = 0; k < r->ty.len[yo]; k++) {
        const int32_t wk = w[k];
        if (!wk) continue;
        const uint8_t *restrict src = r->ring + (r->ty.start[yo] + k) % r->ring_rows * r->row_bytes + 4 * r->xmin;
#pragma omp simd
        for (size_t i = 0; i < lanes; i++) acc[i] += src[i] * wk;
    }
#pragma omp simd
    for (size_t i = 0; i < lanes; i++) acc[i] = (acc[i] + (1 << (MID_SHIFT - 1))) >> MID_SHIFT;
    uint8_t *o = r->out + yo * r->out_w;
    switch (r->htaps) { /* the usual counts unrolled */
    case 2: horizontal(r, o, 2); break;
    case 3: horizontal(r, o, 3); break;
    case 4: horizontal(r, o, 4); break;
    case 5: horizontal(r, o, 5); break;
    case 6: horizontal(r, o, 6); break;
    default: horizontal(r, o, r->htaps); break;
    }
}

/* Image row y is in place (at resampler_row(r, y)): make the output rows it
 * completes. */
static void resampler_put(resampler *r, size_t y)
{
    if (y < r->ry0 || y >= r->ry1) return;
    size_t have = y - r->ry0 + 1;
    while (r->next < r->out_h && r->ty.start[r->next] + r->ty.len[r->next] <= have) resampler_emit(r, r->next++);
}

/* ---- JPEG ---------------------------------------------------------------- */

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

typedef struct {
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

/* The largest power-of-two reduction (at most 8) leaving a height x width
 * window at least min_height x min_width; 1 when either minimum is 0. */
static unsigned window_reduction(size_t height, size_t width, size_t min_height, size_t min_width)
{
    if (!min_height || !min_width) return 1;
    unsigned d = 8;
    while (d > 1 && (height / d < min_height || width / d < min_width)) d /= 2;
    return d;
}

/* The size of a side at 1/denom (libjpeg rounds up). */
static size_t scaled_side(size_t side, unsigned denom) { return (side + denom - 1) / denom; }

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

/* Creates the decompressor and reads the header. */
static int jpeg_open_run(jpeg_ctx *c)
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
static int jpeg_decode_run(jpeg_ctx *c, const jpeg_plan *p, jpeg_sink *s)
{
    struct jpeg_decompress_struct *ci = &c->cinfo;
    if (setjmp(c->jump)) return -1;
    if (c->started) { /* after an earlier decode (or its failure), back to the start and the header again */
        jpeg_abort_decompress(ci);
        jpeg_mem_src(ci, c->data, (unsigned long)c->len);
        jpeg_read_header(ci, TRUE);
    }
    c->started = 1;
    ci->out_color_space = c->cmyk ? JCS_CMYK : JCS_EXT_RGBX;
    ci->scale_num = 1;
    ci->scale_denom = p->denom;
    jpeg_start_decompress(ci);
    if (ci->output_components != 4 || ci->output_width != scaled_side(c->width, p->denom) ||
        ci->output_height != scaled_side(c->height, p->denom)) {
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

static mx_status jpeg_status(jpeg_ctx *c, int rc)
{
    if (rc < 0) return mx_error_set(MX_ERR_FORMAT, "%s: %s", c->name, c->message);
    return rc > 0 ? c->status : MX_OK;
}

static void jpeg_close(jpeg_ctx *c)
{
    if (!c) return;
    jpeg_destroy_decompress(&c->cinfo);
    free(c->row);
    free(c);
}

/* A decompressor with the header read, or NULL (the error set). */
static mx_status jpeg_open(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                           jpeg_ctx **out)
{
    *out = NULL;
    if (len > ULONG_MAX) return mx_error_set(MX_ERR_FORMAT, "%s: too large for libjpeg", name);
    jpeg_ctx *c = calloc(1, sizeof *c);
    if (!c) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory", name);
    c->name = name;
    c->data = data;
    c->len = len;
    c->max_pixels = pixel_limit(opts);
    mx_status st = jpeg_status(c, jpeg_open_run(c));
    if (st != MX_OK) {
        jpeg_close(c);
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
static mx_status jpeg_decode_chw(jpeg_ctx *c, unsigned denom, size_t y0, size_t y1, size_t x0, size_t x1,
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

static mx_status decode_jpeg(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                             mx_image *out)
{
    jpeg_ctx *c;
    mx_status st = jpeg_open(name, data, len, opts, &c);
    if (st != MX_OK) return st;
    unsigned d = jpeg_reduction(c->width, c->height, opts ? opts->min_side : 0);
    st = jpeg_decode_chw(c, d, 0, scaled_side(c->height, d), 0, scaled_side(c->width, d), out);
    jpeg_close(c);
    return st;
}

/* The sink that feeds the streaming resize. */
typedef struct {
    jpeg_sink base;
    resampler *r;
} resize_sink;

static mx_status resize_begin(jpeg_sink *s, size_t band_left, size_t band_width)
{
    return resampler_begin(((resize_sink *)s)->r, band_left, band_width);
}

static uint8_t *resize_row(jpeg_sink *s, size_t y) { return resampler_row(((resize_sink *)s)->r, y); }

static void resize_put(jpeg_sink *s, size_t y) { resampler_put(((resize_sink *)s)->r, y); }

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
        return decode_jpeg(name, data, len, opts, out);
    case MX_IMAGE_PNG:
        return decode_png(name, data, len, opts, out);
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
    jpeg_ctx *jpeg;  /* JPEG: the header read */
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
        st = jpeg_open(s->name, data, len, opts, &s->jpeg);
        if (st == MX_OK) s->height = s->jpeg->height, s->width = s->jpeg->width;
    } else {
        st = decode_png(s->name, data, len, opts, &s->png);
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
    jpeg_close(src->jpeg);
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
    unsigned d = src->format == MX_IMAGE_JPEG ? window_reduction(height, width, min_height, min_width) : 1;
    size_t y0 = top / d, y1 = (top + height + d - 1) / d, x0 = left / d, x1 = (left + width + d - 1) / d;
    if (y1 > scaled_side(src->height, d)) y1 = scaled_side(src->height, d);
    if (x1 > scaled_side(src->width, d)) x1 = scaled_side(src->width, d);
    if (src->format == MX_IMAGE_JPEG) {
        st = jpeg_decode_chw(src->jpeg, d, y0, y1, x0, x1, out);
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
                     ? window_reduction(height, width, out_height, out_width) : 1;
    resampler r;
    resampler_plan(&r, src->name, scaled_side(src->height, d), scaled_side(src->width, d), d, top, left, height, width,
                   out_height, out_width, flip, out);
    if (src->format == MX_IMAGE_JPEG) {
        resize_sink k = {{resize_begin, resize_row, resize_put}, &r};
        jpeg_plan p = {d, r.ry0, r.ry1, r.rx0, r.rx1};
        st = jpeg_status(src->jpeg, jpeg_decode_run(src->jpeg, &p, &k.base));
    } else {
        st = resampler_begin(&r, r.rx0, r.rx1 - r.rx0);
        const size_t plane = src->height * src->width, w = r.rx1 - r.rx0;
        for (size_t y = r.ry0; st == MX_OK && y < r.ry1; y++) {
            const uint8_t *p = src->png.pixels + y * src->width + r.rx0;
            uint8_t *row = resampler_row(&r, y);
            for (size_t x = 0; x < w; x++, row += 4)
                row[0] = p[x], row[1] = p[plane + x], row[2] = p[2 * plane + x], row[3] = 255;
            resampler_put(&r, y);
        }
    }
    if (st == MX_OK && r.next != out_height) /* cannot happen: the last input row completes every output row */
        st = mx_error_set(MX_ERR_FORMAT, "%s: internal error: %zu of %zu rows resized", src->name, r.next, out_height);
    resampler_free(&r);
    return st;
}

/* ---- resampling ------------------------------------------------------------ */

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
    mx_status st = taps_make(width, 0.0, (double)width, resized_width, left, out_width, antialias, &tx);
    if (st != MX_OK) return st;
    st = taps_make(height, 0.0, (double)height, resized_height, top, out_height, antialias, &ty);
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

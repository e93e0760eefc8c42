/* Resampling of 8-bit images: PIL's triangle-filter weights in fixed point,
 * the whole-image resize and crop of uint8 CHW planes (mx_image_resize_crop
 * and the functions built on it), and the resize fed one decoded row at a
 * time that the JPEG decoder and PNG sources feed (image_internal.h). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/image_internal.h"

/* ---- resampling weights ---------------------------------------------------- */

typedef mx_img_taps taps;

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

/* The window top/left/height/width of an image (in its own pixels) seen at
 * 1/denom of its size (img_h x img_w there): the box in those coordinates
 * and the whole pixels under it. */
void mx_img_resampler_plan(mx_img_resampler *r, const char *name, size_t img_h, size_t img_w, unsigned denom, size_t top,
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

void mx_img_resampler_free(mx_img_resampler *r)
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
mx_status mx_img_resampler_begin(mx_img_resampler *r, size_t band_left, size_t band_width)
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
uint8_t *mx_img_resampler_row(mx_img_resampler *r, size_t y)
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
static inline __attribute__((always_inline)) void horizontal(const mx_img_resampler *r, uint8_t *o, const size_t n)
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
static void emit_row(mx_img_resampler *r, size_t yo)
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
void mx_img_resampler_put(mx_img_resampler *r, size_t y)
{
    if (y < r->ry0 || y >= r->ry1) return;
    size_t have = y - r->ry0 + 1;
    while (r->next < r->out_h && r->ty.start[r->next] + r->ty.len[r->next] <= have) emit_row(r, r->next++);
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

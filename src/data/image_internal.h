/* Library-internal pieces shared by the image decoders (image_jpeg.c,
 * image_png.c), the resampling (image_resample.c) and the entry points and
 * sources (image.c). */
#ifndef MIXREG_DATA_IMAGE_INTERNAL_H
#define MIXREG_DATA_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/image.h"

/* ---- limits (image.c) ---- */

/* The most pixels an image may have under opts: its max_pixels (at most
 * MX_IMAGE_MAX_PIXELS), else mx_image_max_pixels(). */
mx_status mx_img_pixel_limit(const mx_image_decode_options *opts, size_t *limit);

/* MX_ERR_FORMAT unless width x height is a sane image size. */
mx_status mx_img_check_dimensions(const char *name, const char *kind, unsigned long width, unsigned long height,
                                  size_t max_pixels);

/* The size of a side at 1/denom (libjpeg rounds up). */
static inline size_t mx_img_scaled_side(size_t side, unsigned denom) { return (side + denom - 1) / denom; }

/* ---- resampling (image_resample.c) ---- */

#define WEIGHT_BITS 14
#define WEIGHT_ONE (1 << WEIGHT_BITS)
#define MID_SHIFT 7 /* bits dropped after the first (vertical) pass: 255 * 2^7 * 2^14 fits an int32 */

/* The input taps of `count` consecutive outputs first, first + 1, ... of a
 * resampling along one axis. */
typedef struct {
    size_t *start, *len;
    int32_t *w;  /* count x maxtaps */
    size_t maxtaps;
} mx_img_taps;

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
    /* set by mx_img_resampler_plan */
    const char *name;              /* the file, for messages */
    size_t out_h, out_w;
    int flip;
    uint8_t *out;                  /* 3 x out_h x out_w */
    size_t ry0, ry1, rx0, rx1;     /* the input rows and columns the filter can touch (the box's pixels) */
    double by0, bh, bx0, bw;       /* the box, relative to (ry0, rx0) */
    /* set by mx_img_resampler_begin, once the delivered band of columns is known */
    size_t band_left;              /* image column of an input row's pixel 0 */
    mx_img_taps tx, ty;                   /* tx.start relative to the band, ty.start relative to ry0 */
    size_t xmin, cols;             /* band columns of the vertical pass: [xmin, xmin + cols) */
    size_t htaps;                  /* the most taps an output column takes */
    size_t ring_rows, row_bytes;
    uint8_t *ring;                 /* ring_rows rows of row_bytes */
    uint8_t *scratch;              /* a row outside [ry0, ry1) */
    int32_t *acc;                  /* 4 x cols */
    size_t next;                   /* the next output row to make */
} mx_img_resampler;

/* The window top/left/height/width of an image (in its own pixels) seen at
 * 1/denom of its size (img_h x img_w there): the box in those coordinates
 * and the whole pixels under it. */
void mx_img_resampler_plan(mx_img_resampler *r, const char *name, size_t img_h, size_t img_w, unsigned denom,
                           size_t top, size_t left, size_t height, size_t width, size_t out_h, size_t out_w, int flip,
                           uint8_t *out);
/* Rows will come band_width pixels wide, pixel 0 being image column
 * band_left (<= rx0; band_left + band_width >= rx1). */
mx_status mx_img_resampler_begin(mx_img_resampler *r, size_t band_left, size_t band_width);
/* Where image row y goes. */
uint8_t *mx_img_resampler_row(mx_img_resampler *r, size_t y);
/* Image row y is in place: make the output rows it completes. */
void mx_img_resampler_put(mx_img_resampler *r, size_t y);
void mx_img_resampler_free(mx_img_resampler *r);

/* ---- JPEG (image_jpeg.c) ---- */

typedef struct mx_img_jpeg mx_img_jpeg;

/* A decompressor with the header read (*height x *width), or NULL (the error set). */
mx_status mx_img_jpeg_open(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                           mx_img_jpeg **out, size_t *height, size_t *width);
void mx_img_jpeg_close(mx_img_jpeg *c);
/* Decodes rows [y0, y1) x columns [x0, x1) of the image at 1/denom into out. */
mx_status mx_img_jpeg_decode_chw(mx_img_jpeg *c, unsigned denom, size_t y0, size_t y1, size_t x0, size_t x1,
                                 mx_image *out);
/* Feeds the rows of the image at 1/denom that r needs into r. */
mx_status mx_img_jpeg_resize(mx_img_jpeg *c, unsigned denom, mx_img_resampler *r);
/* The whole image, at the DCT scale opts->min_side allows. */
mx_status mx_img_decode_jpeg(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                             mx_image *out);
/* The largest power-of-two reduction (at most 8) leaving a height x width
 * window at least min_height x min_width; 1 when either minimum is 0. */
unsigned mx_img_window_reduction(size_t height, size_t width, size_t min_height, size_t min_width);

/* ---- PNG (image_png.c) ---- */

/* The whole image (opts: max_pixels only). */
mx_status mx_img_decode_png(const char *name, const uint8_t *data, size_t len, const mx_image_decode_options *opts,
                            mx_image *out);

#endif

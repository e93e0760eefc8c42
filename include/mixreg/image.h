/* Still images for image-folder datasets: a JPEG (libjpeg-turbo) or PNG
 * (libpng) held in memory, recognised by its first bytes (never by the file
 * name), decoded to 8-bit RGB in CHW layout (3 x height x width: the R, G and B
 * planes, each row-major, as mx_dataset stores samples); and the resizing and
 * centre cropping of uint8 CHW images that the ImageNet evaluation recipe uses
 * (resize the shorter side to 256, centre crop 224 x 224).
 *
 * Conversions to RGB:
 *   JPEG  grayscale is replicated to the three channels; YCbCr and RGB go
 *         through libjpeg's colour conversion (accurate integer IDCT, fancy
 *         upsampling: as PIL); CMYK and YCCK are converted from CMYK with
 *         R = (255 - C)(255 - K) / 255 (likewise G from M, B from Y), the
 *         values read as inverted (Adobe/Photoshop convention) when the file
 *         has an Adobe APP14 marker, as such files nearly always do.
 *   PNG   palette, grayscale (1, 2, 4, 8 or 16 bits), gray + alpha, RGB and
 *         RGBA, 8 or 16 bits a sample: palette entries and gray are expanded,
 *         16-bit samples scaled to 8 bits with rounding (v * 255 / 65535),
 *         and alpha, an alpha channel or tRNS transparency, DROPPED (the
 *         colour values are kept as stored, not composited on any
 *         background: PIL's convert("RGB")). gAMA, cHRM, sRGB and iCCP are
 *         ignored (no colour management), interlaced images are supported.
 * Neither applies an EXIF orientation (as PIL's open + convert, torchvision's
 * ImageFolder loader). 12-bit JPEGs are refused (corrupt JPEG).
 *
 * Every failure is an mx_status with a message naming the file: the decoders'
 * own errors (libjpeg's error_exit, libpng's error callback) are caught with
 * setjmp/longjmp and never print, exit or crash. The libjpeg warnings after
 * which it would carry on with pixels that are not the file's are errors:
 * data ending early ("Premature end of JPEG file", padded with gray), a marker
 * inside the scan data ("premature end of data segment": a file cut short and
 * sealed with an end marker), a lost restart marker, a bad Huffman code.
 * libjpeg's other warnings (extraneous bytes before a marker and the like,
 * common in real photo collections, the pixels intact) are not.
 * Images wider or taller than MX_IMAGE_MAX_SIDE or of more pixels than the
 * limit (mx_image_max_pixels) are refused from their header, before any pixel
 * memory is allocated: a few hundred bytes of PNG or JPEG can declare an image
 * of gigabytes. */
#ifndef MIXREG_IMAGE_H
#define MIXREG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_IMAGE_MAX_SIDE 16384
/* The pixel limit, unless $MIXREG_MAX_IMAGE_PIXELS says otherwise: 2^26
 * (64 Mi, 8192 x 8192), whose RGB decode takes 192 MiB. It is above every
 * common camera sensor (61 megapixels at most in full frame) and ImageNet's
 * largest photos, and keeps the worst case of the loader's parallel decodes
 * (one image per thread) to a few GiB. */
#define MX_IMAGE_DEFAULT_MAX_PIXELS ((size_t)1 << 26)
/* The most $MIXREG_MAX_IMAGE_PIXELS (or max_pixels below) may allow: 2^28, a
 * 16384 x 16384 image (768 MiB decoded). */
#define MX_IMAGE_MAX_PIXELS ((size_t)1 << 28)
/* mx_image_read refuses larger files (256 MiB) before reading them. */
#define MX_IMAGE_MAX_FILE_BYTES ((size_t)1 << 28)

typedef enum { MX_IMAGE_UNKNOWN = 0, MX_IMAGE_JPEG, MX_IMAGE_PNG } mx_image_format;

typedef struct {
    size_t height, width;
    uint8_t *pixels;  /* 3 x height x width (CHW, RGB), malloc'd */
} mx_image;

typedef struct {
    /* JPEG only: decode at 1/2, 1/4 or 1/8 of the size (libjpeg's DCT
     * scaling, much faster for large photos; as PIL's Image.draft) choosing
     * the smallest scale whose shorter side is still >= min_side. 0 (or a
     * min_side the image does not exceed twice): full size. PNG ignores it. */
    size_t min_side;
    /* Refuse images of more pixels than this (at most MX_IMAGE_MAX_PIXELS);
     * 0 = mx_image_max_pixels(). The side limit MX_IMAGE_MAX_SIDE always
     * holds. */
    size_t max_pixels;
} mx_image_decode_options;

/* The pixel limit in force: $MIXREG_MAX_IMAGE_PIXELS when set (a whole number
 * from 1 to MX_IMAGE_MAX_PIXELS), else MX_IMAGE_DEFAULT_MAX_PIXELS. MX_ERR_ARG
 * naming the variable for another value (and every decode that uses it then
 * fails so). */
mx_status mx_image_max_pixels(size_t *out);

/* MX_IMAGE_JPEG (bytes FF D8 FF), MX_IMAGE_PNG (the 8-byte PNG signature) or
 * MX_IMAGE_UNKNOWN. */
mx_image_format mx_image_detect(const void *data, size_t len);

/* Decodes len bytes of a JPEG or PNG into out (out->pixels malloc'd; out is
 * zeroed on failure). opts may be NULL (full size, default limits). `name`
 * stands for the file in messages. MX_ERR_FORMAT for an empty input, bytes
 * that are neither format, a corrupt or truncated file, or dimensions over
 * the limits; MX_ERR_NOMEM when the pixels cannot be allocated; MX_ERR_ARG
 * for an invalid $MIXREG_MAX_IMAGE_PIXELS. */
mx_status mx_image_decode(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                          mx_image *out);

/* Reads a whole file (at most MX_IMAGE_MAX_FILE_BYTES) and decodes it;
 * errors (MX_ERR_IO for a file that cannot be read) name the path. */
mx_status mx_image_read(const char *path, const mx_image_decode_options *opts, mx_image *out);

void mx_image_free(mx_image *img);

/* ---- the header first, then only the pixels wanted ------------------------- */

/* Every JPEG decode here uses libjpeg's accurate integer IDCT (JDCT_ISLOW,
 * as PIL): JDCT_IFAST was measured no faster (0.69 against 0.70 ms of CPU a
 * 500x375 quality-90 photo, the entropy decoding dominating; bench/pipeline.sh's
 * images) while differing from it by 1.0 level of 255 on average and 7 at
 * most. */

/* An image in memory whose header has been read: its size is known before any
 * pixel is decoded, so a caller can choose a window from it (as
 * RandomResizedCrop does from the size) and decode only that.
 *
 * JPEG (libjpeg-turbo's partial decoding, on the one decompressor that read
 * the header): the rows above the window are entropy-decoded only
 * (jpeg_skip_scanlines: a JPEG's data cannot be entered in the middle), the
 * columns outside a band around it are not transformed or colour-converted
 * (jpeg_crop_scanline, which widens the band to the left to an iMCU boundary;
 * 16 more columns are decoded on either side so that libjpeg's smoothing of
 * the band's edges stays outside the window), and the decoder stops after
 * the window's last row (jpeg_abort_decompress: the rest of the data is never
 * read). So:
 *   - at full scale, the window's pixels are exactly those of mx_image_decode
 *     (tests/test_image_region.c checks it for 4:4:4, 4:2:2, 4:2:0, 4:4:0,
 *     grayscale, CMYK and progressive files, windows at odd offsets and
 *     sizes, at the borders and the whole image);
 *   - damage in or above the window is an error naming the file, as for
 *     mx_image_decode, but a file corrupt or truncated only below the window
 *     (or missing its end marker) decodes without one (mx_image_decode reads
 *     to the end marker, and so does a window reaching the last row);
 *   - the time saved is the transform of what lies outside the window and
 *     all of the data below it; the entropy decoding above it remains (on
 *     noisy photos at high quality it is most of a decode).
 * Optionally (min_height, min_width; dct_scaling) a window at least 2, 4 or 8
 * times the size it is wanted at in both dimensions is decoded at 1/2, 1/4 or
 * 1/8 scale (libjpeg's scaled inverse DCT, the largest such factor), as PIL's
 * Image.draft does: much faster for large photos, but the pixels are then
 * not those of a full-resolution decode resized (a scaled IDCT is a box-like
 * filter, not the bilinear one): see mx_image_source_resized_crop for how
 * far apart they are.
 *
 * PNG has no such structure: mx_image_source_open decodes it whole, and the
 * window is cut from that.
 *
 * `data` must stay valid until mx_image_source_close (the source reads it in
 * place); `name` is copied. A source is for one thread at a time; any number
 * of decodes may be made from it, one after the other. */
typedef struct mx_image_source mx_image_source;

typedef struct {
    mx_image_format format;
    size_t height, width;
} mx_image_info;

/* Reads the header (JPEG) or the whole image (PNG) of len bytes at data.
 * info may be NULL. Errors as mx_image_decode's (opts: max_pixels as there,
 * min_side ignored); *src is NULL on failure. */
mx_status mx_image_source_open(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                               mx_image_source **src, mx_image_info *info);

void mx_image_source_close(mx_image_source *src);

/* Where a decoded region lies. */
typedef struct {
    unsigned scale_denom;  /* the region is of the image at 1/scale_denom of its size: 1, 2, 4 or 8 */
    size_t top, left;      /* the region's pixel (0, 0) is pixel (top, left) of the image at that scale */
    /* The window asked for, in the region's pixel coordinates (pixel (y, x)
     * covering [y, y + 1) x [x, x + 1)): top / d - where.top, left / d -
     * where.left, height / d and width / d for d = scale_denom; at full
     * scale 0, 0, height and width. */
    double box_top, box_left, box_height, box_width;
} mx_image_region;

/* Decodes the height x width window at (top, left) of the image (in its own
 * pixels; MX_ERR_ARG naming the file unless it is non-empty and fits) into
 * out (3 x out->height x out->width, CHW). At full scale out is exactly the
 * window. When min_height and min_width are both non-zero and the image is a
 * JPEG, the window is decoded at 1/d, d the largest of 2, 4 and 8 with
 * height >= d * min_height and width >= d * min_width (if any), and out is
 * the pixels of the scaled image that the scaled window touches: rows
 * floor(top / d) to ceil((top + height) / d) - 1, columns likewise. where
 * (may be NULL) says which. Decode errors as mx_image_decode's. */
mx_status mx_image_source_decode_region(mx_image_source *src, size_t top, size_t left, size_t height, size_t width,
                                        size_t min_height, size_t min_width, mx_image *out, mx_image_region *where);

/* mx_image_source_open + mx_image_source_decode_region + close. */
mx_status mx_image_decode_region(const char *name, const void *data, size_t len, const mx_image_decode_options *opts,
                                 size_t top, size_t left, size_t height, size_t width, size_t min_height,
                                 size_t min_width, mx_image *out, mx_image_region *where);

/* The height x width window at (top, left) of the image resized to
 * out_height x out_width (bilinear, antialiased: mx_image_resize), mirrored
 * left to right if flip, into out (3 x out_height x out_width), decoding only
 * what the resize needs: a JPEG's rows are resized as libjpeg delivers them,
 * the window never held whole.
 *
 * Without dct_scaling, or when the window is less than twice the output in
 * either dimension, the result is bit-identical to cutting the window out of
 * mx_image_decode's image, mx_image_resize(..., antialias 1, ...) and the
 * flip (any format). With dct_scaling, a JPEG window at least 2, 4 or 8 times
 * the output in both dimensions is decoded at 1/2, 1/4 or 1/8 (the largest
 * such) and its box, fractional there, resampled with the same filter (PIL's
 * resize with a box): not bit-identical to the full-resolution result but
 * aligned with it (on a linear ramp the two differ by at most 2 levels of
 * 255, 0.1 to 0.25 on average, with no bias); on tests/test_image_region.c's
 * photo-like fixtures (sharp colour edges, noise) by 1.4 to 1.6 levels on
 * average and up to about 35 at the sharpest edges (the test bounds: a mean
 * under 2, a maximum of 40). MX_ERR_ARG (naming the file) for a window that does not fit or
 * an output size of 0; decode errors as mx_image_source_decode_region's. */
mx_status mx_image_source_resized_crop(mx_image_source *src, size_t top, size_t left, size_t height, size_t width,
                                       size_t out_height, size_t out_width, int flip, int dct_scaling, uint8_t *out);

/* ---- resizing and cropping (uint8 CHW, any number of channels) ---------- */

/* Bilinear resampling with half-pixel centres: output pixel x samples input
 * coordinate (x + 0.5) * in / out - 0.5, which is PyTorch's
 * interpolate(mode="bilinear", align_corners=False) and OpenCV's INTER_LINEAR,
 * edges clamped. With antialias set, a downscale by a factor s > 1 widens the
 * triangle filter to s input pixels (PIL's Image.resize(BILINEAR) and
 * torchvision's Resize(antialias=True), i.e. the torchvision ImageNet
 * recipe); without it, downscales by more than 2 skip input pixels and
 * alias. Upscaling is the same either way. Fixed-point weights (14 bits a
 * pass, normalised to sum exactly to one), results rounded to nearest: a
 * constant image stays exactly constant and a resize to the same size is the
 * identity. */

/* Resizes in (channels x height x width) to out (channels x out_height x
 * out_width). MX_ERR_ARG for a zero size, MX_ERR_NOMEM if the scratch space
 * cannot be allocated. in and out must not overlap. */
mx_status mx_image_resize(const uint8_t *in, size_t channels, size_t height, size_t width, int antialias,
                          uint8_t *out, size_t out_height, size_t out_width);

/* The out_height x out_width window at (top, left) of in resized to
 * resized_height x resized_width, computed directly (the rest of the resized
 * image is never made): out(c, y, x) = resized(c, top + y, left + x).
 * MX_ERR_ARG when the window does not fit in the resized image. */
mx_status mx_image_resize_crop(const uint8_t *in, size_t channels, size_t height, size_t width,
                               size_t resized_height, size_t resized_width, size_t top, size_t left, int antialias,
                               uint8_t *out, size_t out_height, size_t out_width);

/* Where torchvision's CenterCrop puts an out_height x out_width window in a
 * height x width image: top = round((height - out_height) / 2) with Python's
 * round (halves to even), likewise left. The window must fit. */
void mx_image_center_crop_offsets(size_t height, size_t width, size_t out_height, size_t out_width, size_t *top,
                                  size_t *left);

/* Copies the centre window (mx_image_center_crop_offsets) of in to out.
 * MX_ERR_ARG if it does not fit or a size is 0. */
mx_status mx_image_center_crop(const uint8_t *in, size_t channels, size_t height, size_t width, uint8_t *out,
                               size_t out_height, size_t out_width);

/* The size torchvision's Resize(shorter) gives a height x width image: the
 * shorter side becomes `shorter`, the other floor(shorter * long / short)
 * (a square stays square). */
void mx_image_shorter_side_size(size_t height, size_t width, size_t shorter, size_t *out_height,
                                size_t *out_width);

/* The shorter side the evaluation recipe resizes to before a crop of
 * `crop`: round(crop * 256 / 224) (256 for 224, 37 for 32). */
size_t mx_image_eval_resize(size_t crop);

/* The evaluation recipe in one pass: resize the shorter side to `shorter`
 * (mx_image_shorter_side_size), then take the centre crop x crop window
 * (mx_image_center_crop_offsets) into out (channels x crop x crop).
 * MX_ERR_ARG if crop > shorter or a size is 0. */
mx_status mx_image_resize_center_crop(const uint8_t *in, size_t channels, size_t height, size_t width,
                                      size_t shorter, size_t crop, int antialias, uint8_t *out);

#endif

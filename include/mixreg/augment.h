/* Per-sample data augmentation on uint8 images: zero padding + random crop
 * and random horizontal flip (the CIFAR recipe: torchvision
 * RandomCrop(32, padding=4) then RandomHorizontalFlip(0.5), both before
 * normalisation, so the padding is pixel value 0); or, for a streamed image
 * folder, the random resized crop of the original image (the ImageNet
 * recipe, resized_crop.h) with or without the flip.
 *
 * Every random draw of a sample is a pure function of (seed, epoch, the
 * sample's dataset index): results do not depend on the batch a sample lands
 * in, its position there, the batch size or the thread count. */
#ifndef MIXREG_AUGMENT_H
#define MIXREG_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

#define MX_AUGMENT_MAX_PAD 1024
#define MX_AUGMENT_SPEC_MAX 96 /* room for any spec mx_augment_format writes */

typedef struct {
    size_t pad;          /* zeros added on every side before cropping; 0 = none */
    size_t crop_height;  /* output size; 0 = the input's height */
    size_t crop_width;   /* output size; 0 = the input's width */
    int hflip;           /* mirror left-right with probability 1/2 */
    int resized_crop;    /* RandomResizedCrop of the original image to the sample size (streamed
                            image folders only, by mx_augment_sample and mx_augment_gather; pad
                            and crop sizes are then 0) */
} mx_augment_config;
/* A crop happens when the padded image is larger than the output, i.e. pad > 0
 * or a crop size below the image size; pad 0 with the default size is no crop. */

/* The draws of one sample, as offsets into the padded image. */
typedef struct {
    uint32_t top, left;  /* in [0, height + 2 pad - out_height] and [0, width + 2 pad - out_width] */
    int flip;
} mx_augment_draw;

/* No augmentation (every field zero). */
mx_augment_config mx_augment_config_none(void);

/* 1 if cfg draws anything for images of the given size (a crop window with
 * more than one position, or flipping); 0 means outputs are a fixed function
 * of the inputs (the identity, or a fixed pad/crop) and no RNG is consulted. */
int mx_augment_random(const mx_augment_config *cfg, size_t height, size_t width);

/* Output size for inputs of height x width (crop size, or the input's). */
void mx_augment_output_size(const mx_augment_config *cfg, size_t height, size_t width, size_t *out_height,
                            size_t *out_width);

/* MX_ERR_ARG (naming --augment) if pad > MX_AUGMENT_MAX_PAD or the crop does
 * not fit in the padded image, or an image dimension is 0. */
mx_status mx_augment_config_validate(const mx_augment_config *cfg, size_t height, size_t width);

/* Parses a CLI spec: "none", or a comma-separated list of distinct items
 * "flip", "crop:PAD", "crop:PAD:SIZE" (square), "crop:PAD:HxW" or "rrc" (the
 * random resized crop; not with crop). The crop size's fit to the data is
 * checked later by mx_augment_config_validate. */
mx_status mx_augment_parse(const char *spec, mx_augment_config *cfg);

/* The canonical spec for cfg ("none", "flip", "crop:4", "crop:4,flip",
 * "crop:4:28,flip", "crop:0:24x28", "rrc", "rrc,flip"); mx_augment_parse
 * reads it back. Returns
 * buf, truncated to size. */
const char *mx_augment_format(const mx_augment_config *cfg, char *buf, size_t size);

/* The draws of the sample with dataset index `index` in epoch `epoch`: a
 * Philox generator with key `seed`, stream (epoch << 32 | MX_STREAM_AUGMENT),
 * started at block index * 2^32. The first word decides the flip (its top
 * bit), then the top and left offsets are drawn uniformly, so the flip of a
 * sample does not depend on the crop settings and its offsets not on hflip. */
mx_augment_draw mx_augment_sample_draw(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, uint32_t index,
                                       size_t height, size_t width);

/* One image with explicit draws (no randomness): in is channels x height x
 * width, out is channels x out_height x out_width (mx_augment_output_size).
 * out(c, y, x) = padded(c, top + y, left + x') with x' = x, or
 * out_width - 1 - x when flipping; padded(c, r, s) = in(c, r - pad, s - pad)
 * inside the image and 0 outside. The draw must lie in the ranges above. */
void mx_augment_apply(const mx_augment_config *cfg, mx_augment_draw draw, const uint8_t *in, size_t channels,
                      size_t height, size_t width, uint8_t *out);

/* A batch of n contiguous images (n x channels x height x width in, n x
 * channels x out_height x out_width out, no aliasing); image i is sample
 * index[i] of the dataset and draws as mx_augment_sample_draw says. */
void mx_augment_batch(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const uint8_t *in,
                      const uint32_t *index, size_t n, size_t channels, size_t height, size_t width, uint8_t *out);

/* Sample i of ds as the augmentation makes it in `epoch`, uint8 into out
 * (channels x out_height x out_width): mx_dataset_sample then
 * mx_augment_apply with the sample's draw, or the random resized crop of the
 * original (mx_dataset_sample_resized_crop). scratch holds one sample
 * (mx_dataset_sample_size) and is unused in memory. */
mx_status mx_augment_sample(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const mx_dataset *ds, size_t i,
                            uint8_t *scratch, uint8_t *out);

/* mx_dataset_gather with augmentation: samples idx[0..n) of ds are augmented
 * (drawing on their dataset index) and normalised into x (n x channels x
 * out_height x out_width floats; the zero padding becomes the normaliser's
 * value for byte 0), labels into y when y is not NULL. With
 * mx_augment_config_none() x is exactly what mx_dataset_gather writes. In
 * memory it fails only for rrc (MX_ERR_ARG: no originals); streamed, the
 * samples are decoded in parallel (mx_augment_sample, the same bytes as in
 * memory) and the first error in idx order is returned. */
mx_status mx_augment_gather(const mx_augment_config *cfg, uint64_t seed, uint64_t epoch, const mx_dataset *ds,
                            const mx_normalizer *nz, const uint32_t *idx, size_t n, float *x, int32_t *y);

#endif

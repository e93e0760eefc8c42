/* The ImageNet training recipe per image: torchvision's
 * RandomResizedCrop(side, scale=(0.08, 1), ratio=(3/4, 4/3)) then
 * RandomHorizontalFlip, drawn per sample from (seed, epoch, sample index)
 * so results do not depend on batch composition or worker count. */
#ifndef MIXREG_RESIZED_CROP_H
#define MIXREG_RESIZED_CROP_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/folder.h"
#include "mixreg/rng.h"

typedef struct {
    size_t top, left, height, width;  /* the window of the input image */
    int flip;
} mx_resized_crop_draw;

/* torchvision's get_params: up to 10 tries of an area fraction uniform in
 * [0.08, 1] and a log-uniform aspect ratio in [3/4, 4/3] until the window
 * fits, else the whole image clamped to the ratio range, centred. */
mx_resized_crop_draw mx_resized_crop_sample(mx_rng *rng, size_t height, size_t width);

/* The draw of sample `index` in `epoch` (Philox, MX_STREAM_AUGMENT, one
 * block range per sample). */
mx_resized_crop_draw mx_resized_crop_draw_for(uint64_t seed, uint64_t epoch, uint32_t index, size_t height, size_t width);

/* Crops in (channels x height x width) to the draw's window, resizes it to
 * side x side (bilinear, antialiased) and flips it if drawn, into out. */
mx_status mx_resized_crop_apply(const uint8_t *in, size_t channels, size_t height, size_t width,
                                const mx_resized_crop_draw *draw, size_t side, uint8_t *out);

/* Reads image i of a folder and applies its draw: the training counterpart
 * of mx_folder_load_sample. The draw is made from the size in the image's
 * header (the same draw as from the decoded image's size), then only what
 * the window needs is decoded and resized (mx_image_source_resized_crop
 * with DCT scaling): a JPEG's rows below the window are never read and its
 * pixels outside the window never transformed, and a window at least 2, 4
 * or 8 times `side` in both dimensions is decoded at 1/2, 1/4 or 1/8 scale.
 * So the result is bit-identical to mx_resized_crop_apply on the full decode
 * (mx_image_read) whenever the window is less than 2 * side in either
 * dimension (always for PNG), and close to it otherwise (see
 * mx_image_source_resized_crop); and a JPEG damaged only below its window
 * loads without error. Errors name the file. */
mx_status mx_folder_load_sample_train(const mx_folder_index *index, size_t i, size_t side, uint64_t seed,
                                      uint64_t epoch, uint8_t *out_chw);

/* The same with the draw made for sample `draw_index` (a dataset cut from
 * the folder draws on its own sample numbers, as every augmentation does)
 * and the flip left out when hflip is 0 (the window is drawn the same). */
mx_status mx_folder_load_sample_train_as(const mx_folder_index *index, size_t i, uint32_t draw_index, size_t side,
                                         uint64_t seed, uint64_t epoch, int hflip, uint8_t *out_chw);

/* Sample i of a streamed image-folder dataset made with the training recipe
 * (mx_folder_load_sample_train_as on its file, drawn for sample number i),
 * 3 x side x side into out; a bad file is handled as mx_dataset_sample does.
 * MX_ERR_ARG for a dataset in memory (its originals are gone). */
mx_status mx_dataset_sample_resized_crop(const mx_dataset *ds, size_t i, int hflip, uint64_t seed, uint64_t epoch,
                                         uint8_t *out);

#endif

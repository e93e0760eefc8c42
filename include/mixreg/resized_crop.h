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

/* Reads and decodes image i of a folder and applies its draw: the training
 * counterpart of mx_folder_load_sample. Errors name the file. */
mx_status mx_folder_load_sample_train(const mx_folder_index *index, size_t i, size_t side, uint64_t seed,
                                      uint64_t epoch, uint8_t *out_chw);

#endif

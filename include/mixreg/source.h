/* Where datasets come from, as --data names them:
 *   fashion-mnist   Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist,
 *                   or the directory in $MIXREG_FASHION_MNIST), IDX files;
 *   idx:DIR, DIR    a directory of IDX files (mx_dataset_load_idx);
 *   cifar10:DIR     the binary version of CIFAR-10 (data_batch_1.bin .. data_batch_5.bin,
 *                   test_batch.bin; mx_dataset_load_cifar);
 *   cifar100:DIR    the binary version of CIFAR-100 (train.bin, test.bin), fine or
 *                   coarse labels;
 *   folder:DIR      an image folder (DIR/train/<class>/ images, DIR/val/...; folder.h),
 *                   decoded and brought to image_size x image_size (ImageNet's
 *                   evaluation recipe), whole into memory. */
#ifndef MIXREG_SOURCE_H
#define MIXREG_SOURCE_H

#include <stddef.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

/* Writes the directory that spec names into dir (for every kind above).
 * MX_ERR_ARG for an unknown kind, an empty path or one longer than cap. */
mx_status mx_data_resolve(const char *spec, char *dir, size_t cap);

/* Loads split "train" or "test" of the dataset named by spec (fine labels). */
mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out);

/* The same with a choice of label: MX_LABEL_COARSE (CIFAR-100's 20
 * superclasses) is an MX_ERR_ARG error for anything but cifar100:DIR. */
mx_status mx_data_load_labels(const char *spec, const char *split, mx_label_kind labels, mx_dataset *out);

typedef struct {
    mx_label_kind labels;  /* CIFAR-100 */
    size_t image_size;     /* image folders: the side of the square images (default 224) */
    int skip_bad;          /* image folders: leave out files that fail to decode ... */
    size_t skipped;        /* ... and count them here (set by the load) */
} mx_data_options;

mx_data_options mx_data_options_default(void);
/* The general form: split "test" of an image folder is its val (or test) split. */
mx_status mx_data_load_with(const char *spec, const char *split, mx_data_options *opts, mx_dataset *out);

/* An image folder's class names in label order (from its val split); each
 * name and the array are malloc'd (free with mx_free_names from fileio.h).
 * MX_ERR_ARG for other kinds of data, whose classes have no names. */
mx_status mx_data_class_names(const char *spec, char ***names, size_t *count);

#endif

/* Where datasets come from, as --data names them:
 *   fashion-mnist   Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist,
 *                   or the directory in $MIXREG_FASHION_MNIST), IDX files;
 *   idx:DIR, DIR    a directory of IDX files (mx_dataset_load_idx);
 *   cifar10:DIR     the binary version of CIFAR-10 (data_batch_1.bin .. data_batch_5.bin,
 *                   test_batch.bin; mx_dataset_load_cifar);
 *   cifar100:DIR    the binary version of CIFAR-100 (train.bin, test.bin), fine or
 *                   coarse labels. */
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

#endif

/* Where datasets come from: "--data fashion-mnist" (Debian's
 * dataset-fashion-mnist, /usr/share/datasets/fashion-mnist, or the directory in
 * $MIXREG_FASHION_MNIST), "idx:DIR" or a plain DIR of IDX files. */
#ifndef MIXREG_SOURCE_H
#define MIXREG_SOURCE_H

#include <stddef.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

mx_status mx_data_resolve(const char *spec, char *dir, size_t cap);

/* Loads split "train" or "test" of the dataset named by spec. */
mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out);

#endif

/* Per-sample predictions, for analysis outside mixreg (pandas, NumPy).
 *
 * The format follows the file name's extension:
 *
 *   .csv  a header line "index,label,p0,p1,...,p{C-1}", then one line per
 *         sample: its index (0-based, in the order given), its label (an
 *         integer) and the C class probabilities printed with %.7g (seven
 *         significant digits: within a unit or so of float's last place, not
 *         always bit-exact; use .npy for the exact values). Lines end in
 *         '\n'.
 *
 *   .npy  NumPy's format version 1.0: the magic "\x93NUMPY", bytes 1 and 0,
 *         a little-endian uint16 header length, and the header
 *         "{'descr': '<f4', 'fortran_order': False, 'shape': (n, C+2), }"
 *         padded with spaces and a final '\n' so that the data starts at a
 *         multiple of 64 bytes. The data is one little-endian float32 array,
 *         row-major, of shape (n, 2 + C): column 0 the index, column 1 the
 *         label, columns 2.. the probabilities. Index and label are exact as
 *         float32 up to 2^24 = 16777216. numpy.load(path) reads it.
 *
 * More than one block of C columns (mx_predictions_write_blocks) follow in
 * the order given, each named by its prefix in the CSV header ("p0..",
 * "plain_p0..", "plain_logit0.."); an .npy holds the same columns in the same
 * order, shape (n, 2 + blocks x C). `mixreg eval --rescale both` writes
 * p (the rescaled probabilities, as a one-block file), rescaled_logit,
 * plain_p, plain_logit (docs/formats.md).
 *
 * The file is written to a temporary file beside it and renamed into place,
 * so an existing file is replaced whole or not at all. */
#ifndef MIXREG_PREDICTIONS_H
#define MIXREG_PREDICTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

/* probs: n x num_classes, row-major; labels: n. MX_ERR_ARG for an extension
 * other than .csv or .npy (case-insensitive), num_classes = 0, or more than
 * 2^24 samples for .npy; MX_ERR_IO if the file cannot be written. n = 0
 * writes the header only (a CSV header line, an .npy of shape (0, C+2)). */
mx_status mx_predictions_write(const char *path, const float *probs, const int32_t *labels, size_t n,
                               size_t num_classes);

#define MX_PREDICTION_MAX_BLOCKS 8

/* One block of num_classes columns: `name` is the CSV columns' prefix
 * (letters, digits and '_', under 32 characters), values n x num_classes. */
typedef struct {
    const char *name;
    const float *values;
} mx_prediction_block;

/* The general form: index, label, then the blocks in order (1 to
 * MX_PREDICTION_MAX_BLOCKS; a bad name is MX_ERR_ARG). mx_predictions_write
 * is the one block "p". */
mx_status mx_predictions_write_blocks(const char *path, const mx_prediction_block *blocks, size_t count,
                                      const int32_t *labels, size_t n, size_t num_classes);

#endif

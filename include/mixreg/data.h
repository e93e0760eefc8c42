/* Datasets of uint8 images plus int32 labels, read from the IDX format (MNIST
 * family, raw or gzip) or CIFAR-10/100's binary version and held in memory,
 * or streamed: decoded from an image folder sample by sample when asked for
 * (stream.c); either way turned into normalised float batches at the last
 * moment. */
#ifndef MIXREG_DATA_H
#define MIXREG_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_MAX_CHANNELS 4

/* Where a streamed dataset's samples come from (an image-folder index, the
 * sample recipe and the bad files met so far), shared by the datasets cut
 * from it (refcounted) and safe to read from several threads at once. */
typedef struct mx_stream mx_stream;

typedef struct {
    size_t n;            /* number of samples */
    size_t channels, height, width;
    size_t num_classes;  /* IDX: 1 + the largest label seen; CIFAR: fixed by the format */
    char **class_names;  /* num_classes names, label order (image folders; mx_dataset_match_classes); NULL: unnamed */
    uint8_t *pixels;     /* n x channels x height x width, row-major (NCHW); NULL when streamed */
    int32_t *labels;     /* n, in memory either way */
    mx_stream *stream;   /* streamed: the source of the pixels (NULL in memory) ... */
    uint32_t *entries;   /* ... and sample i is its entry entries[i] */
} mx_dataset;

/* How many bytes one sample's pixels take (channels x height x width). */
size_t mx_dataset_sample_size(const mx_dataset *ds);

/* The uint8 CHW pixels of sample i: a pointer into ds->pixels in memory;
 * streamed, the sample decoded into scratch (mx_dataset_sample_size bytes)
 * and *pixels = scratch. The one way every reader gets a sample's pixels.
 * Streamed errors name the file (see mx_stream's bad-image rule in
 * stream.c). Safe to call from several threads with separate scratch. */
mx_status mx_dataset_sample(const mx_dataset *ds, size_t i, uint8_t *scratch, const uint8_t **pixels);

/* Statistics over a streamed dataset decode an evenly spaced subsample of at
 * most this many samples (sample floor(k * n / m), k < m); in memory every
 * sample is used. */
#define MX_STATS_SUBSAMPLE 10000
size_t mx_dataset_stats_count(const mx_dataset *ds);
size_t mx_dataset_stats_index(const mx_dataset *ds, size_t k);

/* The number of distinct files of a streamed dataset (and those sharing its
 * stream) that failed to decode and were replaced so far; 0 in memory. */
size_t mx_dataset_bad_images(const mx_dataset *ds);

/* Reads an IDX image file (magic 0x00000803: n x rows x cols uint8), raw or
 * gzip-compressed (detected from the content, not the name). Errors
 * (MX_ERR_IO / MX_ERR_FORMAT) name the file: wrong magic, truncated payload,
 * trailing garbage, absurd dimensions (0, or rows/cols > 65536, or more than
 * 2^31 bytes in all). *pixels is malloc'd. */
mx_status mx_idx_read_images(const char *path, uint8_t **pixels, size_t *n,
                             size_t *rows, size_t *cols);

/* Reads an IDX label file (magic 0x00000801: n uint8 labels). */
mx_status mx_idx_read_labels(const char *path, int32_t **labels, size_t *n);

/* The same two readers over raw (not gzip) IDX bytes already in memory, with
 * the same checks and messages; `name` stands for the file in them. */
mx_status mx_idx_parse_images(const char *name, const void *data, size_t len, uint8_t **pixels, size_t *n,
                              size_t *rows, size_t *cols);
mx_status mx_idx_parse_labels(const char *name, const void *data, size_t len, int32_t **labels, size_t *n);

/* Loads split "train" or "test" of an IDX directory: DIR/train-images-idx3-ubyte
 * and DIR/train-labels-idx1-ubyte (or t10k-* for test), each optionally with a
 * .gz suffix. Image and label counts must match. num_classes = max label + 1. */
mx_status mx_dataset_load_idx(const char *dir, const char *split, mx_dataset *out);

void mx_dataset_free(mx_dataset *ds);

/* ---- class names ------------------------------------------------------------ */

/* The longest class name kept or accepted (a directory entry's limit). */
#define MX_CLASS_NAME_MAX 255

/* A dataset's classes against a model's. With names on both sides
 * (ds->class_names, model_names: an image folder and a model trained on one),
 * by name: each label becomes its class's position among the model's,
 * ds->num_classes the model's and ds->class_names a copy of model_names; a
 * class of the data the model does not have is an MX_ERR_FORMAT error naming
 * it (`what` stands for the data); model classes the data has no sample of
 * are allowed, and said in `note` (one line; empty when there is nothing to
 * say). Without names on either side, by position: an error unless every
 * label is below model_classes (the data then unchanged). So a validation
 * folder with a class renamed, dropped or added is never scored against the
 * wrong labels. */
mx_status mx_dataset_match_classes(mx_dataset *ds, const char *what, char *const *model_names, size_t model_classes,
                                   char *note, size_t note_cap);

/* A malloc'd copy of n names (*out NULL when names is NULL), and its release
 * (of the first n names, or up to the NULL that ends every array of names
 * made here: mx_class_names_free(names, SIZE_MAX) frees one whole). */
mx_status mx_class_names_copy(char *const *names, size_t n, char ***out);
void mx_class_names_free(char **names, size_t n);

/* The names as a JSON array of strings (malloc'd; NULL when out of memory),
 * as a checkpoint keeps them, and back: exactly `expected` distinct names, each
 * a usable directory name of at most MX_CLASS_NAME_MAX bytes without control
 * characters (MX_ERR_FORMAT naming `what` otherwise). */
char *mx_class_names_to_json(char *const *names, size_t n);
mx_status mx_class_names_from_json(const char *what, const char *json, size_t expected, char ***out);

/* Copies samples idx[0..n) of src into a new dataset (num_classes kept from
 * src); of a streamed dataset, only its entries are selected (the new dataset
 * shares the stream). */
mx_status mx_dataset_subset(const mx_dataset *src, const uint32_t *idx, size_t n, mx_dataset *out);

/* The validation hold-out: a shuffle seeded by `seed`, its first
 * floor(fraction * n) samples into val, the rest into train (in original
 * order when fraction is 0, val then left empty). */
mx_status mx_dataset_split(const mx_dataset *full, uint64_t seed, double fraction, mx_dataset *train, mx_dataset *val);

/* Per-channel mean and standard deviation of the pixels scaled to [0, 1]
 * (exact integer sums, divided in double) over the whole dataset in memory,
 * or the subsample above when streamed (decoded in parallel; the result does
 * not depend on the thread count). Fails only on a streamed sample's error. */
mx_status mx_dataset_channel_stats(const mx_dataset *ds, float *mean, float *std);

/* Per-sample normalisation: x = (pixel / 255 - mean[c]) / std[c]. */
typedef struct {
    size_t channels;
    float mean[MX_MAX_CHANNELS];
    float std[MX_MAX_CHANNELS];
    float lut[MX_MAX_CHANNELS][256];  /* precomputed per channel and byte value */
} mx_normalizer;

/* MX_ERR_ARG if channels is 0 or > MX_MAX_CHANNELS or a std is not > 0. */
mx_status mx_normalizer_init(mx_normalizer *nz, size_t channels, const float *mean, const float *std);

/* Given normalisation statistics, as --normalize takes them: "imagenet"
 * (mean 0.485,0.456,0.406, std 0.229,0.224,0.225, torchvision's) or
 * "M1,...,Mc/S1,...,Sc" (one mean and one std per channel, on the [0, 1]
 * pixel scale, 1 to MX_MAX_CHANNELS channels, as many stds as means, every
 * std > 0). "computed" (statistics from the training data) is not parsed
 * here. MX_ERR_ARG naming --normalize otherwise. */
mx_status mx_normalize_parse(const char *text, size_t *channels, float *mean, float *std);

/* Gathers samples idx[0..n) into x (n x sample_size floats, normalised) and
 * y. In memory it cannot fail; streamed, samples are decoded (in parallel)
 * and a decoding error is returned (the first in idx order). */
mx_status mx_dataset_gather(const mx_dataset *ds, const mx_normalizer *nz, const uint32_t *idx,
                            size_t n, float *x, int32_t *y);

/* ---- CIFAR-10 / CIFAR-100, binary version ------------------------------- */

/* Which CIFAR-100 label a sample gets: one of 100 fine classes or one of 20
 * coarse superclasses. CIFAR-10 has only one kind (MX_LABEL_FINE). */
typedef enum { MX_LABEL_FINE, MX_LABEL_COARSE } mx_label_kind;

#define MX_CIFAR_SIDE 32
#define MX_CIFAR_PIXELS (3 * MX_CIFAR_SIDE * MX_CIFAR_SIDE)  /* 3072: R, G, B planes, row-major */

/* Loads split "train" or "test" of the binary version of CIFAR-10
 * (cifar100 = 0: DIR/data_batch_1.bin .. data_batch_5.bin, DIR/test_batch.bin;
 * records of 1 label byte + 3072 pixel bytes) or CIFAR-100 (cifar100 = 1:
 * DIR/train.bin, DIR/test.bin; records of 1 coarse + 1 fine label byte + 3072
 * pixel bytes). The result is 3 x 32 x 32 (NCHW); num_classes is fixed by the
 * format: 10, 100 (fine) or 20 (coarse). Errors name the file: missing, empty,
 * a size that is not a whole number of records (MX_ERR_FORMAT, with the bytes
 * left over), a label byte out of range (MX_ERR_FORMAT, with the record index).
 * MX_ERR_ARG for coarse labels with CIFAR-10 or an unknown split. */
mx_status mx_dataset_load_cifar(const char *dir, int cifar100, mx_label_kind labels, const char *split,
                                mx_dataset *out);

/* Decodes one CIFAR batch file's bytes already in memory with the same checks
 * and messages (`name` stands for the file) into a new dataset. */
mx_status mx_cifar_parse(const char *name, const void *data, size_t len, int cifar100, mx_label_kind labels,
                         mx_dataset *out);

#endif

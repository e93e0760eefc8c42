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
 *                   evaluation recipe), whole into memory or streamed from
 *                   disk (mx_data_options.stream). */
#ifndef MIXREG_SOURCE_H
#define MIXREG_SOURCE_H

#include <stddef.h>

#include "mixreg/data.h"
#include "mixreg/error.h"

/* Every form above, as help texts list them:
 * "fashion-mnist|idx:DIR|cifar10:DIR|cifar100:DIR|folder:DIR|DIR", made
 * from the list the parser reads. */
const char *mx_data_source_forms(void);

/* Writes the directory that spec names into dir (for every kind above).
 * MX_ERR_ARG for an unknown kind, an empty path or one longer than cap. */
mx_status mx_data_resolve(const char *spec, char *dir, size_t cap);

/* Loads split "train" or "test" of the dataset named by spec (fine labels). */
mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out);

/* The same with a choice of label: MX_LABEL_COARSE (CIFAR-100's 20
 * superclasses) is an MX_ERR_ARG error for anything but cifar100:DIR. */
mx_status mx_data_load_labels(const char *spec, const char *split, mx_label_kind labels, mx_dataset *out);

/* Whether an image folder's split is streamed (decoded from disk sample by
 * sample, mx_dataset_stream_folder) or decoded whole into memory: auto
 * streams it when its decoded pixels (n x 3 x side x side bytes) would take
 * more than the memory budget. IDX and CIFAR data are always in memory. */
typedef enum { MX_STREAMING_AUTO, MX_STREAMING_ON, MX_STREAMING_OFF } mx_streaming;

const char *mx_streaming_name(mx_streaming mode);
mx_status mx_streaming_parse(const char *what, const char *text, mx_streaming *out);

/* The budget auto compares with: $MIXREG_MEMORY_BUDGET (bytes) when set,
 * else a quarter of physical memory (for each split loaded). */
size_t mx_data_memory_budget(void);

typedef struct {
    mx_label_kind labels;  /* CIFAR-100 */
    size_t image_size;     /* image folders: the side of the square images (default 224) */
    int skip_bad;          /* image folders: leave out files that fail to decode (in memory) or
                              replace them when met (streamed, mx_dataset_bad_images) ... */
    size_t skipped;        /* ... and the number left out is set here by an in-memory load */
    mx_streaming stream;   /* image folders (default auto) */
    size_t memory_budget;  /* for auto; 0: mx_data_memory_budget() */
} mx_data_options;

mx_data_options mx_data_options_default(void);
/* The general form: split "test" of an image folder is its val (or test) split. */
mx_status mx_data_load_with(const char *spec, const char *split, mx_data_options *opts, mx_dataset *out);

/* An image folder's class names in label order (from its val split); each
 * name and the array are malloc'd (free with mx_free_names from fileio.h).
 * MX_ERR_ARG for other kinds of data, whose classes have no names. */
mx_status mx_data_class_names(const char *spec, char ***names, size_t *count);

#endif

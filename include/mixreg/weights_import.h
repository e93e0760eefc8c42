/* A model mixreg did not train, from a state dict (weights_file.h): its
 * tensors are mapped onto a mixreg architecture by name (mixreg names its
 * CNNs' tensors as PyTorch does: resnet50 as torchvision's and timm's
 * resnet50), every tensor the model has must be there with its shape, and
 * the result saved as a run directory that eval, predict and analyze read. */
#ifndef MIXREG_WEIGHTS_IMPORT_H
#define MIXREG_WEIGHTS_IMPORT_H

#include <stddef.h>

#include "mixreg/error.h"
#include "mixreg/model.h"
#include "mixreg/run.h"
#include "mixreg/weights_file.h"

typedef struct {
    const char *arch;        /* a mixreg architecture ("resnet50") */
    size_t classes;          /* 0: the classifier's rows in the file; else they must be this many */
    size_t channels;         /* 0: the first convolution's input channels in the file (3 without one) */
    size_t height, width;    /* the input the model is planned for */
    int allow_extra;         /* tensors the model does not have are ignored instead of refused */
} mx_import_options;

/* The mixreg name of a state dict key, written to buf: without the
 * "module." prefix of nn.DataParallel / DistributedDataParallel and the
 * "_orig_mod." of torch.compile, with timm's "head.fc." as "fc.". Returns 0
 * for a key that holds no weights (batch norm's num_batches_tracked), which
 * import skips. */
int mx_import_canonical_name(const char *key, char *buf, size_t cap);

/* Creates the model (parameters and buffers only: plan it before running)
 * from the file's tensors, converted to float32 (from F16, BF16 or F64).
 * MX_ERR_FORMAT naming the tensor for: one the model has that is missing,
 * of another shape, of an integer dtype or holding a NaN or infinity; two
 * keys that name the same tensor; a tensor the model does not have (unless
 * allow_extra). Batch norm counters (num_batches_tracked) are not read: they
 * start at 0. The model's size is bounded by the file's. */
mx_status mx_weights_import(const mx_weights_file *wf, const mx_import_options *opt, mx_model **out);

/* Saves `run` as a new run directory: created if missing, locked as train
 * does (run_dir.h), refused if it already holds a model; config.json and
 * model.safetensors written atomically. */
mx_status mx_import_save_run(const char *dir, const mx_run *run);

#endif

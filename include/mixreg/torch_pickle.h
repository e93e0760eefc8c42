/* The pickle that torch.save writes for a state dict (ARCHIVE/data.pkl in a
 * .pt file), read by a small interpreter that knows only the opcodes such a
 * pickle uses and builds plain data from them: dicts, lists, tuples,
 * strings, numbers, and the tensor references that torch's persistent ids
 * and _rebuild_tensor_v2 describe. Nothing is ever imported or called: the
 * only globals accepted are collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the tensor
 * storage classes (torch.FloatStorage, ...), each interpreted by this file.
 * Anything else (another global, an unknown opcode, an object of the wrong
 * shape) is refused with an error naming it. Every count is bounded: the
 * stack, the memo, the objects built. */
#ifndef MIXREG_TORCH_PICKLE_H
#define MIXREG_TORCH_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/safetensors.h"

/* Larger pickles are refused unread (a ResNet-50 state dict's is 39 KiB). */
#define MX_TORCH_PICKLE_MAX_BYTES ((size_t)64 << 20)

/* One tensor of the state dict: where its elements are in which storage. */
typedef struct {
    char name[128];                     /* the state dict key */
    mx_dtype dtype;                     /* the storage's: F32, F16, BF16, F64, I64 or I32 */
    char storage[64];                   /* the storage's key: its bytes are ARCHIVE/data/<key> */
    size_t storage_numel;               /* elements the persistent id says the storage holds */
    size_t offset;                      /* the tensor's first element in the storage */
    size_t ndim;
    size_t shape[MX_ST_MAX_NDIM];
    size_t stride[MX_ST_MAX_NDIM];
} mx_torch_tensor_ref;

/* Interprets `pkl` (size bytes). The result must be a dict of tensors (a
 * state dict), or a dict holding one under "state_dict" or "model" (a
 * training checkpoint; its other entries are read but not used). *refs is
 * malloc'd, *count entries, in the pickle's order, names unique.
 * MX_ERR_FORMAT naming `label` for everything else. */
mx_status mx_torch_pickle_parse(const char *label, const uint8_t *pkl, size_t size, mx_torch_tensor_ref **refs,
                                size_t *count);

#endif

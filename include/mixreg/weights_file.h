/* A state dict someone else saved: a safetensors file or a PyTorch .pt file
 * (torch.save's zip archive, read by zip_reader.h and torch_pickle.h, never
 * by running its pickle). Both give the same list of named tensors pointing
 * into the file's bytes, which `mixreg import` maps onto a model. */
#ifndef MIXREG_WEIGHTS_FILE_H
#define MIXREG_WEIGHTS_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"
#include "mixreg/safetensors.h"

/* Larger files are refused unread (a ResNet-50's is about 100 MB). */
#define MX_WEIGHTS_FILE_MAX_BYTES ((size_t)16 << 30)

typedef struct {
    size_t count;
    mx_st_tensor *tensors;   /* data: inside the file's bytes, any alignment (read with memcpy) */
    uint8_t *file;           /* owned */
    size_t file_size;
    mx_safetensors st;       /* safetensors files: the parsed file (owns `file`) */
    int is_safetensors;
} mx_weights_file;

/* Reads a safetensors or .pt file, recognised by its first bytes (a zip
 * archive is a .pt file). An older, pre-zip torch.save file is refused
 * with a line saying how to re-save it. Every tensor of a .pt file must be
 * contiguous and lie inside its storage, whose bytes must be exactly what
 * the file declares; dtypes: F32, F16, BF16, F64, I64, I32. */
mx_status mx_weights_file_read(const char *path, mx_weights_file *out);

/* The .pt reader on bytes in memory (for the fuzz target and tests); takes
 * ownership of data (malloc'd). `label` names the file in errors. */
mx_status mx_weights_file_parse_pt(const char *label, uint8_t *data, size_t size, mx_weights_file *out);

void mx_weights_file_free(mx_weights_file *wf);

#endif

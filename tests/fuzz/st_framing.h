/* The safetensors fuzz targets' input: a file as it is, or, when it starts
 * with '{', a header in text form: the JSON up to the first NUL byte, then the
 * tensor data. The target adds the 8-byte length itself, so that inserting or
 * deleting bytes inside the JSON (a dictionary token, a copied key) leaves a
 * file whose framing still holds and whose header is read: with raw files,
 * nearly every such mutation only breaks the length prefix. */
#ifndef MIXREG_FUZZ_ST_FRAMING_H
#define MIXREG_FUZZ_ST_FRAMING_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd file of *file_size bytes plus a NUL (mx_safetensors_parse's contract), or NULL. */
static uint8_t *fuzz_safetensors_file(const uint8_t *data, size_t size, size_t *file_size)
{
    size_t header = size, skip = 0;
    int text_form = size && data[0] == '{';
    if (text_form) {
        const uint8_t *nul = memchr(data, 0, size);
        if (nul) header = (size_t)(nul - data), skip = 1;
    }
    *file_size = text_form ? 8 + size - skip : size;
    uint8_t *file = malloc(*file_size + 1);
    if (!file) return NULL;
    if (text_form) {
        for (int b = 0; b < 8; b++) file[b] = (uint8_t)((uint64_t)header >> (8 * b));
        memcpy(file + 8, data, header);
        memcpy(file + 8 + header, data + header + skip, size - header - skip);
    } else {
        memcpy(file, data, size);
    }
    file[*file_size] = 0;
    return file;
}

#endif

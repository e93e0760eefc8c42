/* A bounded reader of ZIP archives whose entries are stored uncompressed, the
 * container PyTorch's torch.save writes (archive/data.pkl, archive/data/N,
 * each entry "stored", its data aligned by padding in the local header's
 * extra field; the ZIP64 end records included). It reads the central
 * directory of an archive already in memory and hands out pointers into it.
 * Every offset and size comes from a possibly hostile file: each is checked
 * against the archive's bounds before it is used, compressed, encrypted,
 * multi-disk or duplicated entries are refused, and an entry's CRC-32 is
 * checked when its data is asked for. */
#ifndef MIXREG_ZIP_READER_H
#define MIXREG_ZIP_READER_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

/* Names longer than this are refused (PyTorch's are a few dozen bytes). */
#define MX_ZIP_MAX_NAME 255

typedef struct {
    char name[MX_ZIP_MAX_NAME + 1];
    size_t data_offset;   /* of the entry's bytes in the archive */
    size_t size;
    uint32_t crc32;
} mx_zip_entry;

typedef struct {
    const uint8_t *data;  /* the archive, the caller's */
    size_t size;
    size_t count;
    mx_zip_entry *entries;
} mx_zip;

/* Reads the central directory of the archive `data` (size bytes; the caller
 * keeps it alive while the index is used). MX_ERR_FORMAT naming `label` for
 * anything but a single-disk archive of stored entries whose names, local
 * headers and data all lie inside it. */
mx_status mx_zip_open(const char *label, const uint8_t *data, size_t size, mx_zip *out);
void mx_zip_free(mx_zip *zip);

/* The entry named `name`, or NULL. */
const mx_zip_entry *mx_zip_find(const mx_zip *zip, const char *name);

/* The entry's bytes after checking their CRC-32 (MX_ERR_FORMAT on a mismatch). */
mx_status mx_zip_entry_data(const mx_zip *zip, const mx_zip_entry *entry, const uint8_t **data);

#endif

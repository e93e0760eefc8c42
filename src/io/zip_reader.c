/* The ZIP subset torch.save writes (zip_reader.h). Layout, from the end:
 * the end-of-central-directory record (EOCD, 22 bytes + a comment), before
 * it for ZIP64 a locator (20 bytes) pointing at the ZIP64 EOCD record, which
 * carries 64-bit counts and offsets; the central directory (one 46-byte
 * header + name + extra + comment per entry); each entry's local header
 * (30 bytes + name + extra) followed by its data. PyTorch sets the
 * data-descriptor flag and leaves the local header's sizes zero, so the
 * sizes and CRCs are the central directory's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mixreg/checked.h"
#include "mixreg/zip_reader.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define EOCD_SIZE 22
#define EOCD64_SIZE 56
#define LOCATOR64_SIZE 20
#define CENTRAL_SIZE 46
#define LOCAL_SIZE 30
#define MAX_COMMENT 65535

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* [offset, offset + length) inside [0, limit). */
static int in_bounds(uint64_t offset, uint64_t length, size_t limit)
{
    return offset <= limit && length <= limit - offset;
}

typedef struct {
    uint64_t count, cd_size, cd_offset;
    size_t cd_end;  /* where the central directory must end: the first end record */
} directory;

/* The EOCD is the last record whose comment length reaches exactly to the end. */
static mx_status find_eocd(const char *label, const uint8_t *d, size_t size, size_t *eocd)
{
    if (size < EOCD_SIZE) return mx_error_set(MX_ERR_FORMAT, "%s: too short for a zip archive", label);
    size_t lowest = size - EOCD_SIZE > MAX_COMMENT ? size - EOCD_SIZE - MAX_COMMENT : 0;
    for (size_t p = size - EOCD_SIZE + 1; p-- > lowest;)
        if (rd32(d + p) == SIG_EOCD && p + EOCD_SIZE + rd16(d + p + 20) == size) {
            *eocd = p;
            return MX_OK;
        }
    return mx_error_set(MX_ERR_FORMAT, "%s: no zip end-of-central-directory record", label);
}

static mx_status read_directory(const char *label, const uint8_t *d, size_t size, directory *dir)
{
    size_t e = 0;
    mx_status st = find_eocd(label, d, size, &e);
    if (st != MX_OK) return st;
    if (rd16(d + e + 4) != 0 || rd16(d + e + 6) != 0 || rd16(d + e + 8) != rd16(d + e + 10))
        return mx_error_set(MX_ERR_FORMAT, "%s: a multi-disk zip archive", label);
    dir->count = rd16(d + e + 10);
    dir->cd_size = rd32(d + e + 12);
    dir->cd_offset = rd32(d + e + 16);
    dir->cd_end = e;
    int wide = dir->count == 0xFFFF || dir->cd_size == 0xFFFFFFFFu || dir->cd_offset == 0xFFFFFFFFu;
    if (e >= LOCATOR64_SIZE && rd32(d + e - LOCATOR64_SIZE) == SIG_LOCATOR64) {
        const uint8_t *loc = d + e - LOCATOR64_SIZE;
        uint64_t at = rd64(loc + 8);
        if (rd32(loc + 4) != 0 || rd32(loc + 16) != 1)
            return mx_error_set(MX_ERR_FORMAT, "%s: a multi-disk zip archive", label);
        if (!in_bounds(at, EOCD64_SIZE, e - LOCATOR64_SIZE) || rd32(d + at) != SIG_EOCD64)
            return mx_error_set(MX_ERR_FORMAT, "%s: the ZIP64 locator points outside the archive", label);
        const uint8_t *r = d + at;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
            return mx_error_set(MX_ERR_FORMAT, "%s: a multi-disk zip archive", label);
        /* The 64-bit values stand where the 16/32-bit ones are saturated; elsewhere both must agree. */
        uint64_t count = rd64(r + 32), cd_size = rd64(r + 40), cd_offset = rd64(r + 48);
        if ((dir->count != 0xFFFF && dir->count != count) || (dir->cd_size != 0xFFFFFFFFu && dir->cd_size != cd_size) ||
            (dir->cd_offset != 0xFFFFFFFFu && dir->cd_offset != cd_offset))
            return mx_error_set(MX_ERR_FORMAT, "%s: the ZIP64 end record disagrees with the end record", label);
        dir->count = count;
        dir->cd_size = cd_size;
        dir->cd_offset = cd_offset;
        dir->cd_end = (size_t)at;
    } else if (wide) {
        return mx_error_set(MX_ERR_FORMAT, "%s: a ZIP64 archive without its ZIP64 end record", label);
    }
    /* The directory lies before the end records and holds at least a header per entry. */
    if (!in_bounds(dir->cd_offset, dir->cd_size, dir->cd_end) || dir->count > dir->cd_size / CENTRAL_SIZE)
        return mx_error_set(MX_ERR_FORMAT, "%s: the zip central directory lies outside the archive", label);
    return MX_OK;
}

/* A ZIP64 extended-information extra field (id 1) supplies, in this order,
 * the sizes and the local header offset whose 32-bit fields are saturated. */
static int apply_zip64_extra(const uint8_t *extra, size_t len, uint64_t *usize, uint64_t *csize, uint64_t *offset)
{
    uint64_t *fields[3] = {usize, csize, offset};
    size_t p = 0;
    while (p + 4 <= len) {
        uint16_t id = rd16(extra + p), n = rd16(extra + p + 2);
        if (n > len - p - 4) return 0;
        if (id == 1) {
            size_t q = 0;
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xFFFFFFFFu) continue;
                if (q + 8 > n) return 0;
                *fields[k] = rd64(extra + p + 4 + q);
                q += 8;
            }
            return 1;
        }
        p += 4 + (size_t)n;
    }
    /* No ZIP64 field: then no field may be saturated. */
    return *usize != 0xFFFFFFFFu && *csize != 0xFFFFFFFFu && *offset != 0xFFFFFFFFu;
}

static int name_ok(const uint8_t *name, size_t len)
{
    if (len == 0 || len > MX_ZIP_MAX_NAME) return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < 0x20 || name[i] == 0x7F) return 0;
    return 1;
}

/* One central directory header at *p (advanced past it) into *entry. */
static mx_status read_entry(const char *label, const uint8_t *d, size_t size, size_t cd_end, size_t *p, size_t index,
                            mx_zip_entry *entry)
{
    const uint8_t *h = d + *p;
    if (!in_bounds(*p, CENTRAL_SIZE, cd_end) || rd32(h) != SIG_CENTRAL)
        return mx_error_set(MX_ERR_FORMAT, "%s: zip central directory entry %zu is malformed", label, index);
    uint16_t flags = rd16(h + 8), method = rd16(h + 10);
    size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
    size_t var_len = name_len + extra_len + comment_len;
    if (!in_bounds(*p + CENTRAL_SIZE, var_len, cd_end))
        return mx_error_set(MX_ERR_FORMAT, "%s: zip central directory entry %zu runs past the directory", label, index);
    const uint8_t *name = h + CENTRAL_SIZE;
    if (!name_ok(name, name_len))
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry %zu has an empty, over-long or unprintable name", label, index);
    memcpy(entry->name, name, name_len);
    entry->name[name_len] = '\0';
    if (flags & 0x41) return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' is encrypted", label, entry->name);
    if (method != 0)
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' is compressed (method %u); only stored entries are read",
                            label, entry->name, method);
    if (rd16(h + 34) != 0) return mx_error_set(MX_ERR_FORMAT, "%s: a multi-disk zip archive", label);
    uint64_t csize = rd32(h + 20), usize = rd32(h + 24), offset = rd32(h + 42);
    if (!apply_zip64_extra(name + name_len, extra_len, &usize, &csize, &offset))
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' has a malformed ZIP64 field", label, entry->name);
    if (csize != usize)
        return mx_error_set(MX_ERR_FORMAT, "%s: stored zip entry '%s' has two different sizes", label, entry->name);
    /* The local header: its name must be the same; its extra field (PyTorch's alignment padding) is skipped. */
    if (!in_bounds(offset, LOCAL_SIZE, size) || rd32(d + offset) != SIG_LOCAL)
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' has no local header where the directory says", label,
                            entry->name);
    const uint8_t *local = d + offset;
    size_t local_name = rd16(local + 26), local_extra = rd16(local + 28);
    uint64_t data_at = offset + LOCAL_SIZE + local_name + local_extra;
    if (local_name != name_len || !in_bounds(offset + LOCAL_SIZE, local_name, size) ||
        memcmp(local + LOCAL_SIZE, name, name_len) != 0)
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s': the local header names another file", label, entry->name);
    if (!in_bounds(data_at, usize, size))
        return mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' (%llu bytes) runs past the archive", label, entry->name,
                            (unsigned long long)usize);
    entry->data_offset = (size_t)data_at;
    entry->size = (size_t)usize;
    entry->crc32 = rd32(h + 16);
    *p += CENTRAL_SIZE + var_len;
    return MX_OK;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(((const mx_zip_entry *)a)->name, ((const mx_zip_entry *)b)->name);
}

mx_status mx_zip_open(const char *label, const uint8_t *data, size_t size, mx_zip *out)
{
    memset(out, 0, sizeof *out);
    directory dir = {0};
    mx_status st = read_directory(label, data, size, &dir);
    if (st != MX_OK) return st;
    /* count <= cd_size / 46 <= size / 46: bounded by the archive itself. */
    size_t bytes;
    if (!mx_size_mul((size_t)dir.count, sizeof(mx_zip_entry), &bytes))
        return mx_error_set(MX_ERR_FORMAT, "%s: too many zip entries", label);
    mx_zip_entry *entries = malloc(bytes + 1);
    if (!entries) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %llu zip entries", label,
                                      (unsigned long long)dir.count);
    size_t p = (size_t)dir.cd_offset, end = (size_t)(dir.cd_offset + dir.cd_size);
    for (size_t i = 0; st == MX_OK && i < dir.count; i++) st = read_entry(label, data, size, end, &p, i, &entries[i]);
    if (st == MX_OK) {
        qsort(entries, (size_t)dir.count, sizeof *entries, compare_names);
        for (size_t i = 1; st == MX_OK && i < dir.count; i++)
            if (!strcmp(entries[i - 1].name, entries[i].name))
                st = mx_error_set(MX_ERR_FORMAT, "%s: zip entry '%s' appears twice", label, entries[i].name);
    }
    if (st != MX_OK) {
        free(entries);
        return st;
    }
    out->data = data;
    out->size = size;
    out->count = (size_t)dir.count;
    out->entries = entries;
    return MX_OK;
}

void mx_zip_free(mx_zip *zip)
{
    free(zip->entries);
    memset(zip, 0, sizeof *zip);
}

const mx_zip_entry *mx_zip_find(const mx_zip *zip, const char *name)
{
    if (!zip->count || strlen(name) > MX_ZIP_MAX_NAME) return NULL;
    mx_zip_entry key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return bsearch(&key, zip->entries, zip->count, sizeof key, compare_names);
}

mx_status mx_zip_entry_data(const mx_zip *zip, const mx_zip_entry *entry, const uint8_t **data)
{
    const uint8_t *p = zip->data + entry->data_offset;
    /* zlib's crc32 takes a uInt length: feed it in pieces. */
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t done = 0; done < entry->size;) {
        size_t n = entry->size - done > (1u << 30) ? (1u << 30) : entry->size - done;
        crc = crc32(crc, p + done, (uInt)n);
        done += n;
    }
    if ((uint32_t)crc != entry->crc32)
        return mx_error_set(MX_ERR_FORMAT, "zip entry '%s' fails its CRC-32 check (the file is damaged)", entry->name);
    *data = p;
    return MX_OK;
}

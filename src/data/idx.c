/* IDX files (the MNIST family's format): a big-endian header of a magic number
 * 0x000008<ndims> and ndims uint32 dimensions, then the uint8 payload. Read
 * through zlib so that raw and gzip files take the same path; zlib tells them
 * apart by content. Every way a file can be wrong gets its own message naming
 * the file, because a bad download is the common case and the user must be
 * able to tell a truncated file from a wrong one. The same parser also runs
 * over bytes already in memory (mx_idx_parse_*), which is what the fuzz
 * target drives. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "mixreg/data.h"

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAX_SIDE 65536u
#define IDX_MAX_PAYLOAD ((uint64_t)1 << 31)
/* gzread takes an unsigned and returns an int, so large payloads are read in
 * pieces that fit both. */
#define IDX_READ_CHUNK (1u << 30)
#define IDX_GZ_BUFFER (1u << 17)
/* The payload buffer starts at this size (or the payload's, if smaller) and
 * doubles as data arrives, so that a few bytes claiming a 2 GiB payload cost
 * a megabyte, not 2 GiB, before they are found to be truncated. */
#define IDX_FIRST_ALLOC ((size_t)1 << 20)

/* A file read through zlib (raw or gzip), or, when gz is NULL, raw bytes in
 * memory. */
typedef struct {
    gzFile gz;
    const unsigned char *mem;
    size_t mem_len, mem_pos;
    const char *path;
} idx_file;

static void idx_open_memory(idx_file *f, const char *name, const void *data, size_t len)
{
    f->gz = NULL;
    f->mem = data;
    f->mem_len = data ? len : 0;
    f->mem_pos = 0;
    f->path = name;
}

static mx_status idx_open(idx_file *f, const char *path)
{
    idx_open_memory(f, path, NULL, 0);
    /* open() rather than gzopen() so that errno is reliably the reason. */
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mx_error_set(MX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        return mx_error_set(MX_ERR_IO, "%s: is a directory, not an IDX file", path);
    }
    f->gz = gzdopen(fd, "rb");
    if (!f->gz) {
        close(fd);
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory opening the file", path);
    }
    gzbuffer(f->gz, IDX_GZ_BUFFER);
    return MX_OK;
}

static void idx_close(idx_file *f)
{
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* zlib prefixes its messages with the name it was opened under, which for
 * gzdopen is "<fd:N>"; the file's real path is already in ours. */
static const char *zlib_reason(const char *msg)
{
    const char *sep = strstr(msg, ": ");
    return !strncmp(msg, "<fd:", 4) && sep ? sep + 2 : msg;
}

/* Turns zlib's error state after a short read into a status. A plain end of
 * file (Z_OK) and a gzip stream that stops early (Z_BUF_ERROR) are both
 * truncation, which the caller reports with the byte counts it knows, so
 * they return MX_OK with no message. */
static mx_status idx_classify_short_read(const idx_file *f)
{
    int errnum = Z_OK;
    const char *msg = gzerror(f->gz, &errnum);
    switch (errnum) {
    case Z_OK:
    case Z_BUF_ERROR:
        return MX_OK;
    case Z_ERRNO:
        return mx_error_set(MX_ERR_IO, "%s: read error: %s", f->path, strerror(errno));
    case Z_MEM_ERROR:
        return mx_error_set(MX_ERR_NOMEM, "%s: out of memory decompressing", f->path);
    default:
        return mx_error_set(MX_ERR_FORMAT, "%s: corrupt gzip data (zlib: %s)", f->path, zlib_reason(msg));
    }
}

/* Reads up to len bytes; *got says how many arrived. A non-OK status is a
 * read or decompression error (message set); a short *got with MX_OK is a
 * clean truncation. */
static mx_status idx_read(idx_file *f, void *buf, size_t len, size_t *got)
{
    if (!f->gz) {
        size_t left = f->mem_len - f->mem_pos, k = len < left ? len : left;
        if (k) memcpy(buf, f->mem + f->mem_pos, k);
        f->mem_pos += k;
        *got = k;
        return MX_OK;
    }
    unsigned char *p = buf;
    z_off_t start = gztell(f->gz);
    size_t done = 0;
    while (done < len) {
        unsigned chunk = len - done > IDX_READ_CHUNK ? IDX_READ_CHUNK : (unsigned)(len - done);
        int r = gzread(f->gz, p + done, chunk);
        if (r > 0) done += (size_t)r;
        if (r < (int)chunk) break;
    }
    if (done < len) {
        /* On a broken gzip stream gzread can drop the count of what it
         * delivered in that call; its position still knows. */
        z_off_t now = gztell(f->gz);
        if (now >= start && (size_t)(now - start) > done) done = (size_t)(now - start);
        *got = done;
        return idx_classify_short_read(f);
    }
    *got = done;
    return MX_OK;
}

static uint32_t idx_be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static const char *idx_magic_name(uint32_t magic)
{
    switch (magic) {
    case IDX_MAGIC_IMAGES: return "IDX uint8 images";
    case IDX_MAGIC_LABELS: return "IDX uint8 labels";
    default: return (magic >> 16) == 0 ? "another IDX type" : "not an IDX file";
    }
}

/* Reads and checks the magic number, then the ndims big-endian dimensions. */
static mx_status idx_read_header(idx_file *f, uint32_t expected_magic, size_t ndims, uint32_t *dims)
{
    size_t header_len = 4 + 4 * ndims, got = 0;
    unsigned char header[4 + 4 * 3];
    mx_status st = idx_read(f, header, 4, &got);
    if (st != MX_OK) return st;
    if (got < 4)
        return mx_error_set(MX_ERR_FORMAT, "%s: truncated header: expected %zu bytes, got %zu%s", f->path, header_len,
                            got, got == 0 ? " (the file is empty)" : "");
    uint32_t magic = idx_be32(header);
    if (magic != expected_magic)
        return mx_error_set(MX_ERR_FORMAT, "%s: wrong magic number: expected 0x%08x (%s), found 0x%08x (%s)", f->path,
                            (unsigned)expected_magic, idx_magic_name(expected_magic), (unsigned)magic,
                            idx_magic_name(magic));
    st = idx_read(f, header + 4, header_len - 4, &got);
    if (st != MX_OK) return st;
    if (got < header_len - 4)
        return mx_error_set(MX_ERR_FORMAT, "%s: truncated header: expected %zu bytes, got %zu", f->path, header_len,
                            4 + got);
    for (size_t d = 0; d < ndims; d++) dims[d] = idx_be32(header + 4 + 4 * d);
    return MX_OK;
}

/* Reads exactly len (> 0) payload bytes into a new buffer *out, grown as
 * the bytes arrive (IDX_FIRST_ALLOC). */
static mx_status idx_read_payload(idx_file *f, size_t len, const char *what, uint8_t **out)
{
    *out = NULL;
    size_t cap = len < IDX_FIRST_ALLOC ? len : IDX_FIRST_ALLOC, done = 0;
    uint8_t *buf = NULL;
    for (;;) {
        uint8_t *grown = realloc(buf, cap);
        if (!grown) {
            free(buf);
            return mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %zu bytes of %s", f->path, len, what);
        }
        buf = grown;
        size_t got = 0;
        mx_status st = idx_read(f, buf + done, cap - done, &got);
        done += got;
        if (st == MX_OK && done < cap)
            st = mx_error_set(MX_ERR_FORMAT, "%s: truncated payload: expected %zu bytes of %s, got %zu", f->path,
                              len, what, done);
        if (st != MX_OK) {
            free(buf);
            return st;
        }
        if (done == len) break;
        cap = len - cap < cap ? len : 2 * cap;
    }
    *out = buf;
    return MX_OK;
}

/* The payload must end the file: extra bytes mean the header's counts do not
 * describe the file. Reading on also makes zlib check the gzip trailer (CRC
 * and length), which is where a corrupted stream often shows. */
static mx_status idx_expect_end(idx_file *f, size_t payload_len)
{
    if (!f->gz) {
        size_t left = f->mem_len - f->mem_pos;
        if (left > 0)
            return mx_error_set(MX_ERR_FORMAT, "%s: %zu bytes of trailing data after the %zu-byte payload", f->path,
                                left, payload_len);
        return MX_OK;
    }
    unsigned char scratch[4096];
    uint64_t extra = 0;
    for (;;) {
        int r = gzread(f->gz, scratch, sizeof scratch);
        if (r <= 0) break;
        extra += (uint64_t)r;
    }
    int errnum = Z_OK;
    const char *msg = gzerror(f->gz, &errnum);
    if (extra > 0)
        return mx_error_set(MX_ERR_FORMAT, "%s: %llu bytes of trailing data after the %zu-byte payload", f->path,
                            (unsigned long long)extra, payload_len);
    if (errnum == Z_BUF_ERROR)
        return mx_error_set(MX_ERR_FORMAT, "%s: truncated gzip stream (zlib: %s)", f->path, zlib_reason(msg));
    if (errnum != Z_OK) return idx_classify_short_read(f);
    return MX_OK;
}

static mx_status idx_check_image_dims(const char *path, const uint32_t *dims)
{
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || dims[1] > IDX_MAX_SIDE || dims[2] > IDX_MAX_SIDE)
        return mx_error_set(MX_ERR_FORMAT, "%s: absurd dimensions %u x %u x %u (each must be at least 1, rows and "
                            "columns at most %u)", path, (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2],
                            IDX_MAX_SIDE);
    uint64_t per_image = (uint64_t)dims[1] * dims[2];
    if (dims[0] > IDX_MAX_PAYLOAD / per_image)
        return mx_error_set(MX_ERR_FORMAT, "%s: absurd dimensions %u x %u x %u (more than %llu bytes in all)", path,
                            (unsigned)dims[0], (unsigned)dims[1], (unsigned)dims[2],
                            (unsigned long long)IDX_MAX_PAYLOAD);
    return MX_OK;
}

static mx_status idx_read_images_from(idx_file *f, uint8_t **pixels, size_t *n, size_t *rows, size_t *cols)
{
    uint32_t dims[3];
    mx_status st = idx_read_header(f, IDX_MAGIC_IMAGES, 3, dims);
    if (st == MX_OK) st = idx_check_image_dims(f->path, dims);
    if (st != MX_OK) return st;
    size_t len = (size_t)dims[0] * dims[1] * dims[2];
    uint8_t *buf = NULL;
    st = idx_read_payload(f, len, "pixels", &buf);
    if (st == MX_OK) st = idx_expect_end(f, len);
    if (st != MX_OK) {
        free(buf);
        return st;
    }
    *pixels = buf;
    *n = dims[0];
    *rows = dims[1];
    *cols = dims[2];
    return MX_OK;
}

mx_status mx_idx_read_images(const char *path, uint8_t **pixels, size_t *n, size_t *rows, size_t *cols)
{
    *pixels = NULL;
    idx_file f;
    mx_status st = idx_open(&f, path);
    if (st != MX_OK) return st;
    st = idx_read_images_from(&f, pixels, n, rows, cols);
    idx_close(&f);
    return st;
}

mx_status mx_idx_parse_images(const char *name, const void *data, size_t len, uint8_t **pixels, size_t *n,
                              size_t *rows, size_t *cols)
{
    *pixels = NULL;
    idx_file f;
    idx_open_memory(&f, name, data, len);
    return idx_read_images_from(&f, pixels, n, rows, cols);
}

static mx_status idx_read_labels_from(idx_file *f, int32_t **labels, size_t *n)
{
    uint32_t count;
    mx_status st = idx_read_header(f, IDX_MAGIC_LABELS, 1, &count);
    if (st != MX_OK) return st;
    if (count == 0 || count > IDX_MAX_PAYLOAD)
        return mx_error_set(MX_ERR_FORMAT, "%s: absurd label count %u (must be 1 to %llu)", f->path, (unsigned)count,
                            (unsigned long long)IDX_MAX_PAYLOAD);
    uint8_t *bytes = NULL;
    st = idx_read_payload(f, count, "labels", &bytes);
    if (st == MX_OK) st = idx_expect_end(f, count);
    int32_t *out = NULL;
    if (st == MX_OK) {
        out = malloc((size_t)count * sizeof *out);
        if (!out) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %u labels", f->path, (unsigned)count);
    }
    if (st == MX_OK)
        for (size_t i = 0; i < count; i++) out[i] = bytes[i];
    free(bytes);
    if (st != MX_OK) return st;
    *labels = out;
    *n = count;
    return MX_OK;
}

mx_status mx_idx_read_labels(const char *path, int32_t **labels, size_t *n)
{
    *labels = NULL;
    idx_file f;
    mx_status st = idx_open(&f, path);
    if (st != MX_OK) return st;
    st = idx_read_labels_from(&f, labels, n);
    idx_close(&f);
    return st;
}

mx_status mx_idx_parse_labels(const char *name, const void *data, size_t len, int32_t **labels, size_t *n)
{
    *labels = NULL;
    idx_file f;
    idx_open_memory(&f, name, data, len);
    return idx_read_labels_from(&f, labels, n);
}

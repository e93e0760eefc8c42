/* CIFAR-10 and CIFAR-100, binary version: each batch file is a bare sequence
 * of fixed-size records, a label byte (CIFAR-100: coarse then fine) followed
 * by 3072 pixel bytes, the R, G and B planes of a 32 x 32 image, each
 * row-major: already mx_dataset's NCHW layout once the label bytes are taken
 * out. There is no header, so the file size and the label bytes are the only
 * things to check; both are, with messages naming the file (and the record).
 *
 * A split's files are read whole with stdio into one allocation, which is then
 * compacted in place into the pixel array: record i's pixels move down to
 * i * 3072, never past bytes not yet read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mixreg/data.h"

#define CIFAR_PATH_MAX 4096
#define CIFAR_MAX_FILES 5
/* The same bound as IDX files: far above the real 150 MB training split. */
#define CIFAR_MAX_BYTES ((unsigned long long)1 << 31)

typedef struct {
    const char *title;      /* for messages */
    size_t label_bytes;     /* 1, or 2 for CIFAR-100 (coarse, fine) */
    size_t record;          /* label_bytes + 3072 */
    const char *spec;       /* the --data kind that reads it */
    const char *train[CIFAR_MAX_FILES];
    size_t train_files;
    const char *test;
    const char *tarball;    /* the download, and the directory it unpacks to */
    const char *unpacked;
    const char *python;     /* a file only the Python (pickle) version has */
} cifar_format;

static const cifar_format g_cifar10 = {
    "CIFAR-10", 1, 1 + MX_CIFAR_PIXELS, "cifar10",
    {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}, 5,
    "test_batch.bin", "cifar-10-binary.tar.gz", "cifar-10-batches-bin", "data_batch_1",
};

static const cifar_format g_cifar100 = {
    "CIFAR-100", 2, 2 + MX_CIFAR_PIXELS, "cifar100", {"train.bin"}, 1,
    "test.bin", "cifar-100-binary.tar.gz", "cifar-100-binary", "train",
};

static const cifar_format *cifar_format_of(int cifar100)
{
    return cifar100 ? &g_cifar100 : &g_cifar10;
}

static mx_status check_label_kind(const cifar_format *fmt, mx_label_kind kind)
{
    if (kind == MX_LABEL_FINE || (kind == MX_LABEL_COARSE && fmt == &g_cifar100)) return MX_OK;
    if (kind == MX_LABEL_COARSE)
        return mx_error_set(MX_ERR_ARG, "coarse labels need CIFAR-100 (%s has one label per image)", fmt->title);
    return mx_error_set(MX_ERR_ARG, "unknown label kind %d", (int)kind);
}

static size_t num_classes_of(const cifar_format *fmt, mx_label_kind kind)
{
    if (fmt == &g_cifar10) return 10;
    return kind == MX_LABEL_COARSE ? 20 : 100;
}

/* A batch of `size` bytes must hold at least one record and nothing else. */
static mx_status check_size(const char *name, const cifar_format *fmt, unsigned long long size, size_t *n)
{
    if (size == 0) return mx_error_set(MX_ERR_FORMAT, "%s: the file is empty (expected %s records)", name, fmt->title);
    if (size > CIFAR_MAX_BYTES)
        return mx_error_set(MX_ERR_FORMAT, "%s: %llu bytes is absurdly large for a %s batch (more than %llu)", name,
                            size, fmt->title, CIFAR_MAX_BYTES);
    size_t left = (size_t)(size % fmt->record);
    if (left) {
        /* The other variant's record size fitting exactly is the likely story. */
        const cifar_format *other = fmt == &g_cifar10 ? &g_cifar100 : &g_cifar10;
        int fits_other = size % other->record == 0;
        return mx_error_set(MX_ERR_FORMAT, "%s: truncated record: %llu bytes is %llu whole %zu-byte %s records and %zu "
                            "bytes left over%s%s%s", name, size, size / fmt->record, fmt->record, fmt->title, left,
                            fits_other ? " (but whole records of " : "", fits_other ? other->title : "",
                            fits_other ? ": wrong --data kind?)" : "");
    }
    *n = (size_t)(size / fmt->record);
    return MX_OK;
}

/* Checks the label bytes of the n records at src and moves each record's
 * pixels to pixels + i * 3072 and its chosen label to labels[i]. pixels may
 * alias src (pixels <= src): a record is read before it is overwritten, and
 * writing record i never reaches record i + 1. */
static mx_status decode_records(const char *name, const cifar_format *fmt, mx_label_kind kind, const uint8_t *src,
                                size_t n, uint8_t *pixels, int32_t *labels)
{
    size_t chosen = fmt->label_bytes == 2 && kind == MX_LABEL_FINE ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = src + i * fmt->record;
        if (fmt->label_bytes == 1 && r[0] >= 10)
            return mx_error_set(MX_ERR_FORMAT, "%s: record %zu (byte %zu): label %u is out of range for %s (0 to 9)",
                                name, i, i * fmt->record, (unsigned)r[0], fmt->title);
        if (fmt->label_bytes == 2 && r[0] >= 20)
            return mx_error_set(MX_ERR_FORMAT, "%s: record %zu (byte %zu): coarse label %u is out of range for %s "
                                "(0 to 19)", name, i, i * fmt->record, (unsigned)r[0], fmt->title);
        if (fmt->label_bytes == 2 && r[1] >= 100)
            return mx_error_set(MX_ERR_FORMAT, "%s: record %zu (byte %zu): fine label %u is out of range for %s "
                                "(0 to 99)", name, i, i * fmt->record + 1, (unsigned)r[1], fmt->title);
        labels[i] = r[chosen];
        memmove(pixels + i * MX_CIFAR_PIXELS, r + fmt->label_bytes, MX_CIFAR_PIXELS);
    }
    return MX_OK;
}

static void fill_dataset(mx_dataset *out, const cifar_format *fmt, mx_label_kind kind, size_t n, uint8_t *pixels,
                         int32_t *labels)
{
    out->n = n;
    out->channels = 3;
    out->height = MX_CIFAR_SIDE;
    out->width = MX_CIFAR_SIDE;
    out->num_classes = num_classes_of(fmt, kind);
    out->pixels = pixels;
    out->labels = labels;
}

mx_status mx_cifar_parse(const char *name, const void *data, size_t len, int cifar100, mx_label_kind kind,
                         mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    const cifar_format *fmt = cifar_format_of(cifar100);
    size_t n = 0;
    mx_status st = check_label_kind(fmt, kind);
    if (st == MX_OK) st = check_size(name, fmt, len, &n);
    if (st != MX_OK) return st;
    uint8_t *pixels = malloc(n * MX_CIFAR_PIXELS);
    int32_t *labels = malloc(n * sizeof *labels);
    if (!pixels || !labels) st = mx_error_set(MX_ERR_NOMEM, "%s: out of memory for %zu images", name, n);
    if (st == MX_OK) st = decode_records(name, fmt, kind, data, n, pixels, labels);
    if (st != MX_OK) {
        free(pixels);
        free(labels);
        return st;
    }
    fill_dataset(out, fmt, kind, n, pixels, labels);
    return MX_OK;
}

/* ---- reading a split's files ---------------------------------------------- */

static int path_exists(const char *dir, const char *name)
{
    char path[CIFAR_PATH_MAX];
    struct stat sb;
    return (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path && stat(path, &sb) == 0;
}

/* Why a batch file may be missing, as far as the directory tells: the other
 * variant, the Python version, or the tarball unpacked one level up. */
static void missing_file_hint(const char *dir, const cifar_format *fmt, char *hint, size_t cap)
{
    const cifar_format *other = fmt == &g_cifar10 ? &g_cifar100 : &g_cifar10;
    if (path_exists(dir, other->test))
        snprintf(hint, cap, " (the directory holds %s: use %s:DIR)", other->title, other->spec);
    else if (path_exists(dir, fmt->unpacked))
        snprintf(hint, cap, " (the files are in %s/%s)", dir, fmt->unpacked);
    else if (path_exists(dir, fmt->python))
        snprintf(hint, cap, " (that is the Python version of %s; mixreg reads the binary version, %s)", fmt->title,
                 fmt->tarball);
    else
        snprintf(hint, cap, " (%s:DIR wants the binary version of %s, as %s unpacks to %s/)", fmt->spec, fmt->title,
                 fmt->tarball, fmt->unpacked);
}

typedef struct {
    char path[CIFAR_PATH_MAX];
    FILE *f;
    size_t size, n;
} cifar_file;

static mx_status open_batch(const char *dir, const cifar_format *fmt, const char *name, cifar_file *cf)
{
    if ((size_t)snprintf(cf->path, sizeof cf->path, "%s/%s", dir, name) >= sizeof cf->path)
        return mx_error_set(MX_ERR_ARG, "data directory %s: path too long", dir);
    cf->n = cf->size = 0;
    cf->f = fopen(cf->path, "rb");
    if (!cf->f) {
        int err = errno;
        char hint[CIFAR_PATH_MAX + 128] = "";
        if (err == ENOENT) missing_file_hint(dir, fmt, hint, sizeof hint);
        return mx_error_set(MX_ERR_IO, "%s: cannot open: %s%s", cf->path, strerror(err), hint);
    }
    struct stat sb;
    if (fstat(fileno(cf->f), &sb) != 0)
        return mx_error_set(MX_ERR_IO, "%s: cannot stat: %s", cf->path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return mx_error_set(MX_ERR_IO, "%s: not a regular file", cf->path);
    mx_status st = check_size(cf->path, fmt, (unsigned long long)sb.st_size, &cf->n);
    cf->size = cf->n * fmt->record;
    return st;
}

static mx_status read_batch(cifar_file *cf, uint8_t *dst)
{
    size_t got = fread(dst, 1, cf->size, cf->f);
    if (got == cf->size) return MX_OK;
    if (ferror(cf->f)) return mx_error_set(MX_ERR_IO, "%s: read error: %s", cf->path, strerror(errno));
    return mx_error_set(MX_ERR_FORMAT, "%s: truncated while being read: expected %zu bytes, got %zu", cf->path,
                        cf->size, got);
}

static mx_status load_files(const char *dir, const cifar_format *fmt, mx_label_kind kind, const char *const *names,
                            size_t count, mx_dataset *out)
{
    cifar_file files[CIFAR_MAX_FILES];
    size_t opened = 0, n = 0, bytes = 0;
    mx_status st = MX_OK;
    for (; opened < count && st == MX_OK; opened++) {
        files[opened].f = NULL;
        st = open_batch(dir, fmt, names[opened], &files[opened]);
        if (st == MX_OK) {
            n += files[opened].n;
            bytes += files[opened].size;
            if (bytes > CIFAR_MAX_BYTES)
                st = mx_error_set(MX_ERR_FORMAT, "data directory %s: more than %llu bytes of %s batches", dir,
                                  CIFAR_MAX_BYTES, fmt->title);
        }
    }
    uint8_t *buf = NULL;
    int32_t *labels = NULL;
    if (st == MX_OK) {
        buf = malloc(bytes);
        labels = malloc(n * sizeof *labels);
        if (!buf || !labels)
            st = mx_error_set(MX_ERR_NOMEM, "data directory %s: out of memory for %zu bytes of %s", dir, bytes,
                              fmt->title);
    }
    /* Read every file, then decode each in place: its records start at or
     * after where its pixels go (file offset k * record >= k * 3072). */
    for (size_t i = 0, off = 0; st == MX_OK && i < count; off += files[i].size, i++)
        st = read_batch(&files[i], buf + off);
    for (size_t i = 0, off = 0, first = 0; st == MX_OK && i < count; off += files[i].size, first += files[i].n, i++)
        st = decode_records(files[i].path, fmt, kind, buf + off, files[i].n, buf + first * MX_CIFAR_PIXELS,
                            labels + first);
    for (size_t i = 0; i < opened; i++)
        if (files[i].f) fclose(files[i].f);
    if (st != MX_OK) {
        free(buf);
        free(labels);
        return st;
    }
    uint8_t *pixels = realloc(buf, n * MX_CIFAR_PIXELS); /* shrinking: keep buf if it fails */
    fill_dataset(out, fmt, kind, n, pixels ? pixels : buf, labels);
    return MX_OK;
}

mx_status mx_dataset_load_cifar(const char *dir, int cifar100, mx_label_kind kind, const char *split,
                                mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    const cifar_format *fmt = cifar_format_of(cifar100);
    mx_status st = check_label_kind(fmt, kind);
    if (st != MX_OK) return st;
    const char *const *names;
    size_t count;
    if (!strcmp(split, "train")) {
        names = fmt->train;
        count = fmt->train_files;
    } else if (!strcmp(split, "test")) {
        names = &fmt->test;
        count = 1;
    } else {
        return mx_error_set(MX_ERR_ARG, "unknown data split '%s' (expected train or test)", split);
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) return mx_error_set(MX_ERR_IO, "data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return mx_error_set(MX_ERR_IO, "data directory %s: not a directory", dir);
    return load_files(dir, fmt, kind, names, count, out);
}

/* Per-sample predictions as CSV or .npy, streamed through stdio into a
 * temporary file that is renamed over the target at the end (fsync'd first),
 * so a large evaluation needs no second copy of the data in memory. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/predictions.h"

#define NPY_ALIGN 64
#define NPY_MAX_EXACT ((size_t)1 << 24) /* integers float32 holds exactly */

typedef enum { FORMAT_NONE, FORMAT_CSV, FORMAT_NPY } pred_format;

static pred_format format_of(const char *path)
{
    if (mx_file_has_extension(path, ".csv")) return FORMAT_CSV;
    if (mx_file_has_extension(path, ".npy")) return FORMAT_NPY;
    return FORMAT_NONE;
}

static int write_csv(FILE *f, const mx_prediction_block *blocks, size_t count, const int32_t *labels, size_t n,
                     size_t classes)
{
    int bad = fputs("index,label", f) < 0;
    for (size_t b = 0; b < count; b++)
        for (size_t c = 0; c < classes && !bad; c++) bad = fprintf(f, ",%s%zu", blocks[b].name, c) < 0;
    bad |= fputc('\n', f) == EOF;
    for (size_t i = 0; i < n && !bad; i++) {
        bad = fprintf(f, "%zu,%" PRId32, i, labels[i]) < 0;
        for (size_t b = 0; b < count; b++)
            for (size_t c = 0; c < classes && !bad; c++)
                bad = fprintf(f, ",%.7g", (double)blocks[b].values[i * classes + c]) < 0;
        bad |= fputc('\n', f) == EOF;
    }
    return !bad;
}

static void put_f32_le(unsigned char *dst, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    dst[0] = (unsigned char)(u & 0xff);
    dst[1] = (unsigned char)((u >> 8) & 0xff);
    dst[2] = (unsigned char)((u >> 16) & 0xff);
    dst[3] = (unsigned char)(u >> 24);
}

static int write_npy(FILE *f, const mx_prediction_block *blocks, size_t count, const int32_t *labels, size_t n,
                     size_t classes)
{
    char dict[256];
    size_t columns = 2 + count * classes;
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", n, columns);
    if (len < 0 || (size_t)len >= sizeof dict) return 0;
    /* magic (6) + version (2) + header length (2) + dict + spaces + '\n' */
    size_t total = 10 + (size_t)len + 1;
    total = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t header_len = total - 10;
    unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(header_len & 0xff),
                                  (unsigned char)(header_len >> 8)};
    int bad = fwrite(preamble, 1, sizeof preamble, f) != sizeof preamble;
    bad |= fwrite(dict, 1, (size_t)len, f) != (size_t)len;
    for (size_t i = 10 + (size_t)len; i + 1 < total && !bad; i++) bad = fputc(' ', f) == EOF;
    bad |= fputc('\n', f) == EOF;
    size_t row_bytes = columns * 4;
    unsigned char *row = malloc(row_bytes);
    if (!row) return 0;
    for (size_t i = 0; i < n && !bad; i++) {
        put_f32_le(row, (float)i);
        put_f32_le(row + 4, (float)labels[i]);
        for (size_t b = 0; b < count; b++)
            for (size_t c = 0; c < classes; c++)
                put_f32_le(row + 8 + 4 * (b * classes + c), blocks[b].values[i * classes + c]);
        bad = fwrite(row, 1, row_bytes, f) != row_bytes;
    }
    free(row);
    return !bad;
}

mx_status mx_predictions_write(const char *path, const float *probs, const int32_t *labels, size_t n,
                               size_t num_classes)
{
    mx_prediction_block block = {"p", probs};
    return mx_predictions_write_blocks(path, &block, 1, labels, n, num_classes);
}

mx_status mx_predictions_write_blocks(const char *path, const mx_prediction_block *blocks, size_t count,
                                      const int32_t *labels, size_t n, size_t num_classes)
{
    if (!path) return mx_error_set(MX_ERR_ARG, "predictions: no file name");
    if (count == 0 || count > MX_PREDICTION_MAX_BLOCKS)
        return mx_error_set(MX_ERR_ARG, "%s: %zu blocks of columns (1..%d)", path, count, MX_PREDICTION_MAX_BLOCKS);
    for (size_t b = 0; b < count; b++) {
        const char *name = blocks[b].name;
        size_t len = name ? strlen(name) : 0;
        /* A column name CSV and pandas take as it is: letters, digits, '_'. */
        int plain = len > 0 && len < 32;
        for (size_t k = 0; k < len && plain; k++) plain = isalnum((unsigned char)name[k]) || name[k] == '_';
        if (!plain) return mx_error_set(MX_ERR_ARG, "%s: bad column name '%s'", path, name ? name : "");
    }
    pred_format format = format_of(path);
    if (format == FORMAT_NONE)
        return mx_error_set(MX_ERR_ARG, "%s: unknown predictions format (the name must end in .csv or .npy)", path);
    if (num_classes == 0) return mx_error_set(MX_ERR_ARG, "%s: the number of classes must be at least 1", path);
    if (format == FORMAT_NPY && n > NPY_MAX_EXACT)
        return mx_error_set(MX_ERR_ARG, "%s: %zu samples, more than the %zu whose index float32 holds exactly", path, n,
                            NPY_MAX_EXACT);
    char tmp[4096];
    int fd;
    mx_status st = mx_file_create_temp(path, tmp, sizeof tmp, &fd);
    if (st != MX_OK) return st;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        unlink(tmp);
        return mx_error_set(MX_ERR_IO, "%s: cannot write: %s", tmp, strerror(err));
    }
    int ok = format == FORMAT_CSV ? write_csv(f, blocks, count, labels, n, num_classes)
                                  : write_npy(f, blocks, count, labels, n, num_classes);
    int err = errno;
    if (ok && fflush(f) != 0) ok = 0, err = errno;
    if (ok && fsync(fileno(f)) != 0) ok = 0, err = errno;
    if (fclose(f) != 0 && ok) ok = 0, err = errno;
    if (!ok) {
        unlink(tmp);
        return mx_error_set(MX_ERR_IO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    }
    return mx_file_rename_into_place(tmp, path);
}

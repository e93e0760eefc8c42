/* libFuzzer target for the IDX readers: the bytes are read as an image file
 * and as a label file three ways, and none may crash or read out of bounds
 * (ASan and UBSan watch):
 *   - in memory (mx_idx_parse_*);
 *   - gzip-wrapped in a file (mx_idx_read_*), which must give exactly what
 *     the in-memory parse gave: same status, same message, same data;
 *   - as they are in a file, where bytes starting with the gzip magic drive
 *     zlib's error paths (and other bytes must again match the parse).
 * One temporary file per process, rewritten for each input. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "mixreg/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64], g_path[96];
static int g_fd = -1;

static void cleanup(void)
{
    if (g_fd >= 0) close(g_fd);
    unlink(g_path);
    rmdir(g_dir);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_idx-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_path, sizeof g_path, "%s/input", g_dir);
    g_fd = open(g_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (g_fd < 0) abort();
    atexit(cleanup);
}

static void put_file(const void *data, size_t size)
{
    if (ftruncate(g_fd, 0) != 0 || (size && pwrite(g_fd, data, size, 0) != (ssize_t)size)) abort();
}

/* A gzip member holding the bytes (malloc'd, *len set). */
static uint8_t *gzip_wrap(const uint8_t *data, size_t size, size_t *len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)size) + 32;
    uint8_t *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

typedef struct {
    mx_status st;
    char msg[512];
    uint8_t *pixels;
    int32_t *labels;
    size_t n, rows, cols;
} outcome;

static void record(outcome *o, mx_status st)
{
    o->st = st;
    snprintf(o->msg, sizeof o->msg, "%s", st == MX_OK ? "" : mx_error_message());
    /* Touch every byte delivered, so a wrong length shows under ASan. */
    volatile uint64_t sink = 0;
    if (st == MX_OK && o->pixels)
        for (size_t i = 0; i < o->n * o->rows * o->cols; i++) sink += o->pixels[i];
    if (st == MX_OK && o->labels)
        for (size_t i = 0; i < o->n; i++) sink += (uint64_t)o->labels[i];
    (void)sink;
}

static void parse_memory(const uint8_t *data, size_t size, outcome *img, outcome *lab)
{
    memset(img, 0, sizeof *img);
    memset(lab, 0, sizeof *lab);
    mx_error_clear();
    record(img, mx_idx_parse_images(g_path, data, size, &img->pixels, &img->n, &img->rows, &img->cols));
    mx_error_clear();
    record(lab, mx_idx_parse_labels(g_path, data, size, &lab->labels, &lab->n));
}

static void read_file(outcome *img, outcome *lab)
{
    memset(img, 0, sizeof *img);
    memset(lab, 0, sizeof *lab);
    mx_error_clear();
    record(img, mx_idx_read_images(g_path, &img->pixels, &img->n, &img->rows, &img->cols));
    mx_error_clear();
    record(lab, mx_idx_read_labels(g_path, &lab->labels, &lab->n));
}

static void same(const outcome *a, const outcome *b, const char *what)
{
    int ok = a->st == b->st && !strcmp(a->msg, b->msg);
    if (ok && a->st == MX_OK) {
        ok = a->n == b->n && a->rows == b->rows && a->cols == b->cols;
        if (ok && a->pixels) ok = !memcmp(a->pixels, b->pixels, a->n * a->rows * a->cols);
        if (ok && a->labels) ok = !memcmp(a->labels, b->labels, a->n * sizeof *a->labels);
    }
    if (!ok) {
        fprintf(stderr, "%s disagrees with the in-memory parse:\n  memory: %d %s\n  file:   %d %s\n", what, a->st,
                a->msg, b->st, b->msg);
        abort();
    }
}

static void release(outcome *o)
{
    free(o->pixels);
    free(o->labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) setup();
    outcome mem_img, mem_lab, file_img, file_lab;
    parse_memory(data, size, &mem_img, &mem_lab);

    size_t gz_len = 0;
    uint8_t *gz = gzip_wrap(data, size, &gz_len);
    put_file(gz, gz_len);
    free(gz);
    read_file(&file_img, &file_lab);
    same(&mem_img, &file_img, "gzip-wrapped file, images");
    same(&mem_lab, &file_lab, "gzip-wrapped file, labels");
    release(&file_img);
    release(&file_lab);

    put_file(data, size);
    read_file(&file_img, &file_lab);
    if (!(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
        same(&mem_img, &file_img, "raw file, images");
        same(&mem_lab, &file_lab, "raw file, labels");
    }
    release(&file_img);
    release(&file_lab);
    release(&mem_img);
    release(&mem_lab);
    return 0;
}

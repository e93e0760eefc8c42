/* libFuzzer target for the CIFAR-10/100 batch reader: the bytes are decoded
 * in memory (mx_cifar_parse) as CIFAR-10, CIFAR-100 fine and CIFAR-100 coarse,
 * and read from a directory (mx_dataset_load_cifar) where test_batch.bin
 * holds them and test.bin and data_batch_1..5.bin are links to it. Nothing
 * may crash (ASan and UBSan watch), and the file reader must agree with the
 * in-memory one: same status, same message, same data (the training split
 * being five copies of it). One temporary directory per process. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TRAIN_FILES 5

static char g_dir[64], g_paths[TRAIN_FILES + 2][96];
static int g_fd = -1;

static const char *path_of(const char *name, int k)
{
    snprintf(g_paths[k], sizeof g_paths[k], "%s/%s", g_dir, name);
    return g_paths[k];
}

static void cleanup(void)
{
    if (g_fd >= 0) close(g_fd);
    for (int k = 0; k < TRAIN_FILES + 2; k++) unlink(g_paths[k]);
    rmdir(g_dir);
}

static void setup(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_cifar-XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    g_fd = open(path_of("test_batch.bin", 0), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (g_fd < 0) abort();
    atexit(cleanup);
    if (symlink("test_batch.bin", path_of("test.bin", 1)) != 0) abort();
    for (int k = 1; k <= TRAIN_FILES; k++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", k);
        if (symlink("test_batch.bin", path_of(name, k + 1)) != 0) abort();
    }
}

typedef struct {
    mx_status st;
    char msg[512];
    mx_dataset ds;
} outcome;

static void run(outcome *o, mx_status st)
{
    o->st = st;
    snprintf(o->msg, sizeof o->msg, "%s", st == MX_OK ? "" : mx_error_message());
    if (st != MX_OK) return;
    /* Touch every byte delivered, so a wrong length shows under ASan. */
    volatile uint64_t sink = 0;
    for (size_t i = 0; i < o->ds.n * o->ds.channels * o->ds.height * o->ds.width; i++) sink += o->ds.pixels[i];
    for (size_t i = 0; i < o->ds.n; i++) {
        if (o->ds.labels[i] < 0 || (size_t)o->ds.labels[i] >= o->ds.num_classes) {
            fprintf(stderr, "label %d of sample %zu outside 0..%zu\n", o->ds.labels[i], i, o->ds.num_classes - 1);
            abort();
        }
    }
    (void)sink;
}

/* The file reader's outcome b against the in-memory a; copies > 1 when b
 * read that many links to the same file. */
static void same(const outcome *a, const outcome *b, size_t copies, const char *what)
{
    int ok = a->st == b->st && !strcmp(a->msg, b->msg);
    if (ok && a->st == MX_OK) {
        const mx_dataset *x = &a->ds, *y = &b->ds;
        ok = y->n == copies * x->n && x->channels == y->channels && x->height == y->height &&
             x->width == y->width && x->num_classes == y->num_classes;
        size_t sample = x->channels * x->height * x->width;
        for (size_t c = 0; ok && c < copies; c++)
            ok = !memcmp(x->pixels, y->pixels + c * x->n * sample, x->n * sample) &&
                 !memcmp(x->labels, y->labels + c * x->n, x->n * sizeof *x->labels);
    }
    if (!ok) {
        fprintf(stderr, "%s disagrees with the in-memory parse:\n  memory: %d %s\n  file:   %d %s\n", what, a->st,
                a->msg, b->st, b->msg);
        abort();
    }
}

static void check(const uint8_t *data, size_t size, int cifar100, mx_label_kind kind, const char *name,
                  const char *train_name)
{
    outcome mem, file;
    mx_error_clear();
    run(&mem, mx_cifar_parse(name, data, size, cifar100, kind, &mem.ds));
    mx_error_clear();
    run(&file, mx_dataset_load_cifar(g_dir, cifar100, kind, "test", &file.ds));
    same(&mem, &file, 1, "test split");
    mx_dataset_free(&file.ds);
    if (train_name) {
        /* Messages name the first link, where any error shows first. */
        mx_dataset_free(&mem.ds);
        mx_error_clear();
        run(&mem, mx_cifar_parse(train_name, data, size, cifar100, kind, &mem.ds));
        mx_error_clear();
        run(&file, mx_dataset_load_cifar(g_dir, cifar100, kind, "train", &file.ds));
        same(&mem, &file, TRAIN_FILES, "train split");
        mx_dataset_free(&file.ds);
    }
    mx_dataset_free(&mem.ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_fd < 0) setup();
    if (ftruncate(g_fd, 0) != 0 || (size && pwrite(g_fd, data, size, 0) != (ssize_t)size)) abort();
    check(data, size, 0, MX_LABEL_FINE, g_paths[0], g_paths[2]);
    check(data, size, 1, MX_LABEL_FINE, g_paths[1], NULL);
    check(data, size, 1, MX_LABEL_COARSE, g_paths[1], NULL);
    return 0;
}

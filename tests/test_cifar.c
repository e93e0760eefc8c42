/* CIFAR-10/100 binary batches: small fixtures written here (a few records a
 * file), read back exactly through mx_dataset_load_cifar, mx_data_load and the
 * in-memory mx_cifar_parse, and every way a batch file can be wrong; plus the
 * in-memory IDX parser the fuzz target drives. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "test_tmp.h"
#include "mixreg/data.h"
#include "mixreg/source.h"

#define PIX MX_CIFAR_PIXELS
#define PLANE (MX_CIFAR_SIDE * MX_CIFAR_SIDE)

/* A new directory under the temp root, its path in a rotating static buffer. */
static const char *make_dir(const char *name)
{
    static char bufs[4][8192];
    static int next = 0;
    char *p = bufs[next++ % 4];
    snprintf(p, sizeof bufs[0], "%s/%s", g_tmp, name);
    if (mkdir(p, 0755) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
        exit(1);
    }
    return p;
}

static const char *join(const char *dir, const char *name)
{
    static char bufs[4][8192];
    static int next = 0;
    char *p = bufs[next++ % 4];
    snprintf(p, sizeof bufs[0], "%s/%s", dir, name);
    return p;
}

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* ---- building batches ---------------------------------------------------- */

/* Pixel p (0..3071) of sample `id`: distinct across samples, channels and
 * positions, so any misplaced byte shows. */
static uint8_t pixel_of(size_t id, size_t p)
{
    return (uint8_t)(id * 37 + p * 7 + (p / PLANE) * 101 + (p >> 8));
}

#define MAX_RECORDS 8
static uint8_t g_batch[MAX_RECORDS * (2 + PIX) + 512];

/* Records for samples first..first+n: label_bytes label bytes from lb (per
 * record), then the pixels. Returns the length. */
static size_t make_batch(size_t first, size_t n, size_t label_bytes, const uint8_t *lb)
{
    size_t rec = label_bytes + PIX, len = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = g_batch + i * rec;
        memcpy(r, lb + i * label_bytes, label_bytes);
        for (size_t p = 0; p < PIX; p++) r[label_bytes + p] = pixel_of(first + i, p);
        len += rec;
    }
    return len;
}

static int pixels_match(const mx_dataset *ds, size_t first_id)
{
    for (size_t i = 0; i < ds->n; i++)
        for (size_t p = 0; p < PIX; p++)
            if (ds->pixels[i * PIX + p] != pixel_of(first_id + i, p)) {
                fprintf(stderr, "sample %zu pixel %zu: %u, expected %u\n", i, p, ds->pixels[i * PIX + p],
                        pixel_of(first_id + i, p));
                return 0;
            }
    return 1;
}

static int is_cifar_shape(const mx_dataset *ds)
{
    return ds->channels == 3 && ds->height == 32 && ds->width == 32;
}

/* CIFAR-10: batch k (1..5) holds k records, samples numbered on across the
 * batches (15 in all), label = sample % 10; the test batch 3 records from 100. */
#define C10_TRAIN 15
static char g_c10[4096];

static void write_c10_batch(const char *dir, int k)
{
    char name[64];
    size_t first = (size_t)(k - 1) * k / 2;
    uint8_t lb[MAX_RECORDS];
    for (int i = 0; i < k; i++) lb[i] = (uint8_t)((first + (size_t)i) % 10);
    snprintf(name, sizeof name, "data_batch_%d.bin", k);
    write_raw(join(dir, name), g_batch, make_batch(first, (size_t)k, 1, lb));
}

static void write_c10(const char *dir)
{
    for (int k = 1; k <= 5; k++) write_c10_batch(dir, k);
    const uint8_t lb[3] = {9, 0, 4};
    write_raw(join(dir, "test_batch.bin"), g_batch, make_batch(100, 3, 1, lb));
}

/* CIFAR-100: train 4 records (coarse, fine), test 2, from sample 200 / 300. */
static const uint8_t g_c100_train_lb[8] = {19, 99, 0, 0, 7, 42, 3, 13};
static const uint8_t g_c100_test_lb[4] = {11, 55, 2, 98};
static char g_c100[4096];

static void write_c100(const char *dir)
{
    write_raw(join(dir, "train.bin"), g_batch, make_batch(200, 4, 2, g_c100_train_lb));
    write_raw(join(dir, "test.bin"), g_batch, make_batch(300, 2, 2, g_c100_test_lb));
}

/* ---- reading back --------------------------------------------------------- */

static void test_cifar10(void)
{
    mx_dataset ds;
    CHECK_OK(mx_dataset_load_cifar(g_c10, 0, MX_LABEL_FINE, "train", &ds));
    CHECK(ds.n == C10_TRAIN && is_cifar_shape(&ds) && ds.num_classes == 10);
    CHECK(ds.pixels && pixels_match(&ds, 0));
    int labels_ok = ds.labels != NULL;
    for (size_t i = 0; labels_ok && i < ds.n; i++) labels_ok = ds.labels[i] == (int32_t)(i % 10);
    CHECK(labels_ok);
    mx_dataset_free(&ds);

    CHECK_OK(mx_dataset_load_cifar(g_c10, 0, MX_LABEL_FINE, "test", &ds));
    CHECK(ds.n == 3 && is_cifar_shape(&ds) && ds.num_classes == 10);
    CHECK(ds.pixels && pixels_match(&ds, 100));
    CHECK(ds.labels && ds.labels[0] == 9 && ds.labels[1] == 0 && ds.labels[2] == 4);
    mx_dataset_free(&ds);

    /* Through --data: the same data, and num_classes from the format even
     * though the test split's labels stop at 9 by chance only. */
    char spec[4200];
    snprintf(spec, sizeof spec, "cifar10:%s", g_c10);
    CHECK_OK(mx_data_load(spec, "train", &ds));
    CHECK(ds.n == C10_TRAIN && pixels_match(&ds, 0) && ds.labels && ds.labels[14] == 4);
    mx_dataset_free(&ds);
    CHECK_OK(mx_data_load_labels(spec, "test", MX_LABEL_FINE, &ds));
    CHECK(ds.n == 3 && ds.num_classes == 10 && pixels_match(&ds, 100));
    mx_dataset_free(&ds);
    char dir[4096];
    CHECK_OK(mx_data_resolve(spec, dir, sizeof dir));
    CHECK(!strcmp(dir, g_c10));
}

/* Labels far from filling the class range still give the format's count. */
static void test_fixed_num_classes(void)
{
    const char *dir = make_dir("c10-few-labels");
    uint8_t lb[2] = {0, 1};
    write_raw(join(dir, "test_batch.bin"), g_batch, make_batch(0, 2, 1, lb));
    mx_dataset ds;
    CHECK_OK(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "test", &ds));
    CHECK(ds.n == 2 && ds.num_classes == 10);
    mx_dataset_free(&ds);
}

/* The R, G and B planes are channels 0, 1 and 2, each row-major. */
static void test_channel_order(void)
{
    const char *dir = make_dir("c10-planes");
    static uint8_t rec[1 + PIX];
    rec[0] = 3;
    for (size_t p = 0; p < PLANE; p++) {
        rec[1 + p] = 255;             /* R */
        rec[1 + PLANE + p] = 0;       /* G */
        rec[1 + 2 * PLANE + p] = 51;  /* B */
    }
    rec[1 + 2 * PLANE + 32 + 5] = 102; /* B, row 1, column 5 */
    write_raw(join(dir, "test_batch.bin"), rec, sizeof rec);
    mx_dataset ds;
    CHECK_OK(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "test", &ds));
    CHECK(ds.n == 1 && ds.labels && ds.labels[0] == 3);
    if (ds.n == 1) {
        float mean[3], std[3];
        mx_dataset_channel_stats(&ds, mean, std);
        CHECK_NEAR(mean[0], 1.0, 1e-6);
        CHECK_NEAR(mean[1], 0.0, 1e-6);
        CHECK_NEAR(mean[2], (51.0 * 1023 + 102) / 1024 / 255, 1e-6);
        CHECK(ds.pixels[(2 * 32 + 1) * 32 + 5] == 102);
    }
    mx_dataset_free(&ds);
}

static void test_cifar100(void)
{
    mx_dataset ds;
    CHECK_OK(mx_dataset_load_cifar(g_c100, 1, MX_LABEL_FINE, "train", &ds));
    CHECK(ds.n == 4 && is_cifar_shape(&ds) && ds.num_classes == 100);
    CHECK(ds.pixels && pixels_match(&ds, 200));
    CHECK(ds.labels && ds.labels[0] == 99 && ds.labels[1] == 0 && ds.labels[2] == 42 && ds.labels[3] == 13);
    mx_dataset_free(&ds);

    CHECK_OK(mx_dataset_load_cifar(g_c100, 1, MX_LABEL_COARSE, "train", &ds));
    CHECK(ds.n == 4 && is_cifar_shape(&ds) && ds.num_classes == 20);
    CHECK(ds.pixels && pixels_match(&ds, 200));
    CHECK(ds.labels && ds.labels[0] == 19 && ds.labels[1] == 0 && ds.labels[2] == 7 && ds.labels[3] == 3);
    mx_dataset_free(&ds);

    char spec[4200];
    snprintf(spec, sizeof spec, "cifar100:%s", g_c100);
    CHECK_OK(mx_data_load(spec, "test", &ds));
    CHECK(ds.n == 2 && ds.num_classes == 100 && pixels_match(&ds, 300));
    CHECK(ds.labels && ds.labels[0] == 55 && ds.labels[1] == 98);
    mx_dataset_free(&ds);
    CHECK_OK(mx_data_load_labels(spec, "test", MX_LABEL_COARSE, &ds));
    CHECK(ds.n == 2 && ds.num_classes == 20 && pixels_match(&ds, 300));
    CHECK(ds.labels && ds.labels[0] == 11 && ds.labels[1] == 2);
    mx_dataset_free(&ds);
}

/* mx_cifar_parse on the bytes of a file gives what loading the file gives. */
static void test_parse_memory(void)
{
    size_t len = make_batch(200, 4, 2, g_c100_train_lb);
    mx_dataset ds;
    CHECK_OK(mx_cifar_parse("mem", g_batch, len, 1, MX_LABEL_COARSE, &ds));
    CHECK(ds.n == 4 && is_cifar_shape(&ds) && ds.num_classes == 20 && pixels_match(&ds, 200));
    CHECK(ds.labels && ds.labels[0] == 19 && ds.labels[3] == 3);
    mx_dataset_free(&ds);
    CHECK_FAILS(mx_cifar_parse("mem", g_batch, len - 1, 1, MX_LABEL_FINE, &ds), MX_ERR_FORMAT,
                "mem: truncated record");
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
    CHECK_FAILS(mx_cifar_parse("mem", g_batch, 0, 0, MX_LABEL_FINE, &ds), MX_ERR_FORMAT, "empty");
    CHECK_FAILS(mx_cifar_parse("mem", g_batch, len, 0, MX_LABEL_COARSE, &ds), MX_ERR_ARG, "coarse");
    /* Read as CIFAR-10 the same bytes are 4 x 3074 = 4 x 3073 + 4 bytes. */
    CHECK_FAILS(mx_cifar_parse("mem", g_batch, len, 0, MX_LABEL_FINE, &ds), MX_ERR_FORMAT, "4 bytes left over");
}

/* ---- broken files ----------------------------------------------------------- */

static void test_missing_files(void)
{
    mx_dataset ds;
    /* One training batch of five missing. */
    const char *dir = make_dir("c10-missing");
    write_c10(dir);
    unlink(join(dir, "data_batch_3.bin"));
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_IO, "data_batch_3.bin");
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_IO, strerror(ENOENT));
    CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
    CHECK_OK(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "test", &ds));
    mx_dataset_free(&ds);

    /* A CIFAR-10 directory read as CIFAR-100, and the other way round. */
    CHECK_FAILS(mx_dataset_load_cifar(g_c10, 1, MX_LABEL_FINE, "train", &ds), MX_ERR_IO, "train.bin");
    CHECK_FAILS(mx_dataset_load_cifar(g_c10, 1, MX_LABEL_FINE, "train", &ds), MX_ERR_IO, "use cifar10:DIR");
    CHECK_FAILS(mx_dataset_load_cifar(g_c100, 0, MX_LABEL_FINE, "test", &ds), MX_ERR_IO, "use cifar100:DIR");

    /* The tarball unpacked into DIR: the files are one level down. */
    const char *outer = make_dir("c10-outer");
    make_dir("c10-outer/cifar-10-batches-bin");
    CHECK_FAILS(mx_dataset_load_cifar(outer, 0, MX_LABEL_FINE, "test", &ds), MX_ERR_IO, "cifar-10-batches-bin");

    /* No such directory, a file for a directory, a directory for a batch. */
    CHECK_FAILS(mx_dataset_load_cifar(join(g_tmp, "no-such-dir"), 0, MX_LABEL_FINE, "test", &ds), MX_ERR_IO,
                "no-such-dir");
    CHECK_FAILS(mx_dataset_load_cifar(join(g_c10, "test_batch.bin"), 0, MX_LABEL_FINE, "test", &ds), MX_ERR_IO,
                "not a directory");
    const char *dir_batch = make_dir("c10-dir-batch");
    make_dir("c10-dir-batch/test_batch.bin");
    CHECK_FAILS(mx_dataset_load_cifar(dir_batch, 0, MX_LABEL_FINE, "test", &ds), MX_ERR_IO, "not a regular file");
}

static void test_bad_sizes(void)
{
    mx_dataset ds;
    /* Batch 2 one record and 100 bytes long. */
    const char *dir = make_dir("c10-truncated");
    write_c10(dir);
    uint8_t lb[2] = {1, 2};
    make_batch(0, 2, 1, lb);
    write_raw(join(dir, "data_batch_2.bin"), g_batch, 1 + PIX + 100);
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT, "data_batch_2.bin");
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT, "truncated record");
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT,
                "3173 bytes is 1 whole 3073-byte CIFAR-10 records and 100 bytes left over");
    CHECK(ds.pixels == NULL && ds.labels == NULL);

    /* Shorter than one record. */
    write_raw(join(dir, "test_batch.bin"), g_batch, 5);
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "test", &ds), MX_ERR_FORMAT, "5 bytes left over");

    /* Empty. */
    const char *c100 = make_dir("c100-empty");
    write_c100(c100);
    write_raw(join(c100, "test.bin"), "", 0);
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_COARSE, "test", &ds), MX_ERR_FORMAT, "test.bin");
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_COARSE, "test", &ds), MX_ERR_FORMAT, "empty");

    /* CIFAR-10 records under CIFAR-100's name: the size says which. */
    uint8_t lb3[3] = {1, 2, 3};
    write_raw(join(c100, "train.bin"), g_batch, make_batch(0, 3, 1, lb3));
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT,
                "but whole records of CIFAR-10");
}

static void test_bad_labels(void)
{
    mx_dataset ds;
    const char *dir = make_dir("c10-label");
    write_c10(dir);
    uint8_t lb[4] = {0, 9, 10, 3};
    write_raw(join(dir, "data_batch_4.bin"), g_batch, make_batch(6, 4, 1, lb));
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT, "data_batch_4.bin");
    CHECK_FAILS(mx_dataset_load_cifar(dir, 0, MX_LABEL_FINE, "train", &ds), MX_ERR_FORMAT,
                "record 2 (byte 6146): label 10 is out of range for CIFAR-10 (0 to 9)");
    CHECK(ds.pixels == NULL && ds.labels == NULL);

    /* CIFAR-100: either byte out of range is an error, whichever label is used. */
    const char *c100 = make_dir("c100-label");
    write_c100(c100);
    uint8_t fine_bad[4] = {1, 2, 19, 100};
    write_raw(join(c100, "test.bin"), g_batch, make_batch(0, 2, 2, fine_bad));
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_COARSE, "test", &ds), MX_ERR_FORMAT, "test.bin");
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_COARSE, "test", &ds), MX_ERR_FORMAT,
                "record 1 (byte 3075): fine label 100");
    uint8_t coarse_bad[4] = {1, 2, 20, 99};
    write_raw(join(c100, "test.bin"), g_batch, make_batch(0, 2, 2, coarse_bad));
    CHECK_FAILS(mx_dataset_load_cifar(c100, 1, MX_LABEL_FINE, "test", &ds), MX_ERR_FORMAT,
                "record 1 (byte 3074): coarse label 20 is out of range for CIFAR-100 (0 to 19)");
    uint8_t max_ok[4] = {19, 99, 0, 0};
    write_raw(join(c100, "test.bin"), g_batch, make_batch(0, 2, 2, max_ok));
    CHECK_OK(mx_dataset_load_cifar(c100, 1, MX_LABEL_FINE, "test", &ds));
    mx_dataset_free(&ds);
}

static void test_arguments(void)
{
    mx_dataset ds;
    char spec[4200];
    CHECK_FAILS(mx_dataset_load_cifar(g_c10, 0, MX_LABEL_COARSE, "train", &ds), MX_ERR_ARG, "CIFAR-100");
    snprintf(spec, sizeof spec, "cifar10:%s", g_c10);
    CHECK_FAILS(mx_data_load_labels(spec, "train", MX_LABEL_COARSE, &ds), MX_ERR_ARG,
                "--label coarse needs cifar100:DIR");
    snprintf(spec, sizeof spec, "idx:%s", g_c10);
    CHECK_FAILS(mx_data_load_labels(spec, "train", MX_LABEL_COARSE, &ds), MX_ERR_ARG, "--label coarse");
    CHECK_FAILS(mx_data_load_labels("fashion-mnist", "train", MX_LABEL_COARSE, &ds), MX_ERR_ARG, "--label coarse");
    CHECK(ds.pixels == NULL && ds.labels == NULL);

    CHECK_FAILS(mx_dataset_load_cifar(g_c10, 0, MX_LABEL_FINE, "validation", &ds), MX_ERR_ARG, "validation");
    snprintf(spec, sizeof spec, "cifar100:%s", g_c100);
    CHECK_FAILS(mx_data_load(spec, "val", &ds), MX_ERR_ARG, "unknown data split 'val'");

    char dir[64];
    CHECK_FAILS(mx_data_resolve("cifar10:", dir, sizeof dir), MX_ERR_ARG, "empty path");
    CHECK_FAILS(mx_data_resolve("cifar100:", dir, sizeof dir), MX_ERR_ARG, "empty path");
    CHECK_FAILS(mx_data_resolve("cifar:x", dir, sizeof dir), MX_ERR_ARG, "cifar10:DIR|cifar100:DIR");
    CHECK(!strcmp(mx_data_source_forms(), "fashion-mnist|idx:DIR|cifar10:DIR|cifar100:DIR|folder:DIR|DIR"));
    CHECK_OK(mx_data_resolve("cifar100:rel/dir", dir, sizeof dir));
    CHECK(!strcmp(dir, "rel/dir"));
    CHECK_FAILS(mx_data_load("cifar10:x", "test", &ds), MX_ERR_IO, "data directory x");
}

/* ---- the in-memory IDX parser (what fuzz_idx drives) ------------------------- */

static void test_idx_parse(void)
{
    const uint8_t images[16 + 6] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6};
    uint8_t *px = NULL;
    size_t n = 0, rows = 0, cols = 0;
    CHECK_OK(mx_idx_parse_images("mem", images, sizeof images, &px, &n, &rows, &cols));
    CHECK(n == 3 && rows == 1 && cols == 2 && px && px[0] == 1 && px[5] == 6);
    free(px);
    CHECK_FAILS(mx_idx_parse_images("mem", images, sizeof images - 1, &px, &n, &rows, &cols), MX_ERR_FORMAT,
                "mem: truncated payload: expected 6 bytes of pixels, got 5");
    CHECK(px == NULL);
    CHECK_FAILS(mx_idx_parse_images("mem", images, 3, &px, &n, &rows, &cols), MX_ERR_FORMAT,
                "truncated header: expected 16 bytes, got 3");
    CHECK_FAILS(mx_idx_parse_images("mem", NULL, 0, &px, &n, &rows, &cols), MX_ERR_FORMAT, "the file is empty");

    const uint8_t labels[8 + 4] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 255, 9};
    int32_t *lb = NULL;
    CHECK_OK(mx_idx_parse_labels("mem", labels, sizeof labels - 1, &lb, &n));
    CHECK(n == 3 && lb && lb[0] == 7 && lb[2] == 255);
    free(lb);
    CHECK_FAILS(mx_idx_parse_labels("mem", labels, sizeof labels, &lb, &n), MX_ERR_FORMAT,
                "1 bytes of trailing data after the 3-byte payload");
    CHECK_FAILS(mx_idx_parse_labels("mem", images, sizeof images, &lb, &n), MX_ERR_FORMAT, "wrong magic");
    CHECK(lb == NULL);

    /* Twelve bytes claiming 2^31 labels: truncated, without reserving 10 GB. */
    const uint8_t huge[12] = {0, 0, 8, 1, 0x80, 0, 0, 0, 1, 2, 3, 4};
    CHECK_FAILS(mx_idx_parse_labels("mem", huge, sizeof huge, &lb, &n), MX_ERR_FORMAT,
                "expected 2147483648 bytes of labels, got 4");
    const char *path = join(g_tmp, "huge-labels");
    write_raw(path, huge, sizeof huge);
    CHECK_FAILS(mx_idx_read_labels(path, &lb, &n), MX_ERR_FORMAT, "expected 2147483648 bytes of labels, got 4");
    /* Payloads over the first allocation grow to their full size. */
    size_t big = (2u << 20) + 3;
    uint8_t *file = malloc(8 + big);
    if (file) {
        memcpy(file, (const uint8_t[]){0, 0, 8, 1, 0, 0x20, 0, 3}, 8);
        for (size_t i = 0; i < big; i++) file[8 + i] = (uint8_t)(i % 251);
        CHECK_OK(mx_idx_parse_labels("mem", file, 8 + big, &lb, &n));
        CHECK(n == big && lb && lb[big - 1] == (int32_t)((big - 1) % 251) && lb[1 << 20] == (1 << 20) % 251);
        free(lb);
        CHECK_FAILS(mx_idx_parse_labels("mem", file, 8 + big - 1, &lb, &n), MX_ERR_FORMAT,
                    "expected 2097155 bytes of labels, got 2097154");
        free(file);
    }
}

int main(void)
{
    make_temp_root_for("test_cifar");
    snprintf(g_c10, sizeof g_c10, "%s", make_dir("cifar10"));
    write_c10(g_c10);
    snprintf(g_c100, sizeof g_c100, "%s", make_dir("cifar100"));
    write_c100(g_c100);
    test_cifar10();
    test_fixed_num_classes();
    test_channel_order();
    test_cifar100();
    test_parse_memory();
    test_missing_files();
    test_bad_sizes();
    test_bad_labels();
    test_arguments();
    test_idx_parse();
    remove_tree(g_tmp);
    CHECK_DONE();
}

/* IDX reading (raw and gzip) and every way a file can be broken, loading a
 * split from a directory, channel statistics, the normaliser and gather; and,
 * where it is installed, the real Fashion-MNIST. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "test_tmp.h"
#include "mixreg/data.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"


static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void write_gzip(const char *path, const void *data, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    if (!gz || (len && gzwrite(gz, data, (unsigned)len) != (int)len) || gzclose(gz) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void write_file(const char *path, const void *data, size_t len, int gzip)
{
    if (gzip) write_gzip(path, data, len);
    else write_raw(path, data, len);
}

static size_t read_whole(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t len = fread(buf, 1, cap, f);
    fclose(f);
    return len;
}

/* ---- building IDX bytes ------------------------------------------------- */

typedef struct {
    unsigned char bytes[1 << 16];
    size_t len;
} blob;

static void put_be32(blob *b, uint32_t v)
{
    b->bytes[b->len++] = (unsigned char)(v >> 24);
    b->bytes[b->len++] = (unsigned char)(v >> 16);
    b->bytes[b->len++] = (unsigned char)(v >> 8);
    b->bytes[b->len++] = (unsigned char)v;
}

static void put_bytes(blob *b, const unsigned char *data, size_t len)
{
    memcpy(b->bytes + b->len, data, len);
    b->len += len;
}

static void images_blob(blob *b, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, const unsigned char *px,
                        size_t px_len)
{
    b->len = 0;
    put_be32(b, magic);
    put_be32(b, n);
    put_be32(b, rows);
    put_be32(b, cols);
    put_bytes(b, px, px_len);
}

static void labels_blob(blob *b, uint32_t magic, uint32_t n, const unsigned char *lb, size_t lb_len)
{
    b->len = 0;
    put_be32(b, magic);
    put_be32(b, n);
    put_bytes(b, lb, lb_len);
}

/* Three 2x4 images with distinct bytes. */
#define SMALL_N 3
#define SMALL_ROWS 2
#define SMALL_COLS 4
#define SMALL_PIXELS (SMALL_N * SMALL_ROWS * SMALL_COLS)
static unsigned char g_small_px[SMALL_PIXELS];
static const unsigned char g_small_labels[SMALL_N] = {2, 0, 1};

static void init_small_pixels(void)
{
    for (int i = 0; i < SMALL_PIXELS; i++) g_small_px[i] = (unsigned char)(i * 11 + 3);
}

/* ---- reading back ------------------------------------------------------- */

static void test_round_trip(int gzip)
{
    blob b;
    const char *img = tmp_path(gzip ? "rt-images.gz" : "rt-images");
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    write_file(img, b.bytes, b.len, gzip);
    uint8_t *px = NULL;
    size_t n = 0, rows = 0, cols = 0;
    CHECK_OK(mx_idx_read_images(img, &px, &n, &rows, &cols));
    CHECK(n == SMALL_N && rows == SMALL_ROWS && cols == SMALL_COLS);
    CHECK(px && !memcmp(px, g_small_px, SMALL_PIXELS));
    free(px);

    const char *lab = tmp_path(gzip ? "rt-labels.gz" : "rt-labels");
    labels_blob(&b, 0x801, SMALL_N, g_small_labels, SMALL_N);
    write_file(lab, b.bytes, b.len, gzip);
    int32_t *labels = NULL;
    CHECK_OK(mx_idx_read_labels(lab, &labels, &n));
    CHECK(n == SMALL_N);
    CHECK(labels && labels[0] == 2 && labels[1] == 0 && labels[2] == 1);
    free(labels);
}

/* Labels use the whole uint8 range, widened without sign trouble. */
static void test_label_range(void)
{
    unsigned char lb[4] = {0, 127, 128, 255};
    blob b;
    labels_blob(&b, 0x801, 4, lb, 4);
    const char *path = tmp_path("labels-range");
    write_raw(path, b.bytes, b.len);
    int32_t *labels = NULL;
    size_t n = 0;
    CHECK_OK(mx_idx_read_labels(path, &labels, &n));
    CHECK(n == 4 && labels && labels[1] == 127 && labels[2] == 128 && labels[3] == 255);
    free(labels);
}

static mx_status read_images_status(const char *path)
{
    uint8_t *px = NULL;
    size_t n, rows, cols;
    mx_status st = mx_idx_read_images(path, &px, &n, &rows, &cols);
    free(px);
    return st;
}

static mx_status read_labels_status(const char *path)
{
    int32_t *labels = NULL;
    size_t n;
    mx_status st = mx_idx_read_labels(path, &labels, &n);
    free(labels);
    return st;
}

static void test_wrong_magic(void)
{
    blob b;
    const char *path = tmp_path("magic-images");
    images_blob(&b, 0x801, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    write_raw(path, b.bytes, b.len);
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "magic-images");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "expected 0x00000803");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "found 0x00000801");

    /* An image file handed to the label reader. */
    const char *img = tmp_path("magic-real-images.gz");
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    write_gzip(img, b.bytes, b.len);
    CHECK_FAILS(read_labels_status(img), MX_ERR_FORMAT, "magic-real-images.gz");
    CHECK_FAILS(read_labels_status(img), MX_ERR_FORMAT, "expected 0x00000801");

    /* Text is not IDX at all. */
    const char *text = tmp_path("magic-text");
    write_raw(text, "hello, world\n", 13);
    CHECK_FAILS(read_images_status(text), MX_ERR_FORMAT, "magic-text");
}

static void test_truncated_header(void)
{
    blob b;
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    const char *path = tmp_path("short-header");
    write_raw(path, b.bytes, 10);
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "short-header");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "truncated header: expected 16 bytes, got 10");
    const char *gz = tmp_path("short-header.gz");
    write_gzip(gz, b.bytes, 2);
    CHECK_FAILS(read_images_status(gz), MX_ERR_FORMAT, "short-header.gz");
    CHECK_FAILS(read_images_status(gz), MX_ERR_FORMAT, "got 2");
    const char *empty = tmp_path("empty");
    write_raw(empty, "", 0);
    CHECK_FAILS(read_images_status(empty), MX_ERR_FORMAT, "empty");
    CHECK_FAILS(read_labels_status(empty), MX_ERR_FORMAT, "expected 8 bytes, got 0");
}

static void test_truncated_payload(int gzip)
{
    blob b;
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    const char *path = tmp_path(gzip ? "short-payload.gz" : "short-payload");
    write_file(path, b.bytes, b.len - 4, gzip);
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, gzip ? "short-payload.gz" : "short-payload");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "truncated payload: expected 24 bytes of pixels, got 20");

    labels_blob(&b, 0x801, 5, g_small_labels, SMALL_N);
    const char *lab = tmp_path(gzip ? "short-labels.gz" : "short-labels");
    write_file(lab, b.bytes, b.len, gzip);
    CHECK_FAILS(read_labels_status(lab), MX_ERR_FORMAT, gzip ? "short-labels.gz" : "short-labels");
    CHECK_FAILS(read_labels_status(lab), MX_ERR_FORMAT, "expected 5 bytes of labels, got 3");
}

/* A payload large enough that the deflate stream has a body worth damaging. */
#define BIG_N 40
#define BIG_SIDE 28
static unsigned char g_big_px[BIG_N * BIG_SIDE * BIG_SIDE];

static void init_big_pixels(void)
{
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof g_big_px; i++) {
        s = s * 1664525u + 1013904223u;
        /* Mostly zeros with some noise, like real images: compressible but not trivial. */
        g_big_px[i] = (s >> 28) < 6 ? (unsigned char)(s >> 16) : 0;
    }
}

static void write_big_gzip(const char *path, unsigned char *gz_bytes, size_t cap, size_t *gz_len)
{
    blob b;
    images_blob(&b, 0x803, BIG_N, BIG_SIDE, BIG_SIDE, g_big_px, sizeof g_big_px);
    write_gzip(path, b.bytes, b.len);
    *gz_len = read_whole(path, gz_bytes, cap);
}

static void test_broken_gzip(void)
{
    static unsigned char gz[1 << 16];
    size_t len = 0;
    const char *good = tmp_path("big.gz");
    write_big_gzip(good, gz, sizeof gz, &len);
    CHECK(len > 200 && len < sizeof g_big_px);
    CHECK_OK(read_images_status(good));

    /* The compressed file cut short: zlib sees the stream end early. */
    const char *cut = tmp_path("cut.gz");
    write_raw(cut, gz, len / 2);
    CHECK_FAILS(read_images_status(cut), MX_ERR_FORMAT, "cut.gz");
    CHECK_FAILS(read_images_status(cut), MX_ERR_FORMAT, "truncated payload");

    /* Only the 8-byte trailer (CRC and length) missing: the payload is all
     * there but the file is still incomplete. */
    const char *no_trailer = tmp_path("no-trailer.gz");
    write_raw(no_trailer, gz, len - 8);
    CHECK_FAILS(read_images_status(no_trailer), MX_ERR_FORMAT, "no-trailer.gz");

    /* Damaged bytes in the middle of the deflate stream. */
    const char *garbled = tmp_path("garbled.gz");
    unsigned char bad[1 << 16];
    memcpy(bad, gz, len);
    for (size_t k = len / 3; k < len / 3 + 16; k++) bad[k] ^= 0x5a;
    write_raw(garbled, bad, len);
    CHECK_FAILS(read_images_status(garbled), MX_ERR_FORMAT, "garbled.gz");

    /* A wrong CRC: only the trailer check can catch this. */
    const char *crc = tmp_path("bad-crc.gz");
    memcpy(bad, gz, len);
    bad[len - 8] ^= 0xff;
    write_raw(crc, bad, len);
    CHECK_FAILS(read_images_status(crc), MX_ERR_FORMAT, "bad-crc.gz");
    CHECK_FAILS(read_images_status(crc), MX_ERR_FORMAT, "corrupt gzip");
}

static void test_trailing_garbage(int gzip)
{
    blob b;
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    put_bytes(&b, (const unsigned char *)"xyz", 3);
    const char *path = tmp_path(gzip ? "trailing.gz" : "trailing");
    write_file(path, b.bytes, b.len, gzip);
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, gzip ? "trailing.gz" : "trailing");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "3 bytes of trailing data after the 24-byte payload");

    labels_blob(&b, 0x801, 2, g_small_labels, SMALL_N);
    const char *lab = tmp_path(gzip ? "trailing-labels.gz" : "trailing-labels");
    write_file(lab, b.bytes, b.len, gzip);
    CHECK_FAILS(read_labels_status(lab), MX_ERR_FORMAT, "trailing");
}

static void check_bad_dims(uint32_t n, uint32_t rows, uint32_t cols)
{
    blob b;
    images_blob(&b, 0x803, n, rows, cols, g_small_px, SMALL_PIXELS);
    const char *path = tmp_path("dims");
    write_raw(path, b.bytes, b.len);
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "dims");
    CHECK_FAILS(read_images_status(path), MX_ERR_FORMAT, "absurd dimensions");
}

static void test_absurd_dims(void)
{
    check_bad_dims(0, 2, 4);
    check_bad_dims(3, 0, 4);
    check_bad_dims(3, 2, 0);
    check_bad_dims(3, 70000, 1);
    check_bad_dims(1, 1, 65537);
    check_bad_dims(40000, 300, 300);          /* 3.6e9 bytes */
    check_bad_dims(0xffffffffu, 65536, 65536); /* would overflow 64 bits */
    blob b;
    labels_blob(&b, 0x801, 0, g_small_labels, 0);
    const char *path = tmp_path("no-labels");
    write_raw(path, b.bytes, b.len);
    CHECK_FAILS(read_labels_status(path), MX_ERR_FORMAT, "no-labels");
    labels_blob(&b, 0x801, 0xffffffffu, g_small_labels, 0);
    write_raw(path, b.bytes, b.len);
    CHECK_FAILS(read_labels_status(path), MX_ERR_FORMAT, "absurd label count");
}

static void test_missing_file(void)
{
    const char *path = tmp_path("does-not-exist");
    CHECK_FAILS(read_images_status(path), MX_ERR_IO, "does-not-exist");
    CHECK_FAILS(read_labels_status(path), MX_ERR_IO, strerror(ENOENT));
    CHECK_FAILS(read_images_status(g_tmp), MX_ERR_IO, "directory");
}

/* ---- loading a split from a directory ----------------------------------- */

static const char *make_dir(const char *name)
{
    const char *dir = tmp_path(name);
    if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    return dir;
}

static void write_split(const char *dir, const char *prefix, const unsigned char *labels, uint32_t n_labels,
                        int gzip)
{
    char path[8192];
    blob b;
    images_blob(&b, 0x803, SMALL_N, SMALL_ROWS, SMALL_COLS, g_small_px, SMALL_PIXELS);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gzip ? ".gz" : "");
    write_file(path, b.bytes, b.len, gzip);
    labels_blob(&b, 0x801, n_labels, labels, n_labels);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gzip ? ".gz" : "");
    write_file(path, b.bytes, b.len, gzip);
}

static void test_load_split(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", make_dir("split-ok"));
    write_split(dir, "train", g_small_labels, SMALL_N, 0);
    write_split(dir, "t10k", g_small_labels, SMALL_N, 1);
    for (int k = 0; k < 2; k++) {
        mx_dataset ds;
        CHECK_OK(mx_dataset_load_idx(dir, k ? "test" : "train", &ds));
        CHECK(ds.n == SMALL_N && ds.channels == 1 && ds.height == SMALL_ROWS && ds.width == SMALL_COLS);
        CHECK(ds.num_classes == 3);
        CHECK(ds.pixels && !memcmp(ds.pixels, g_small_px, SMALL_PIXELS));
        CHECK(ds.labels && ds.labels[0] == 2 && ds.labels[2] == 1);
        mx_dataset_free(&ds);
        CHECK(ds.pixels == NULL && ds.labels == NULL && ds.n == 0);
    }
    mx_dataset ds;
    CHECK_FAILS(mx_dataset_load_idx(dir, "validation", &ds), MX_ERR_ARG, "validation");
}

static void test_load_errors(void)
{
    mx_dataset ds;
    char dir[4096];

    const char *missing = tmp_path("no-such-dir");
    CHECK_FAILS(mx_dataset_load_idx(missing, "train", &ds), MX_ERR_IO, "no-such-dir");
    CHECK(ds.pixels == NULL && ds.labels == NULL);

    snprintf(dir, sizeof dir, "%s", make_dir("split-empty"));
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_IO, "split-empty");
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_IO, "train-images-idx3-ubyte");

    /* Images present, labels missing. */
    snprintf(dir, sizeof dir, "%s", make_dir("split-no-labels"));
    write_split(dir, "train", g_small_labels, SMALL_N, 0);
    char path[8192];
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    unlink(path);
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_IO, "train-labels-idx1-ubyte");

    snprintf(dir, sizeof dir, "%s", make_dir("split-mismatch"));
    write_split(dir, "train", g_small_labels, 2, 1);
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_FORMAT, "train-labels-idx1-ubyte.gz");
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_FORMAT, "3 images but");
    CHECK(ds.pixels == NULL && ds.labels == NULL);

    snprintf(dir, sizeof dir, "%s", make_dir("split-one-class"));
    const unsigned char zeros[SMALL_N] = {0, 0, 0};
    write_split(dir, "t10k", zeros, SMALL_N, 0);
    CHECK_FAILS(mx_dataset_load_idx(dir, "test", &ds), MX_ERR_FORMAT, "t10k-labels-idx1-ubyte");
    CHECK_FAILS(mx_dataset_load_idx(dir, "test", &ds), MX_ERR_FORMAT, "one class");

    /* A broken file inside a directory keeps its own message. */
    snprintf(dir, sizeof dir, "%s", make_dir("split-broken"));
    write_split(dir, "train", g_small_labels, SMALL_N, 0);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_raw(path, "\0\0\x08\x03\0\0", 6);
    CHECK_FAILS(mx_dataset_load_idx(dir, "train", &ds), MX_ERR_FORMAT, path);
}

/* ---- statistics, normaliser, gather ------------------------------------- */

/* Two samples, two channels of 1x2 pixels:
 *   sample 0: c0 = {0, 255},   c1 = {51, 51}     (51/255 = 0.2)
 *   sample 1: c0 = {255, 0},   c1 = {153, 153}   (153/255 = 0.6)
 * c0 values {0, 1, 1, 0}: mean 0.5, std 0.5.
 * c1 values {0.2, 0.2, 0.6, 0.6}: mean 0.4, std 0.2. */
static uint8_t g_tiny_px[8] = {0, 255, 51, 51, 255, 0, 153, 153};
static int32_t g_tiny_labels[2] = {4, 7};

static mx_dataset tiny_dataset(void)
{
    mx_dataset ds = {.n = 2, .channels = 2, .height = 1, .width = 2, .num_classes = 8,
                     .pixels = g_tiny_px, .labels = g_tiny_labels};
    return ds;
}

static void test_channel_stats(void)
{
    mx_dataset ds = tiny_dataset();
    float mean[2], std[2];
    mx_dataset_channel_stats(&ds, mean, std);
    CHECK_NEAR(mean[0], 0.5, 1e-6);
    CHECK_NEAR(std[0], 0.5, 1e-6);
    CHECK_NEAR(mean[1], 0.4, 1e-6);
    CHECK_NEAR(std[1], 0.2, 1e-6);

    /* One channel, {0, 1, 0.2, 0.4, 1, 0, 0, 0.6}: sum 3.2, mean 0.4;
     * sum of squares 2.56, E[x^2] = 0.32, var = 0.32 - 0.16 = 0.16, std 0.4. */
    uint8_t px[8] = {0, 255, 51, 102, 255, 0, 0, 153};
    int32_t lb[2] = {0, 1};
    mx_dataset one = {.n = 2, .channels = 1, .height = 2, .width = 2, .num_classes = 2, .pixels = px, .labels = lb};
    mx_dataset_channel_stats(&one, mean, std);
    CHECK_NEAR(mean[0], 0.4, 1e-6);
    CHECK_NEAR(std[0], 0.4, 1e-6);
}

static void test_normalizer(void)
{
    mx_normalizer nz;
    float mean[2] = {0.5f, 0.4f}, std[2] = {0.5f, 0.2f};
    CHECK_OK(mx_normalizer_init(&nz, 2, mean, std));
    CHECK(nz.channels == 2);
    CHECK_NEAR(nz.lut[0][0], -1.0, 1e-6);
    CHECK_NEAR(nz.lut[0][255], 1.0, 1e-6);
    CHECK_NEAR(nz.lut[1][51], -1.0, 1e-6);

    float zero_std[2] = {0.5f, 0.0f}, neg_std[1] = {-0.1f}, nan_std[1] = {NAN};
    CHECK_FAILS(mx_normalizer_init(&nz, 2, mean, zero_std), MX_ERR_ARG, "std");
    CHECK_FAILS(mx_normalizer_init(&nz, 1, mean, neg_std), MX_ERR_ARG, "std");
    CHECK_FAILS(mx_normalizer_init(&nz, 1, mean, nan_std), MX_ERR_ARG, "std");
    CHECK_FAILS(mx_normalizer_init(&nz, 0, mean, std), MX_ERR_ARG, "channels");
    float many[MX_MAX_CHANNELS + 1] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    CHECK_FAILS(mx_normalizer_init(&nz, MX_MAX_CHANNELS + 1, many, many), MX_ERR_ARG, "channels");
}

static void test_gather(void)
{
    mx_dataset ds = tiny_dataset();
    mx_normalizer nz;
    float mean[2] = {0.5f, 0.4f}, std[2] = {0.5f, 0.2f};
    CHECK_OK(mx_normalizer_init(&nz, 2, mean, std));
    /* c0: (0 - 0.5)/0.5 = -1, (1 - 0.5)/0.5 = 1; c1: (0.2-0.4)/0.2 = -1, (0.6-0.4)/0.2 = 1. */
    const uint32_t idx[3] = {1, 0, 1};
    const float expected[3][4] = {{1, -1, 1, 1}, {-1, 1, -1, -1}, {1, -1, 1, 1}};
    float x[12];
    int32_t y[3];
    mx_dataset_gather(&ds, &nz, idx, 3, x, y);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 4; k++) CHECK_NEAR(x[i * 4 + k], expected[i][k], 1e-6);
    CHECK(y[0] == 7 && y[1] == 4 && y[2] == 7);
}

/* ---- the real data set --------------------------------------------------- */

static void test_fashion_mnist(void)
{
    struct stat sb;
    if (stat(FASHION_MNIST_DIR, &sb) != 0) {
        printf("note: %s not installed, skipping the Fashion-MNIST checks\n", FASHION_MNIST_DIR);
        return;
    }
    mx_dataset train, test;
    CHECK_OK(mx_dataset_load_idx(FASHION_MNIST_DIR, "train", &train));
    CHECK_OK(mx_dataset_load_idx(FASHION_MNIST_DIR, "test", &test));
    CHECK(train.n == 60000 && test.n == 10000);
    CHECK(train.channels == 1 && train.height == 28 && train.width == 28);
    CHECK(test.channels == 1 && test.height == 28 && test.width == 28);
    CHECK(train.num_classes == 10 && test.num_classes == 10);
    if (train.n == 60000) {
        float mean, std;
        mx_dataset_channel_stats(&train, &mean, &std);
        CHECK_NEAR(mean, 0.2860, 5e-4);
        CHECK_NEAR(std, 0.3530, 5e-4);
        /* Every class appears 6000 times in the training set. */
        size_t counts[10] = {0};
        for (size_t i = 0; i < train.n; i++) counts[train.labels[i]]++;
        for (int c = 0; c < 10; c++) CHECK(counts[c] == 6000);
    }
    mx_dataset_free(&train);
    mx_dataset_free(&test);
}

int main(void)
{
    make_temp_root_for("test_data");
    init_small_pixels();
    init_big_pixels();
    test_round_trip(0);
    test_round_trip(1);
    test_label_range();
    test_wrong_magic();
    test_truncated_header();
    test_truncated_payload(0);
    test_truncated_payload(1);
    test_broken_gzip();
    test_trailing_garbage(0);
    test_trailing_garbage(1);
    test_absurd_dims();
    test_missing_file();
    test_load_split();
    test_load_errors();
    test_channel_stats();
    test_normalizer();
    test_gather();
    test_fashion_mnist();
    remove_tree(g_tmp);
    CHECK_DONE();
}

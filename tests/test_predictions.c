/* Predictions files: the CSV text checked by hand, the .npy header and data
 * parsed back here, empty sets, replacing a file, and the errors. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mixreg/fileio.h"
#include "mixreg/predictions.h"
#include "test_tmp.h"


static char *read_file(const char *path, size_t *size)
{
    char *data = NULL;
    *size = 0;
    CHECK_OK(mx_file_read_all(path, 1 << 26, &data, size));
    return data;
}

static void test_csv(void)
{
    const float probs[] = {0.5f, 0.25f, 0.25f, 0.1f, 0.2f, 0.7f, 1.0f, 1e-8f, 0.0f, 0.123456789f, 0.3f, 0.576543211f};
    const int32_t labels[] = {2, 0, 1, -1};
    CHECK_OK(mx_predictions_write(tmp_path("p.csv"), probs, labels, 4, 3));
    size_t size;
    char *text = read_file(tmp_path("p.csv"), &size);
    const char *expected = "index,label,p0,p1,p2\n"
                           "0,2,0.5,0.25,0.25\n"
                           "1,0,0.1,0.2,0.7\n"
                           "2,1,1,1e-08,0\n"
                           "3,-1,0.1234568,0.3,0.5765432\n";
    CHECK(text && strcmp(text, expected) == 0);
    if (text && strcmp(text, expected) != 0) fprintf(stderr, "got:\n%s", text);
    free(text);
    /* Replacing it: the new contents whole. Upper-case extensions are fine. */
    CHECK_OK(mx_predictions_write(tmp_path("p.csv"), probs, labels, 1, 3));
    text = read_file(tmp_path("p.csv"), &size);
    CHECK(text && strcmp(text, "index,label,p0,p1,p2\n0,2,0.5,0.25,0.25\n") == 0);
    free(text);
    CHECK_OK(mx_predictions_write(tmp_path("upper.CSV"), probs, labels, 0, 2));
    text = read_file(tmp_path("upper.CSV"), &size);
    CHECK(text && strcmp(text, "index,label,p0,p1\n") == 0);
    free(text);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float f32_at(const unsigned char *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Checks the .npy preamble and header and returns the offset of the data, 0 if wrong. */
static size_t check_npy_header(const unsigned char *d, size_t size, size_t rows, size_t cols)
{
    CHECK(size >= 10 && memcmp(d, "\x93NUMPY", 6) == 0);
    if (size < 10 || memcmp(d, "\x93NUMPY", 6) != 0) return 0;
    CHECK(d[6] == 1 && d[7] == 0);
    size_t header_len = (size_t)d[8] | (size_t)d[9] << 8;
    size_t start = 10 + header_len;
    CHECK(start % 64 == 0);
    CHECK(start <= size);
    if (start > size) return 0;
    char header[1024];
    CHECK(header_len < sizeof header);
    if (header_len >= sizeof header) return 0;
    memcpy(header, d + 10, header_len);
    header[header_len] = '\0';
    CHECK(header[header_len - 1] == '\n');
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%zu, %zu)", rows, cols);
    CHECK(header[0] == '{');
    CHECK(strstr(header, "'descr': '<f4'") != NULL);
    CHECK(strstr(header, "'fortran_order': False") != NULL);
    CHECK(strstr(header, shape) != NULL);
    /* After the closing brace: only spaces, then the newline. */
    char *close = strrchr(header, '}');
    CHECK(close != NULL);
    if (close)
        for (char *p = close + 1; p < header + header_len - 1; p++) CHECK(*p == ' ');
    CHECK(size - start == rows * cols * 4);
    return start;
}

static void test_npy(void)
{
    const float probs[] = {0.5f, 0.25f, 0.125f, 0.125f, 0.1f, 0.2f, 0.3f, 0.4f, 1.0f, 0.0f, 0.0f, 0.0f};
    const int32_t labels[] = {3, 0, 7};
    CHECK_OK(mx_predictions_write(tmp_path("p.npy"), probs, labels, 3, 4));
    size_t size;
    unsigned char *d = (unsigned char *)read_file(tmp_path("p.npy"), &size);
    size_t start = d ? check_npy_header(d, size, 3, 6) : 0;
    CHECK(start == 128); /* 10 bytes, the dict's 60-odd and '\n', padded to 2 x 64 */
    if (start) {
        const unsigned char *data = d + start;
        int wrong = 0;
        for (size_t i = 0; i < 3; i++) {
            wrong += f32_at(data + (i * 6 + 0) * 4) != (float)i;
            wrong += f32_at(data + (i * 6 + 1) * 4) != (float)labels[i];
            for (size_t c = 0; c < 4; c++) wrong += f32_at(data + (i * 6 + 2 + c) * 4) != probs[i * 4 + c];
        }
        CHECK(wrong == 0);
        /* little-endian on any host: 0.5f is 0x3f000000 */
        CHECK(data[8] == 0x00 && data[9] == 0x00 && data[10] == 0x00 && data[11] == 0x3f);
    }
    free(d);
    /* Empty, and many classes (a longer shape, still aligned). */
    CHECK_OK(mx_predictions_write(tmp_path("empty.npy"), NULL, NULL, 0, 10));
    d = (unsigned char *)read_file(tmp_path("empty.npy"), &size);
    if (d) CHECK(check_npy_header(d, size, 0, 12) == 128);
    free(d);
    enum { WIDE = 1000 };
    float *wide = calloc(2 * WIDE, sizeof *wide);
    wide[WIDE - 1] = 1.0f;
    wide[WIDE] = 1.0f;
    const int32_t wide_labels[] = {999, 0};
    CHECK_OK(mx_predictions_write(tmp_path("wide.npy"), wide, wide_labels, 2, WIDE));
    d = (unsigned char *)read_file(tmp_path("wide.npy"), &size);
    start = d ? check_npy_header(d, size, 2, WIDE + 2) : 0;
    CHECK(start > 0);
    if (start) {
        CHECK(f32_at(d + start + 4) == 999.0f && f32_at(d + start + (2 + WIDE - 1) * 4) == 1.0f);
        CHECK(f32_at(d + start + (WIDE + 2) * 4) == 1.0f && f32_at(d + start + (WIDE + 3) * 4) == 0.0f);
        CHECK(f32_at(d + start + (WIDE + 4) * 4) == 1.0f);
    }
    free(d);
    free(wide);
}

/* Several blocks of columns: named in the CSV header in order, side by side
 * in the .npy's rows; bad names and counts refused. */
static void test_blocks(void)
{
    const float a[] = {0.5f, 0.5f, 0.25f, 0.75f}, b[] = {-1.5f, 2.0f, 3.0f, 0.0f};
    const int32_t labels[] = {1, 0};
    const mx_prediction_block blocks[] = {{"p", a}, {"plain_logit", b}};
    CHECK_OK(mx_predictions_write_blocks(tmp_path("b.csv"), blocks, 2, labels, 2, 2));
    size_t size;
    char *text = read_file(tmp_path("b.csv"), &size);
    const char *expected = "index,label,p0,p1,plain_logit0,plain_logit1\n"
                           "0,1,0.5,0.5,-1.5,2\n"
                           "1,0,0.25,0.75,3,0\n";
    CHECK(text && strcmp(text, expected) == 0);
    if (text && strcmp(text, expected) != 0) fprintf(stderr, "got:\n%s", text);
    free(text);
    CHECK_OK(mx_predictions_write_blocks(tmp_path("b.npy"), blocks, 2, labels, 2, 2));
    unsigned char *d = (unsigned char *)read_file(tmp_path("b.npy"), &size);
    size_t start = d ? check_npy_header(d, size, 2, 6) : 0;
    CHECK(start > 0);
    if (start) {
        const float want[] = {0, 1, 0.5f, 0.5f, -1.5f, 2.0f, 1, 0, 0.25f, 0.75f, 3.0f, 0.0f};
        int wrong = 0;
        for (size_t k = 0; k < 12; k++) wrong += f32_at(d + start + 4 * k) != want[k];
        CHECK(wrong == 0);
    }
    free(d);
    const mx_prediction_block bad[] = {{"p,0", a}, {"", a}, {NULL, a}, {"x y", a}};
    for (size_t k = 0; k < 4; k++) CHECK(mx_predictions_write_blocks(tmp_path("bad.csv"), &bad[k], 1, labels, 2, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write_blocks(tmp_path("bad.csv"), blocks, 0, labels, 2, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write_blocks(tmp_path("bad.csv"), blocks, MX_PREDICTION_MAX_BLOCKS + 1, labels, 2, 2) == MX_ERR_ARG);
    CHECK(access(tmp_path("bad.csv"), F_OK) != 0);
}

static void test_errors(void)
{
    const float probs[] = {0.5f, 0.5f};
    const int32_t labels[] = {1};
    CHECK(mx_predictions_write(tmp_path("p.txt"), probs, labels, 1, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write(tmp_path("p"), probs, labels, 1, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write(tmp_path("csv"), probs, labels, 1, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write(NULL, probs, labels, 1, 2) == MX_ERR_ARG);
    CHECK(mx_predictions_write(tmp_path("zero.csv"), probs, labels, 1, 0) == MX_ERR_ARG);
    CHECK(mx_predictions_write(tmp_path("no/such/dir/p.csv"), probs, labels, 1, 2) == MX_ERR_IO);
    CHECK(mx_predictions_write(tmp_path("no/such/dir/p.npy"), probs, labels, 1, 2) == MX_ERR_IO);
    /* Nothing half-written is left behind: only the files written on purpose. */
    DIR *dp = opendir(g_tmp);
    CHECK(dp != NULL);
    int stray = 0;
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (strstr(e->d_name, ".tmp") || !strcmp(e->d_name, "zero.csv") || !strcmp(e->d_name, "p.txt")) stray++;
    if (dp) closedir(dp);
    CHECK(stray == 0);
}

static void remove_temp_dir(void)
{
    static const char *names[] = {"p.csv", "upper.CSV", "p.npy", "empty.npy", "wide.npy", "b.csv", "b.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    CHECK(rmdir(g_tmp) == 0);
}

int main(void)
{
    make_temp_root_for("predictions");
    test_csv();
    test_npy();
    test_blocks();
    test_errors();
    remove_temp_dir();
    CHECK_DONE();
}

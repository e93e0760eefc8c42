/* The safetensors writer and reader: round trip, and every malformed file a
 * clear error rather than a crash or an out-of-bounds read. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mixreg/fileio.h"
#include "mixreg/safetensors.h"

static char dir[4096];

static void write_raw(const char *path, const char *header, const void *data, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    uint64_t len = strlen(header);
    uint8_t le[8];
    for (int b = 0; b < 8; b++) le[b] = (uint8_t)(len >> (8 * b));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, len, f);
    if (data_len) fwrite(data, 1, data_len, f);
    fclose(f);
}

static void expect_format_error(const char *name, const char *header, size_t data_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    uint8_t data[64] = {0};
    write_raw(path, header, data, data_len);
    mx_safetensors st;
    mx_status s = mx_safetensors_read(path, &st);
    CHECK(s == MX_ERR_FORMAT);
    if (s != MX_ERR_FORMAT) fprintf(stderr, "case %s was accepted\n", name);
    CHECK(strstr(mx_error_message(), path) != NULL);
}

static void test_round_trip(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    float w[6] = {1, 2, 3, 4, 5, 6};
    int32_t k[2] = {-7, 9};
    mx_st_tensor t[2] = {
        {.name = "w", .dtype = MX_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .nbytes = sizeof w, .data = w},
        {.name = "k", .dtype = MX_DTYPE_I32, .ndim = 1, .shape = {2}, .nbytes = sizeof k, .data = k},
    };
    mx_st_meta meta[] = {{"format", "pt"}, {"note", "quoted \"text\""}};
    CHECK_OK(mx_safetensors_write(path, t, 2, meta, 2));
    mx_safetensors st;
    CHECK_OK(mx_safetensors_read(path, &st));
    CHECK(st.count == 2);
    const mx_st_tensor *rw = mx_safetensors_find(&st, "w");
    CHECK(rw && rw->ndim == 2 && rw->shape[0] == 2 && rw->shape[1] == 3 && rw->dtype == MX_DTYPE_F32);
    if (rw) CHECK(memcmp(rw->data, w, sizeof w) == 0);
    const mx_st_tensor *rk = mx_safetensors_find(&st, "k");
    if (rk) CHECK(memcmp(rk->data, k, sizeof k) == 0);
    CHECK(mx_safetensors_find(&st, "missing") == NULL);
    CHECK(mx_safetensors_meta(&st, "note") && !strcmp(mx_safetensors_meta(&st, "note"), "quoted \"text\""));
    /* Tensor data starts 8-byte aligned, as the format recommends. */
    CHECK(((const uint8_t *)rw->data - st.file) % 8 == 0);
    mx_safetensors_free(&st);
    /* No temporary file is left behind. */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);
    /* A writer that cannot create its file leaves the old one alone. */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    CHECK(mx_safetensors_write(bad, t, 2, meta, 2) == MX_ERR_IO);
    /* Shape and byte count must agree when writing, too. */
    t[0].nbytes = 8;
    CHECK(mx_safetensors_write(path, t, 2, meta, 2) == MX_ERR_ARG);
    CHECK_OK(mx_safetensors_read(path, &st));
    mx_safetensors_free(&st);
}

static void test_corrupt_files(void)
{
    expect_format_error("bad_json", "{\"w\": {\"dtype\": \"F32\", ", 0);
    expect_format_error("not_object", "[1, 2]", 0);
    expect_format_error("bad_dtype", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_format_error("size_mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    expect_format_error("beyond_data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_format_error("reversed", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4);
    expect_format_error("negative", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1);
    expect_format_error("fraction", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1);
    expect_format_error("overlap",
                        "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
                        6);
    expect_format_error("hole", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4);
    expect_format_error("trailing", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 6);
    expect_format_error("missing_keys", "{\"a\":{\"dtype\":\"U8\"}}", 0);
    expect_format_error("meta_not_string", "{\"__metadata__\":{\"k\":3}}", 0);
    expect_format_error("huge_shape",
                        "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8);

    char path[4200];
    /* Header length pointing past the end of the file (a truncated file). */
    snprintf(path, sizeof path, "%s/truncated.safetensors", dir);
    FILE *f = fopen(path, "wb");
    uint8_t le[12] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    fwrite(le, 1, sizeof le, f);
    fclose(f);
    mx_safetensors st;
    CHECK(mx_safetensors_read(path, &st) == MX_ERR_FORMAT);
    /* Shorter than the length prefix itself. */
    f = fopen(path, "wb");
    fwrite(le, 1, 3, f);
    fclose(f);
    CHECK(mx_safetensors_read(path, &st) == MX_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    CHECK(mx_safetensors_read(path, &st) == MX_ERR_IO);
    CHECK(strstr(mx_error_message(), "absent.safetensors") != NULL);
}

int main(void)
{
    const char *base = getenv("MIXREG_TEST_TMP");
    char tmpl[4096];
    if (base) mx_make_dirs(base);
    snprintf(tmpl, sizeof tmpl, "%s/safetensors-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dir, sizeof dir, "%s", tmpl);
    test_round_trip();
    test_corrupt_files();
    CHECK_DONE();
}

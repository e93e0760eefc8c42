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
#include "test_tmp.h"


/* Writes `header` (header_len bytes, or strlen when 0) and data_len zero bytes
 * of data, and reads the file back. */
static mx_status read_crafted(const char *name, const char *header, size_t header_len, size_t data_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.safetensors", g_tmp, name);
    FILE *f = fopen(path, "wb");
    uint64_t len = header_len ? header_len : strlen(header);
    uint8_t le[8];
    for (int b = 0; b < 8; b++) le[b] = (uint8_t)(len >> (8 * b));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, len, f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
    mx_safetensors st;
    mx_status s = mx_safetensors_read(path, &st);
    if (s == MX_OK) mx_safetensors_free(&st);
    else if (!strstr(mx_error_message(), path)) fprintf(stderr, "case %s: the error does not name the file\n", name);
    return s;
}

static void test_round_trip(void)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/ok.safetensors", g_tmp);
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
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", g_tmp);
    CHECK(mx_safetensors_write(bad, t, 2, meta, 2) == MX_ERR_IO);
    /* Shape and byte count must agree when writing, too. */
    t[0].nbytes = 8;
    CHECK(mx_safetensors_write(path, t, 2, meta, 2) == MX_ERR_ARG);
    CHECK_OK(mx_safetensors_read(path, &st));
    mx_safetensors_free(&st);
}

/* One row per kind of crafted header: each must give a clean format error
 * (the sanitizer build runs this too, so an out-of-bounds access fails it). */
#define T1 "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}"
static const struct {
    const char *name;
    const char *header;
    size_t header_len;  /* 0: strlen(header) */
    size_t data_len;
} crafted[] = {
    /* duplicate keys, at every level */
    {"dup_metadata", "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\",\"c\":\"3\"}}", 0, 0},
    {"dup_metadata_tensor_between", "{\"__metadata__\":{},\"w\":" T1 ",\"__metadata__\":{\"b\":\"2\"}}", 0, 1},
    {"dup_tensor", "{\"w\":" T1 ",\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2},
    {"dup_meta_key", "{\"__metadata__\":{\"k\":\"1\",\"j\":\"0\",\"k\":\"2\"}}", 0, 0},
    {"dup_dtype", "{\"w\":{\"dtype\":\"U8\",\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1},
    {"dup_shape", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"shape\":[8],\"data_offsets\":[0,1]}}", 0, 1},
    {"dup_offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"data_offsets\":[1,2]}}", 0, 2},
    {"unknown_tensor_key", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 0, 1},
    /* wrong JSON types */
    {"tensor_not_object", "{\"w\":[0,1]}", 0, 1},
    {"tensor_string", "{\"w\":\"U8\"}", 0, 0},
    {"metadata_array", "{\"__metadata__\":[\"a\"]}", 0, 0},
    {"metadata_string", "{\"__metadata__\":\"a\"}", 0, 0},
    {"meta_number", "{\"__metadata__\":{\"k\":3}}", 0, 0},
    {"meta_null", "{\"__metadata__\":{\"k\":null}}", 0, 0},
    {"meta_object", "{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0, 0},
    {"meta_bool", "{\"__metadata__\":{\"k\":true}}", 0, 0},
    {"dtype_number", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1},
    {"dtype_unknown", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4},
    {"dtype_empty", "{\"w\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_object", "{\"w\":{\"dtype\":\"U8\",\"shape\":{\"0\":1},\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_string_dim", "{\"w\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_nested", "{\"w\":{\"dtype\":\"U8\",\"shape\":[[1]],\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_negative", "{\"w\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_fraction", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 0, 1},
    {"shape_nine_dims", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1},
    {"offsets_object", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{\"a\":0,\"b\":1}}}", 0, 1},
    {"offsets_three", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 0, 2},
    {"offsets_one", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1]}}", 0, 1},
    {"offsets_strings", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\"0\",\"1\"]}}", 0, 1},
    {"missing_keys", "{\"a\":{\"dtype\":\"U8\"}}", 0, 0},
    /* negative, huge, fractional, reversed, overlapping, out-of-bounds offsets */
    {"offset_negative", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 0, 1},
    {"offset_fraction", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0.5,1.5]}}", 0, 2},
    {"offset_huge", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", 0, 1},
    {"offset_inf", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1e999]}}", 0, 1},
    {"offset_2p64", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[18446744073709551615,0]}}", 0, 1},
    {"offset_wraps", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[9007199254740992,9007199254740993]}}", 0, 1},
    {"reversed", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4},
    {"beyond_data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8},
    {"overlap", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", 0, 6},
    {"same_range", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                   "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}", 0, 4},
    {"empty_inside_other", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                           "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}", 0, 4},
    {"hole", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 0, 4},
    {"trailing_data", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 0, 6},
    /* shape products overflowing size_t, dtype and size disagreeing */
    {"shape_overflow_f64", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 0, 8},
    {"shape_overflow_u8", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, 0},
    {"shape_overflow_by_dtype", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0, 0},
    {"shape_overflow_three", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2097152,2097152,4194304],\"data_offsets\":[0,0]}}", 0, 0},
    {"size_mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0, 4},
    {"dtype_mismatch", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4},
    /* not a JSON object, or not JSON */
    {"bad_json", "{\"w\": {\"dtype\": \"F32\", ", 0, 0},
    {"array", "[1, 2]", 0, 0},
    {"string", "\"w\"", 0, 0},
    {"number", "8", 0, 0},
    {"null", "null", 0, 0},
    {"empty", "        ", 0, 0},
    {"trailing_bytes", "{} {}", 0, 0},
    {"trailing_garbage", "{\"w\":" T1 "}x", 0, 1},
    /* NUL and control bytes in names and values */
    {"name_nul_escape", "{\"w\":" T1 ",\"w\\u0000x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2},
    {"meta_key_nul_escape", "{\"__metadata__\":{\"k\\u0000\":\"1\"}}", 0, 0},
    {"meta_value_nul_escape", "{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, 0},
    {"metadata_name_nul", "{\"__metadata__\\u0000\":{\"k\":\"1\"},\"__metadata__\":{}}", 0, 0},
    {"name_raw_nul", "{\"w\0x\":" T1 "}", 7 + sizeof T1, 1},
    {"raw_nul_outside", "{\"w\":" T1 "}\0", 6 + sizeof T1, 1},
    {"name_raw_newline", "{\"w\nx\":" T1 "}", 0, 1},
    {"name_empty", "{\"\":" T1 "}", 0, 1},
    {"name_too_long", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":" T1 "}", 0, 1},
};

static void test_crafted_headers(void)
{
    for (size_t i = 0; i < sizeof crafted / sizeof crafted[0]; i++) {
        mx_status s = read_crafted(crafted[i].name, crafted[i].header, crafted[i].header_len, crafted[i].data_len);
        CHECK(s == MX_ERR_FORMAT);
        if (s != MX_ERR_FORMAT) fprintf(stderr, "case %s: status %d, expected a format error\n", crafted[i].name, (int)s);
        CHECK(strstr(mx_error_message(), crafted[i].name) != NULL);
    }
}

/* Deep nesting: beyond cJSON's limit a parse error, within it a type error;
 * neither may exhaust the stack. */
static void test_deep_nesting(void)
{
    const size_t depths[] = {900, 200000};
    for (size_t k = 0; k < 2; k++) {
        size_t depth = depths[k];
        char *h = malloc(2 * depth + 16);
        size_t n = 0;
        n += (size_t)sprintf(h + n, "{\"w\":");
        for (size_t i = 0; i < depth; i++) h[n++] = '[';
        for (size_t i = 0; i < depth; i++) h[n++] = ']';
        h[n++] = '}';
        h[n] = 0;
        CHECK(read_crafted(k ? "deep_200000" : "deep_900", h, n, 0) == MX_ERR_FORMAT);
        free(h);
    }
}

/* Files the stricter reader must still take. */
static void test_accepted_headers(void)
{
    /* An empty tensor where another begins (sorted before it whatever the order). */
    CHECK_OK(read_crafted("empty_at_start",
                          "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                          "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
                          "\"y\":{\"dtype\":\"U8\",\"shape\":[0,9007199254740992],\"data_offsets\":[4,4]}}",
                          0, 4));
    /* A backslash escaped before "u0000" is text, not a NUL; padding spaces after the object. */
    CHECK_OK(read_crafted("escaped_backslash", "{\"__metadata__\":{\"k\":\"\\\\u0000\",\"e\":\"\"},\"w\":" T1 "}   \n", 0, 1));
    CHECK_OK(read_crafted("only_metadata", "{\"__metadata__\":{}}", 0, 0));
    CHECK_OK(read_crafted("nothing", "{}", 0, 0));
}

static void test_corrupt_files(void)
{
    char path[4200];
    /* Header length pointing past the end of the file (a truncated file). */
    snprintf(path, sizeof path, "%s/truncated.safetensors", g_tmp);
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
    snprintf(path, sizeof path, "%s/absent.safetensors", g_tmp);
    CHECK(mx_safetensors_read(path, &st) == MX_ERR_IO);
    CHECK(strstr(mx_error_message(), "absent.safetensors") != NULL);
}

int main(void)
{
    make_temp_root_for("safetensors");
    test_round_trip();
    test_corrupt_files();
    test_crafted_headers();
    test_deep_nesting();
    test_accepted_headers();
    remove_tree(g_tmp);
    CHECK_DONE();
}

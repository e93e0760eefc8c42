/* The .pt reader (zip_reader.h, torch_pickle.h, weights_file.h) on files
 * built here byte by byte, each breaking one rule, and the mapping of a
 * state dict onto a model (weights_import.h): names, shapes, dtypes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/weights_file.h"
#include "mixreg/weights_import.h"
#include "mixreg/zip_reader.h"
#include "torch_pt_builder.h"

static const float W[2] = {1.5f, -2.25f};

/* Parses an archive of data.pkl = pickle and data/0 = storage; returns the status, the message in `message`. */
static mx_status parse(const pt_buf *pickle, const void *storage, size_t storage_size, int bad_crc, int method,
                       mx_weights_file *wf)
{
    pt_entry e[2] = {{"arch/data.pkl", pickle->b, pickle->n, 0, 0},
                     {"arch/data/0", storage, storage_size, method, bad_crc}};
    pt_buf z = pt_zip(e, 2);
    return mx_weights_file_parse_pt("crafted.pt", z.b, z.n, wf);  /* takes z.b */
}

static int refused(mx_status st, const char *words)
{
    if (st == MX_OK) return 0;
    if (!strstr(mx_error_message(), words)) {
        fprintf(stderr, "  error '%s' does not say '%s'\n", mx_error_message(), words);
        return 0;
    }
    return 1;
}

static void test_valid(void)
{
    pt_buf p = pt_simple_pickle();
    mx_weights_file wf;
    CHECK_OK(parse(&p, W, sizeof W, 0, 0, &wf));
    CHECK(wf.count == 1 && !strcmp(wf.tensors[0].name, "w") && wf.tensors[0].dtype == MX_DTYPE_F32);
    CHECK(wf.tensors[0].ndim == 1 && wf.tensors[0].shape[0] == 2 && wf.tensors[0].nbytes == 8);
    float got[2];
    memcpy(got, wf.tensors[0].data, sizeof got);
    CHECK(got[0] == W[0] && got[1] == W[1]);
    mx_weights_file_free(&wf);
    free(p.b);
}

/* A training checkpoint: {"epoch": 3, "acc": 0.5, "state_dict": {...}}, the storage a view at offset 1. */
static void test_checkpoint_dict(void)
{
    pt_buf p = {0};
    pt_byte(&p, 0x80);
    pt_byte(&p, 2);
    pt_byte(&p, '}');
    pt_byte(&p, '(');
    pk_str(&p, "epoch");
    pk_int(&p, 3);
    pk_str(&p, "acc");
    pt_byte(&p, 'G');
    pt_le(&p, 0x3FE0000000000000ull, 8);
    pk_str(&p, "state_dict");
    pt_byte(&p, '}');
    pt_byte(&p, '(');
    pk_str(&p, "module.v");
    pk_tensor1d(&p, "FloatStorage", "0", 2, 1, 1, 1);
    pt_byte(&p, 'u');
    pt_byte(&p, 'u');
    pt_byte(&p, '.');
    mx_weights_file wf;
    CHECK_OK(parse(&p, W, sizeof W, 0, 0, &wf));
    CHECK(wf.count == 1 && !strcmp(wf.tensors[0].name, "module.v") && wf.tensors[0].nbytes == 4);
    float v;
    if (wf.count == 1) {
        memcpy(&v, wf.tensors[0].data, 4);
        CHECK(v == W[1]);
    }
    mx_weights_file_free(&wf);
    free(p.b);
}

/* One pickle variant per rule, each refused with words that name the problem. */
static void test_hostile_pickles(void)
{
    struct {
        const char *what, *words;
        pt_buf p;
    } cases[8];
    size_t n = 0;
    /* os.system("...") is never called: the global itself is refused. */
    cases[n].what = "global", cases[n].words = "refusing the global 'os.system'";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, 0x80), pt_byte(&cases[n].p, 2), pk_global(&cases[n].p, "os", "system");
    pk_str(&cases[n].p, "true"), pt_byte(&cases[n].p, 0x85), pt_byte(&cases[n].p, 'R'), pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "opcode", cases[n].words = "opcode 0x69";  /* INST */
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, 0x80), pt_byte(&cases[n].p, 2), pt_byte(&cases[n].p, 'i'), pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "truncated", cases[n].words = "no STOP";
    cases[n].p = pt_simple_pickle();
    cases[n].p.n -= 2;
    n++;
    cases[n].what = "memo", cases[n].words = "never stored";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, 0x80), pt_byte(&cases[n].p, 2), pt_byte(&cases[n].p, 'h'), pt_byte(&cases[n].p, 7);
    pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "string length", cases[n].words = "runs past the end";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, 'X'), pt_le(&cases[n].p, 0xFFFFFFF0u, 4), pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "not a tensor", cases[n].words = "is not a tensor";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, '}'), pk_str(&cases[n].p, "w"), pk_int(&cases[n].p, 5), pt_byte(&cases[n].p, 's');
    pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "storage class", cases[n].words = "torch.ByteStorage";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, '}'), pk_str(&cases[n].p, "w");
    pk_tensor1d(&cases[n].p, "ByteStorage", "0", 2, 0, 2, 1);
    pt_byte(&cases[n].p, 's'), pt_byte(&cases[n].p, '.');
    n++;
    cases[n].what = "empty stack", cases[n].words = "SETITEM";
    cases[n].p = (pt_buf){0};
    pt_byte(&cases[n].p, 's'), pt_byte(&cases[n].p, '.');
    n++;
    for (size_t i = 0; i < n; i++) {
        mx_weights_file wf;
        mx_status st = parse(&cases[i].p, W, sizeof W, 0, 0, &wf);
        if (st == MX_OK) mx_weights_file_free(&wf);
        CHECK(refused(st, cases[i].words));
        if (st == MX_OK || !strstr(mx_error_message(), "crafted.pt")) fprintf(stderr, "case %s\n", cases[i].what);
        free(cases[i].p.b);
    }
}

/* Storages and tensors that do not fit each other. */
static void test_hostile_tensors(void)
{
    struct {
        const char *words;
        uint32_t numel, offset, size, stride;
        size_t bytes;
    } cases[] = {
        {"holds 4 bytes, not the 8 declared", 2, 0, 2, 1, 4},
        {"outside its storage", 2, 1, 2, 1, 8},
        {"not contiguous", 2, 0, 2, 2, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pt_buf p = {0};
        pt_byte(&p, '}'), pk_str(&p, "w");
        pk_tensor1d(&p, "FloatStorage", "0", cases[i].numel, cases[i].offset, cases[i].size, cases[i].stride);
        pt_byte(&p, 's'), pt_byte(&p, '.');
        mx_weights_file wf;
        mx_status st = parse(&p, W, cases[i].bytes, 0, 0, &wf);
        if (st == MX_OK) mx_weights_file_free(&wf);
        CHECK(refused(st, cases[i].words));
        free(p.b);
    }
}

static void test_hostile_archives(void)
{
    pt_buf p = pt_simple_pickle();
    mx_weights_file wf;
    CHECK(refused(parse(&p, W, sizeof W, 1, 0, &wf), "CRC-32"));
    CHECK(refused(parse(&p, W, sizeof W, 0, 8, &wf), "compressed"));
    /* Cut anywhere, the archive is refused cleanly (ASan checks the reads). */
    pt_entry e[2] = {{"arch/data.pkl", p.b, p.n, 0, 0}, {"arch/data/0", W, sizeof W, 0, 0}};
    pt_buf whole = pt_zip(e, 2);
    int all_refused = 1;
    for (size_t cut = 0; cut < whole.n; cut++) {
        uint8_t *copy = malloc(cut + 1);
        memcpy(copy, whole.b, cut);
        if (mx_weights_file_parse_pt("cut.pt", copy, cut, &wf) == MX_OK) {
            all_refused = 0;
            mx_weights_file_free(&wf);
        }
    }
    CHECK(all_refused);
    /* A directory offset pointing past the file. */
    uint8_t *bad = malloc(whole.n);
    memcpy(bad, whole.b, whole.n);
    bad[whole.n - 6] = 0xFF;
    bad[whole.n - 3] = 0x7F;  /* the offset of the central directory, far past the end */
    CHECK(refused(mx_weights_file_parse_pt("bad.pt", bad, whole.n, &wf), "outside the archive"));
    /* Two entries of one name. */
    pt_entry twice[3] = {e[0], e[1], e[1]};
    pt_buf dup = pt_zip(twice, 3);
    CHECK(refused(mx_weights_file_parse_pt("dup.pt", dup.b, dup.n, &wf), "appears twice"));
    /* No data.pkl. */
    pt_buf none = pt_zip(e + 1, 1);
    CHECK(refused(mx_weights_file_parse_pt("none.pt", none.b, none.n, &wf), "without a data.pkl"));
    free(whole.b);
    free(p.b);
}

/* A state dict of lenet5 (mixreg's names are PyTorch's), made from a model's own table. */
typedef struct {
    mx_weights_file wf;
    mx_st_tensor tensors[16];
    float *values;
} fake_dict;

static void fake_lenet5(fake_dict *d, const char *prefix)
{
    mx_model_spec spec = {.arch = "lenet5", .in_channels = 1, .in_height = 28, .in_width = 28, .num_classes = 10};
    mx_model *m;
    memset(d, 0, sizeof *d);
    if (mx_model_create(&spec, 0, &m) != MX_OK) abort();
    const mx_param_info *table;
    size_t count = mx_model_param_tensors(m, &table);
    d->values = malloc(mx_model_param_count(m) * sizeof(float));
    for (size_t i = 0; i < mx_model_param_count(m); i++) d->values[i] = (float)(i % 97) * 0.01f - 0.3f;
    for (size_t i = 0; i < count && i < 16; i++) {
        mx_st_tensor *t = &d->tensors[i];
        snprintf(t->name, sizeof t->name, "%s%s", prefix, table[i].name);
        t->dtype = MX_DTYPE_F32;
        t->ndim = table[i].ndim;
        memcpy(t->shape, table[i].shape, t->ndim * sizeof(size_t));
        t->nbytes = table[i].numel * sizeof(float);
        t->data = d->values + table[i].offset;
    }
    d->wf.count = count;
    d->wf.tensors = d->tensors;
    d->wf.file_size = mx_model_param_count(m) * sizeof(float) + 4096;
    mx_model_free(m);
}

static mx_status import(fake_dict *d, int allow_extra, mx_model **out)
{
    mx_import_options opt = {.arch = "lenet5", .height = 28, .width = 28, .allow_extra = allow_extra};
    return mx_weights_import(&d->wf, &opt, out);
}

static void test_import(void)
{
    fake_dict d;
    mx_model *m = NULL;
    fake_lenet5(&d, "module.");  /* DataParallel's prefix is dropped */
    CHECK_OK(import(&d, 0, &m));
    CHECK(m && mx_model_get_spec(m)->num_classes == 10 && mx_model_get_spec(m)->in_channels == 1);
    if (m) CHECK(!memcmp(mx_model_params(m), d.values, mx_model_param_count(m) * sizeof(float)));
    mx_model_free(m);

    /* Half precision in, float32 out: values exact in F16 and BF16 come through unchanged. */
    size_t n0 = d.tensors[0].nbytes / 4;
    uint16_t *half = malloc(n0 * 2), *bf = malloc(n0 * 2);
    static const uint16_t h_bits[4] = {0x3C00, 0xC000, 0x0001, 0x3555}; /* 1, -2, 2^-24 (subnormal), 0.333251953125 */
    static const float h_vals[4] = {1.0f, -2.0f, 5.9604644775390625e-8f, 0.333251953125f};
    for (size_t i = 0; i < n0; i++) half[i] = h_bits[i % 4], bf[i] = (uint16_t)(i % 2 ? 0xBF80 : 0x4040); /* -1, 3 */
    mx_st_tensor saved = d.tensors[0];
    d.tensors[0].dtype = MX_DTYPE_F16, d.tensors[0].nbytes = n0 * 2, d.tensors[0].data = half;
    CHECK_OK(import(&d, 0, &m));
    int exact = m != NULL;
    for (size_t i = 0; exact && i < n0; i++) exact = mx_model_params(m)[i] == h_vals[i % 4];
    CHECK(exact);
    mx_model_free(m);
    d.tensors[0].dtype = MX_DTYPE_BF16, d.tensors[0].data = bf;
    CHECK_OK(import(&d, 0, &m));
    exact = m != NULL;
    for (size_t i = 0; exact && i < n0; i++) exact = mx_model_params(m)[i] == (i % 2 ? -1.0f : 3.0f);
    CHECK(exact);
    mx_model_free(m);
    d.tensors[0] = saved;

    /* Each rule. */
    d.tensors[1].shape[0]++;
    CHECK(refused(import(&d, 0, &m), "has shape [7], the model's is [6]"));
    d.tensors[1].shape[0]--;
    d.tensors[1].dtype = MX_DTYPE_I32;
    CHECK(refused(import(&d, 0, &m), "not floating point"));
    d.tensors[1].dtype = MX_DTYPE_F32;
    d.values[0] = NAN;
    CHECK(refused(import(&d, 0, &m), "NaN"));
    d.values[0] = 0;
    d.wf.count--;  /* the last tensor: the classifier's bias */
    CHECK(refused(import(&d, 0, &m), "is missing"));
    d.wf.count++;
    snprintf(d.tensors[d.wf.count].name, sizeof d.tensors[0].name, "aux_head.weight");
    d.tensors[d.wf.count] = d.tensors[1];
    snprintf(d.tensors[d.wf.count].name, sizeof d.tensors[0].name, "aux_head.weight");
    d.wf.count++;
    CHECK(refused(import(&d, 0, &m), "'aux_head.weight' (--allow-extra"));
    CHECK_OK(import(&d, 1, &m));
    mx_model_free(m);
    memmove(d.tensors[d.wf.count - 1].name, d.tensors[1].name + strlen("module."),
            strlen(d.tensors[1].name) - strlen("module.") + 1);
    CHECK(refused(import(&d, 1, &m), "both stand for"));
    free(half);
    free(bf);
    free(d.values);
}

/* Files torch.save wrote (PyTorch 1.13; kept as the fuzz target's seeds): a
 * state dict with a float16 tensor and a batch-norm counter, and a training
 * checkpoint whose tensors are a view at offset 1 and a bfloat16 copy. */
static void test_real_files(void)
{
    const char *src = getenv("MIXREG_SOURCE_DIR");
    char path[4096];
    mx_weights_file wf;
    snprintf(path, sizeof path, "%s/tests/fuzz/seeds/fuzz_torch_pt/state-dict.pt", src ? src : ".");
    CHECK_OK(mx_weights_file_read(path, &wf));
    CHECK(wf.count == 3);
    if (wf.count == 3) {
        float w[3];
        uint16_t h[4];
        int64_t n;
        memcpy(w, wf.tensors[0].data, sizeof w);
        memcpy(h, wf.tensors[1].data, sizeof h);
        memcpy(&n, wf.tensors[2].data, sizeof n);
        CHECK(!strcmp(wf.tensors[0].name, "w") && wf.tensors[0].dtype == MX_DTYPE_F32 && w[0] == 0 && w[2] == 2);
        CHECK(!strcmp(wf.tensors[1].name, "h") && wf.tensors[1].dtype == MX_DTYPE_F16 && wf.tensors[1].ndim == 2 &&
              h[0] == 0x3C00 && h[3] == 0x3C00);
        CHECK(!strcmp(wf.tensors[2].name, "bn.num_batches_tracked") && wf.tensors[2].dtype == MX_DTYPE_I64 &&
              wf.tensors[2].ndim == 0 && n == 5);
    }
    mx_weights_file_free(&wf);
    snprintf(path, sizeof path, "%s/tests/fuzz/seeds/fuzz_torch_pt/checkpoint.pt", src ? src : ".");
    CHECK_OK(mx_weights_file_read(path, &wf));
    CHECK(wf.count == 2);
    if (wf.count == 2) {
        float a[2];
        uint16_t b[6];
        memcpy(a, wf.tensors[0].data, sizeof a);
        memcpy(b, wf.tensors[1].data, sizeof b);
        CHECK(!strcmp(wf.tensors[0].name, "module.a") && a[0] == 1 && a[1] == 2);
        CHECK(!strcmp(wf.tensors[1].name, "module.b") && wf.tensors[1].dtype == MX_DTYPE_BF16 && b[5] == 0x40A0); /* 5 */
    }
    mx_weights_file_free(&wf);
}

static void test_names(void)
{
    char buf[128];
    CHECK(mx_import_canonical_name("module.layer1.0.conv1.weight", buf, sizeof buf) && !strcmp(buf, "layer1.0.conv1.weight"));
    CHECK(mx_import_canonical_name("_orig_mod.fc.bias", buf, sizeof buf) && !strcmp(buf, "fc.bias"));
    CHECK(mx_import_canonical_name("head.fc.weight", buf, sizeof buf) && !strcmp(buf, "fc.weight"));
    CHECK(!mx_import_canonical_name("module.bn1.num_batches_tracked", buf, sizeof buf));
}

int main(void)
{
    test_valid();
    test_checkpoint_dict();
    test_hostile_pickles();
    test_hostile_tensors();
    test_hostile_archives();
    test_import();
    test_real_files();
    test_names();
    CHECK_DONE();
}

/* The convolutional architectures (src/nn/cnn*.c): parameter counts and the
 * state_dict tables of the PyTorch modules (tests/fixtures/cnn_state_dicts.txt),
 * one resnet20 training
 * step against PyTorch (tests/fixtures/resnet20_step.safetensors, both from
 * tests/make_cnn_fixtures.py; that and the other architectures' steps on both
 * backends), training vs eval mode, batch-norm buffers
 * through mx_run_save/mx_run_load, and bit-for-bit determinism. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_kinks.h"
#include "cnn_test_data.h"
#include "mixreg/fileio.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"
#include "mixreg/run.h"
#include "mixreg/safetensors.h"
#include "mixreg/step.h"
#include "nn/cnn_cpu.h"
#include "nn/cnn_internal.h"

/* The backend make() plans on: the reference layers, except for the PyTorch
 * steps, which run on both. */
static mx_backend g_backend = MX_BACKEND_REF;

static mx_model *make(const char *arch, size_t c, size_t h, size_t w, size_t classes, size_t batch)
{
    return make_model(arch, c, h, w, classes, batch, g_backend, MX_PRECISION_FP32, 512);
}

/* ---- parameter counts and the PyTorch state_dict tables ---- */

static void test_param_counts(void)
{
    static const struct {
        const char *arch;
        size_t c, h, w, classes, params, bn_floats;
    } cases[] = {
        /* PyTorch's sum(p.numel()) (tests/make_cnn_fixtures.py prints them). */
        {"mlp", 1, 28, 28, 10, 669706, 0},
        {"lenet5", 1, 28, 28, 10, 61706, 0},
        {"lenet5", 3, 32, 32, 100, 90776, 0},
        {"resnet20", 1, 28, 28, 10, 272186, 1568},
        {"resnet32", 1, 28, 28, 10, 466618, 0},
        {"resnet32", 3, 32, 32, 10, 466906, 0},
        {"resnet56", 1, 28, 28, 10, 855482, 0},
        {"resnet110", 1, 28, 28, 10, 1730426, 0},
        {"preact18", 1, 28, 28, 10, 11169994, 6784},
        {"wrn-16-4", 3, 32, 32, 10, 2748890, 0},
        {"wrn-40-2", 1, 28, 28, 10, 2243258, 0},
        {"wrn-28-10", 1, 28, 28, 10, 36478906, 0},
        {"wrn-28-10", 3, 32, 32, 10, 36479194, 0},
        {"resnet50", 1, 28, 28, 10, 23522250, 0},
        {"resnet50", 3, 224, 224, 1000, 25557032, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mx_model *m = make(cases[k].arch, cases[k].c, cases[k].h, cases[k].w, cases[k].classes, 1);
        if (!m) continue;
        size_t got = mx_model_param_count(m);
        printf("  %-10s %zux%zux%zu %4zu classes: %zu parameters\n", cases[k].arch, cases[k].c, cases[k].h, cases[k].w,
               cases[k].classes, got);
        CHECK(got == cases[k].params);
        if (cases[k].bn_floats) {
            const mx_buffer_info *b;
            size_t nb = mx_model_buffer_tensors(m, &b), floats = 0;
            for (size_t i = 0; i < nb; i++) floats += b[i].dtype == MX_BUFFER_F32 ? b[i].numel : 0;
            CHECK(floats == cases[k].bn_floats);
        }
        mx_model_free(m);
    }
}

static void fixture_path(char *path, size_t cap, const char *name)
{
    const char *src = getenv("MIXREG_SOURCE_DIR");
    snprintf(path, cap, "%s/tests/fixtures/%s", src ? src : ".", name);
}

/* One line "p|b NAME F32|I64 NDIM D0 ..." against a table entry. */
static int entry_matches(const char *line, const char *name, int is_i64, size_t ndim, const size_t *shape)
{
    char kind, fname[128], dtype[8];
    int used = 0;
    size_t fndim;
    if (sscanf(line, "%c %127s %7s %zu%n", &kind, fname, dtype, &fndim, &used) != 4) return 0;
    if (strcmp(fname, name) || fndim != ndim || strcmp(dtype, is_i64 ? "I64" : "F32")) return 0;
    const char *p = line + used;
    for (size_t d = 0; d < ndim; d++) {
        char *end;
        unsigned long long v = strtoull(p, &end, 10);
        if (end == p || v != shape[d]) return 0;
        p = end;
    }
    return 1;
}

static void check_state_dict(mx_model *m, char **lines, size_t count, const char *arch)
{
    const mx_param_info *params;
    const mx_buffer_info *buffers;
    size_t np = mx_model_param_tensors(m, &params), nb = mx_model_buffer_tensors(m, &buffers), ip = 0, ib = 0;
    int ok = 1;
    for (size_t i = 0; i < count && ok; i++) {
        if (lines[i][0] == 'p') {
            ok = ip < np && entry_matches(lines[i], params[ip].name, 0, params[ip].ndim, params[ip].shape);
            ip++;
        } else {
            ok = ib < nb && entry_matches(lines[i], buffers[ib].name, buffers[ib].dtype == MX_BUFFER_I64,
                                          buffers[ib].ndim, buffers[ib].shape);
            ib++;
        }
        if (!ok) fprintf(stderr, "%s: PyTorch has '%s', mixreg's table differs there\n", arch, lines[i]);
    }
    if (ok && (ip != np || ib != nb)) {
        fprintf(stderr, "%s: mixreg has %zu parameters / %zu buffers, PyTorch %zu / %zu\n", arch, np, nb, ip, ib);
        ok = 0;
    }
    CHECK(ok);
}

/* mx_model_forward_flops against counts made by hand: 2 x the multiply-adds
 * of the convolutions and dense layers (resnet20 on CIFAR: 40,813,184, the
 * "40.81M" usually quoted for it). */
static void test_forward_flops(void)
{
    static const struct {
        const char *arch;
        size_t c, h, w, classes;
        double flops;
    } cases[] = {
        {"mlp", 1, 28, 28, 10, 2.0 * (784 * 512 + 512 * 512 + 512 * 10)},
        /* 6x1x5x5 on 28x28, 16x6x5x5 on 10x10, then 400-120-84-10 */
        {"lenet5", 1, 28, 28, 10, 2.0 * (150 * 784 + 2400 * 100 + 400 * 120 + 120 * 84 + 84 * 10)},
        {"resnet20", 3, 32, 32, 10, 2.0 * 40813184},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mx_model *m = make(cases[k].arch, cases[k].c, cases[k].h, cases[k].w, cases[k].classes, 1);
        if (!m) continue;
        printf("  %-10s %zux%zux%zu: %.0f forward FLOPs a sample\n", cases[k].arch, cases[k].c, cases[k].h, cases[k].w,
               mx_model_forward_flops(m));
        CHECK(mx_model_forward_flops(m) == cases[k].flops);
        mx_model_free(m);
    }
}

static void test_state_dicts(void)
{
    char path[4096];
    fixture_path(path, sizeof path, "cnn_state_dicts.txt");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char storage[4096][160];
    char *lines[4096];
    char header[160];
    int have_header = fgets(header, sizeof header, f) != NULL;
    size_t models = 0;
    while (have_header) {
        char arch[32];
        size_t c, h, w, classes, params;
        CHECK(sscanf(header, "model %31s %zu %zu %zu %zu %zu", arch, &c, &h, &w, &classes, &params) == 6);
        size_t count = 0;
        have_header = 0;
        while (fgets(storage[count], sizeof storage[count], f)) {
            if (!strncmp(storage[count], "model ", 6)) {
                memcpy(header, storage[count], sizeof header);
                have_header = 1;
                break;
            }
            lines[count] = storage[count];
            if (count < 4095) count++;
        }
        mx_model *m = make(arch, c, h, w, classes, 1);
        if (m) {
            CHECK(mx_model_param_count(m) == params);
            check_state_dict(m, lines, count, arch);
            mx_model_free(m);
        }
        models++;
    }
    fclose(f);
    printf("  %zu state_dict tables match PyTorch's names, order and shapes\n", models);
    CHECK(models >= 7);
}

/* ---- training steps against PyTorch ---- */

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* tests/make_cnn_fixtures.py's weight_value(): a fixed function of the name. */
static void weight_value(const char *name, size_t ndim, const size_t *shape, size_t numel, float *out)
{
    uint32_t seed = fnv1a(name);
    size_t len = strlen(name);
#define ENDS(s) (len >= strlen(s) && !strcmp(name + len - strlen(s), s))
    for (size_t i = 0; i < numel; i++) {
        uint32_t x = (uint32_t)i * 0x9E3779B1u + seed;
        x ^= x >> 16, x *= 0x85EBCA6Bu, x ^= x >> 13, x *= 0xC2B2AE35u, x ^= x >> 16;
        double u = (double)x / 4294967296.0, v;
        if (ENDS("running_mean") || ENDS(".bias")) v = 0.1 * (2.0 * u - 1.0);
        else if (ENDS("running_var")) v = 1.0 + 0.5 * u;
        else if (ENDS(".weight") && ndim == 1) v = 1.0 + 0.2 * (2.0 * u - 1.0);
        else v = (2.0 * u - 1.0) * (1.0 / sqrt((double)(numel / shape[0])));
        out[i] = (float)v;
    }
#undef ENDS
}

static mx_safetensors g_step;
static char g_prefix[32];

static const mx_st_tensor *ref(const char *name)
{
    char key[200];
    snprintf(key, sizeof key, "%s%s", g_prefix, name);
    const mx_st_tensor *t = mx_safetensors_find(&g_step, key);
    if (!t) fprintf(stderr, "fixture tensor %s missing\n", key);
    CHECK(t != NULL);
    return t;
}

/* |got - ref| <= rtol |ref| + 1e-5 max|ref| elementwise (the floor for entries that cancel). */
static void compare(const char *name, const float *got, size_t count, double rtol)
{
    const mx_st_tensor *t = ref(name);
    if (!t) return;
    CHECK(t->dtype == MX_DTYPE_F32 && t->nbytes == count * sizeof(float));
    if (t->nbytes != count * sizeof(float)) return;
    float *r = malloc(t->nbytes);
    memcpy(r, t->data, t->nbytes);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(r[i]) > scale) scale = fabs(r[i]);
    int ok = 1;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - r[i]);
        if (!(d <= rtol * fabs(r[i]) + 1e-5 * scale)) ok = 0;
        double rel = d / (fabs(r[i]) + 1e-2 * scale + 1e-30);
        if (rel > worst) worst = rel;
    }
    if (!ok) fprintf(stderr, "%s%s differs from PyTorch (worst relative %.2e)\n", g_prefix, name, worst);
    CHECK(ok);
    free(r);
}

/* Compares the parameter gradients the fixture holds under "<kind>.NAME"
 * (all of them, or those of the smaller tensors); returns how many. */
static size_t compare_grads(mx_model *m, const char *kind)
{
    const mx_param_info *pt;
    size_t np = mx_model_param_tensors(m, &pt), count = 0;
    /* Gradients through mixreg's Winograd training kernels (cpu backend):
     * the transforms' rounding, up to 1e-3 on these few-sample batches'
     * deepest layers, as test_cnn_backends' GRAD_RTOL_WINOGRAD. */
    size_t wino = 0;
    if (mx_model_get_spec(m)->backend == MX_BACKEND_CPU) {
        const cnn_graph *g = ((const struct mx_model *)m)->impl;
        for (size_t k = 0; k < g->num_nodes; k++) wino += cnn_cpu_node_of(g, k)->train_wino != CNN_WINO_NONE;
    }
    const double rtol = wino ? 1.5e-3 : 1e-4;
    char name[200];
    for (size_t i = 0; i < np; i++) {
        snprintf(name, sizeof name, "%s%s.%s", g_prefix, kind, pt[i].name);
        if (!mx_safetensors_find(&g_step, name)) continue;
        compare(name + strlen(g_prefix), mx_model_grads(m) + pt[i].offset, pt[i].numel, rtol);
        count++;
    }
    return count;
}

/* The fixture's step: weights from weight_value(), num_batches_tracked 3;
 * train-mode logits, loss, gradients (when the fixture has them) and the
 * buffers after the forward; then eval-mode logits, input gradient and (when
 * the fixture has them) parameter gradients. train_rtol loosens the train-mode
 * forward for resnet50, whose float32 and float64 results drift apart deep in
 * the network (~1e-3 by layer4, in PyTorch too). */
static void check_step(const char *arch, size_t c, size_t h, size_t w, size_t classes, size_t n, double train_rtol)
{
    const size_t d = c * h * w;
    mx_model *m = make(arch, c, h, w, classes, n);
    if (!m) return;
    const mx_param_info *pt;
    const mx_buffer_info *bt;
    size_t np = mx_model_param_tensors(m, &pt), nb = mx_model_buffer_tensors(m, &bt);
    for (size_t i = 0; i < np; i++)
        weight_value(pt[i].name, pt[i].ndim, pt[i].shape, pt[i].numel, mx_model_params(m) + pt[i].offset);
    for (size_t i = 0; i < nb; i++) {
        if (bt[i].dtype == MX_BUFFER_F32) weight_value(bt[i].name, bt[i].ndim, bt[i].shape, bt[i].numel, bt[i].data);
        else *(int64_t *)bt[i].data = 3;
    }
    const mx_st_tensor *tx = ref("x"), *ty = ref("y"), *tl = ref("loss");
    if (!tx || !ty || !tl || tx->nbytes != n * d * sizeof(float) || ty->nbytes != n * classes * sizeof(float)) {
        CHECK(!"fixture shapes");
        mx_model_free(m);
        return;
    }
    float *x = malloc(tx->nbytes), *y = malloc(ty->nbytes), *dl = malloc(ty->nbytes), *dx = malloc(tx->nbytes);
    memcpy(x, tx->data, tx->nbytes);
    memcpy(y, ty->data, ty->nbytes);
    mx_model_set_training(m, 1);
    const float *logits = mx_model_forward(m, x, n);
    compare("logits", logits, n * classes, train_rtol);
    double loss = mx_softmax_xent(logits, y, n, classes, dl);
    float ref_loss;
    memcpy(&ref_loss, tl->data, sizeof ref_loss);
    CHECK_NEAR(loss, ref_loss, 0.1 * train_rtol * fabs(ref_loss));
    /* On the cpu backend: the ReLUs the same forward on the reference layers
     * (whose float32 arithmetic sits on PyTorch's side of every kink here)
     * puts on the other side (cnn_kinks.h); there the training gradients
     * are not compared. Its small convolutions' Winograd rounding on AVX2
     * puts one of preact18's at -1e-5. */
    size_t kinks = 0;
    if (g_backend == MX_BACKEND_CPU) {
        g_backend = MX_BACKEND_REF;
        mx_model *r = make(arch, c, h, w, classes, n);
        g_backend = MX_BACKEND_CPU;
        if (r) {
            CHECK_OK(mx_model_copy_state(r, m));
            mx_model_set_training(r, 1);
            mx_model_forward(r, x, n);
            kinks = relu_flips(r, m, n);
            mx_model_free(r);
        }
        CHECK(kinks <= 2);
    }
    mx_model_backward(m, dl, n);
    size_t grads = kinks ? 0 : compare_grads(m, "grad");
    if (kinks) printf("  %-9s %zu activation(s) across a ReLU's kink from the reference layers: training gradients "
                      "not compared\n", arch, kinks);
    char name[200];
    for (size_t i = 0; i < nb; i++) {
        snprintf(name, sizeof name, "buffer.%s", bt[i].name);
        if (bt[i].dtype == MX_BUFFER_F32) {
            compare(name, bt[i].data, bt[i].numel, 0.1 * train_rtol);
            /* Eval mode then starts from PyTorch's running statistics exactly. */
            const mx_st_tensor *t = ref(name);
            if (t && t->nbytes == bt[i].numel * sizeof(float)) memcpy(bt[i].data, t->data, t->nbytes);
        } else {
            const mx_st_tensor *t = ref(name);
            int64_t v = -1;
            if (t && t->nbytes == sizeof v) memcpy(&v, t->data, sizeof v);
            CHECK(v == 4 && *(int64_t *)bt[i].data == 4);
        }
    }
    mx_model_set_training(m, 0);
    logits = mx_model_forward(m, x, n);
    compare("eval_logits", logits, n * classes, 1e-4);
    mx_softmax_xent(logits, y, n, classes, dl);
    mx_model_backward_input(m, dl, n, dx);
    compare("eval_dx", dx, n * d, 1e-4);
    grads += compare_grads(m, "eval_grad");
    /* all for resnet20, most otherwise (unless the training ones were left out) */
    CHECK(kinks || grads * 3 >= np * 2 || (grads >= 30 && 2 * grads >= np));
    printf("  %-9s %zux%zux%zu batch %zu, %s backend: logits, loss %.6f (PyTorch %.6f), %zu of %zu gradients, %zu "
           "buffers; eval-mode logits and input gradient\n",
           arch, c, h, w, n, mx_backend_name(g_backend), loss, ref_loss, grads, np, nb);
    free(x), free(y), free(dl), free(dx);
    mx_model_free(m);
}

/* tests/make_cnn_fixtures.py's STEP_CASES on the backend g_backend. On the cpu
 * backend resnet50 is left out: its eval-mode forward puts one activation of
 * layer2.3.bn1 at 4.5e-8 where float64 has 0, the other side of the ReLU's
 * kink, and the eval gradients below it then differ legitimately
 * (tests/test_cnn_backends.c compares the backends away from kinks). */
static void steps_against_pytorch(void)
{
    char path[4096];
    fixture_path(path, sizeof path, "resnet20_step.safetensors");
    CHECK_OK(mx_safetensors_read(path, &g_step));
    if (g_step.file) {
        g_prefix[0] = '\0';
        check_step("resnet20", 1, 28, 28, 10, 4, 1e-4);
        mx_safetensors_free(&g_step);
    }
    /* tests/make_cnn_fixtures.py's STEP_CASES. */
    static const struct {
        const char *arch;
        size_t c, h, w, classes, n;
        double train_rtol;
    } cases[] = {{"lenet5", 2, 16, 16, 5, 3, 1e-4}, {"preact18", 1, 12, 12, 10, 3, 1e-4},
                 {"wrn-16-2", 3, 16, 16, 10, 3, 1e-4}, {"resnet50", 3, 48, 48, 10, 2, 2e-2}};
    fixture_path(path, sizeof path, "cnn_steps.safetensors");
    CHECK_OK(mx_safetensors_read(path, &g_step));
    if (!g_step.file) return;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (g_backend == MX_BACKEND_CPU && !strcmp(cases[k].arch, "resnet50")) continue;
        snprintf(g_prefix, sizeof g_prefix, "%s.", cases[k].arch);
        check_step(cases[k].arch, cases[k].c, cases[k].h, cases[k].w, cases[k].classes, cases[k].n,
                   cases[k].train_rtol);
    }
    mx_safetensors_free(&g_step);
}

/* Both backends against PyTorch's float64 step, to the same tolerances. */
static void test_steps_against_pytorch(void)
{
    for (int b = 0; b < 2; b++) {
        g_backend = b ? MX_BACKEND_CPU : MX_BACKEND_REF;
        steps_against_pytorch();
    }
    g_backend = MX_BACKEND_REF;
}

/* ---- modes ---- */

static void snapshot_buffers(mx_model *m, unsigned char *dst)
{
    const mx_buffer_info *b;
    size_t nb = mx_model_buffer_tensors(m, &b);
    for (size_t i = 0; i < nb; i++) {
        memcpy(dst, b[i].data, buffer_bytes(&b[i]));
        dst += buffer_bytes(&b[i]);
    }
}

static size_t total_buffer_bytes(mx_model *m)
{
    const mx_buffer_info *b;
    size_t nb = mx_model_buffer_tensors(m, &b), total = 0;
    for (size_t i = 0; i < nb; i++) total += buffer_bytes(&b[i]);
    return total;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > w) w = fabs((double)a[i] - b[i]);
    return w;
}

static void test_modes(void)
{
    const size_t n = 4, d = 144, C = 3;
    mx_model *m = make("resnet20", 1, 12, 12, C, n);
    if (!m) return;
    mx_model_init_params(m, 9);
    CHECK(mx_model_is_training(m));
    mx_rng rng;
    mx_rng_init(&rng, 5, 0);
    float x[4 * 144], batch_logits[12], one[3];
    random_fill(&rng, x, n * d);
    size_t bytes = total_buffer_bytes(m);
    unsigned char *before = malloc(bytes), *after = malloc(bytes);
    const mx_buffer_info *b;
    size_t nb = mx_model_buffer_tensors(m, &b);
    CHECK(nb == 63 && b[2].dtype == MX_BUFFER_I64 && b[2].ndim == 0 && !strcmp(b[2].name, "b.num_batches_tracked"));

    /* Training: batch statistics; the running ones and the counters move. */
    snapshot_buffers(m, before);
    memcpy(batch_logits, mx_model_forward(m, x, n), sizeof batch_logits);
    snapshot_buffers(m, after);
    CHECK(memcmp(before, after, bytes) != 0);
    CHECK(*(int64_t *)b[2].data == 1);
    memcpy(one, mx_model_forward(m, x, 1), sizeof one);
    CHECK(max_diff(one, batch_logits, C) > 1e-3);  /* sample 0's logits depend on its batch */

    /* Eval: running statistics, nothing changes, each sample on its own. */
    mx_model_set_training(m, 0);
    CHECK(!mx_model_is_training(m));
    snapshot_buffers(m, before);
    memcpy(batch_logits, mx_model_forward(m, x, n), sizeof batch_logits);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(one, mx_model_forward(m, x + i * d, 1), sizeof one);
        double e = max_diff(one, batch_logits + i * C, C);
        if (e > worst) worst = e;
    }
    snapshot_buffers(m, after);
    CHECK(memcmp(before, after, bytes) == 0);
    CHECK(worst < 1e-5);
    CHECK(*(int64_t *)b[2].data == 2);
    free(before), free(after);
    mx_model_free(m);

    /* The MLP has no mode-dependent layer: the same bits either way, and no buffers. */
    mx_model_spec spec = {.arch = "mlp", .in_channels = 1, .in_height = 12, .in_width = 12, .num_classes = 3,
                          .num_hidden = 1, .hidden = {8}};
    CHECK_OK(mx_model_create(&spec, n, &m));
    mx_model_init_params(m, 1);
    CHECK(mx_model_buffer_tensors(m, &b) == 0);
    memcpy(batch_logits, mx_model_forward(m, x, n), sizeof batch_logits);
    mx_model_set_training(m, 0);
    CHECK(memcmp(batch_logits, mx_model_forward(m, x, n), sizeof batch_logits) == 0);
    mx_model_free(m);
}

/* ---- buffers through mx_run_save / mx_run_load ---- */

static void test_checkpoint_buffers(void)
{
    const size_t n = 2, d = 144, C = 3;
    mx_run run;
    memset(&run, 0, sizeof run);
    mx_train_config_default(&run.config);
    snprintf(run.config.model.arch, sizeof run.config.model.arch, "resnet20");
    run.config.model.backend = MX_BACKEND_REF;  /* as make()'s model: mx_run_load creates the model on it */
    run.model = make("resnet20", 1, 12, 12, C, n);
    if (!run.model) return;
    mx_model_init_params(run.model, 4);
    mx_rng rng;
    mx_rng_init(&rng, 8, 0);
    float x[2 * 144], logits[6];
    random_fill(&rng, x, n * d);
    mx_model_forward(run.model, x, n);
    mx_model_forward(run.model, x, n);  /* running statistics and counters away from their defaults */
    float mean = 0.25f, std = 2.0f;
    CHECK_OK(mx_normalizer_init(&run.normalizer, 1, &mean, &std));
    CHECK_OK(mx_rescale_stats_alloc(&run.rescale, d, C));
    run.rescale.theta_bar = 0.75;
    size_t count = mx_model_param_count(run.model);
    run.momentum = malloc(count * sizeof(float));
    random_fill(&rng, run.momentum, count);
    mx_rng_init(&run.mix_rng, 3, MX_STREAM_MIXUP);
    run.step = 7;

    char dir[4096];
    const char *tmp = getenv("MIXREG_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/test_cnn_run", tmp ? tmp : "/tmp");
    CHECK_OK(mx_make_dirs(dir));
    CHECK_OK(mx_run_save(dir, &run));
    mx_run loaded;
    CHECK_OK(mx_run_load(dir, 3, &loaded));
    if (loaded.model) {
        CHECK(loaded.has_train_state && loaded.step == 7);
        CHECK(mx_model_get_spec(loaded.model)->backend == MX_BACKEND_REF);
        CHECK(memcmp(mx_model_params(loaded.model), mx_model_params(run.model), count * sizeof(float)) == 0);
        CHECK(memcmp(loaded.momentum, run.momentum, count * sizeof(float)) == 0);
        size_t bytes = total_buffer_bytes(run.model);
        unsigned char *a = malloc(bytes), *b = malloc(bytes);
        snapshot_buffers(run.model, a);
        snapshot_buffers(loaded.model, b);
        CHECK(memcmp(a, b, bytes) == 0);
        const mx_buffer_info *bt;
        mx_model_buffer_tensors(loaded.model, &bt);
        CHECK(*(int64_t *)bt[2].data == 2);
        /* Eval mode gives the same logits from the restored running statistics. */
        mx_model_set_training(run.model, 0);
        mx_model_set_training(loaded.model, 0);
        memcpy(logits, mx_model_forward(run.model, x, n), sizeof logits);
        CHECK(memcmp(logits, mx_model_forward(loaded.model, x, n), sizeof logits) == 0);
        free(a), free(b);
        mx_run_free(&loaded);
    }

    /* A checkpoint lacking a buffer is refused, naming it. */
    char path[4200], bad_dir[4200], bad_path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_MODEL_FILE);
    snprintf(bad_dir, sizeof bad_dir, "%s-bad", dir);
    snprintf(bad_path, sizeof bad_path, "%s/%s", bad_dir, MX_RUN_MODEL_FILE);
    mx_safetensors st;
    CHECK_OK(mx_safetensors_read(path, &st));
    CHECK_OK(mx_make_dirs(bad_dir));
    if (st.file) {
        mx_st_tensor *kept = malloc(st.count * sizeof *kept);
        mx_st_meta *meta = malloc(st.meta_count * sizeof *meta);
        size_t k = 0;
        for (size_t i = 0; i < st.count; i++)
            if (strcmp(st.tensors[i].name, "L.4.b2.running_var")) kept[k++] = st.tensors[i];
        for (size_t i = 0; i < st.meta_count; i++) meta[i] = (mx_st_meta){st.meta_keys[i], st.meta_values[i]};
        CHECK(k + 1 == st.count);
        CHECK_OK(mx_safetensors_write(bad_path, kept, k, meta, st.meta_count));
        CHECK(mx_run_load(bad_dir, 1, &loaded) == MX_ERR_FORMAT);
        CHECK(strstr(mx_error_message(), "L.4.b2.running_var") != NULL);
        free(kept), free(meta);
        mx_safetensors_free(&st);
    }
    mx_run_free(&run);
}

/* ---- determinism ---- */

static void test_determinism(void)
{
    mx_model *a = make("resnet20", 1, 12, 12, 3, 4), *b = make("resnet20", 1, 12, 12, 3, 4);
    if (!a || !b) return;
    mx_model_init_params(a, 21);
    mx_model_init_params(b, 21);
    size_t count = mx_model_param_count(a), bytes = total_buffer_bytes(a);
    CHECK(memcmp(mx_model_params(a), mx_model_params(b), count * sizeof(float)) == 0);
    float *init = malloc(count * sizeof(float));
    memcpy(init, mx_model_params(a), count * sizeof(float));
    train_steps(a, 3, 4, 0);
    train_steps(b, 3, 4, 0);
    unsigned char *ba = malloc(bytes), *bb = malloc(bytes);
    snapshot_buffers(a, ba);
    snapshot_buffers(b, bb);
    CHECK(memcmp(mx_model_params(a), init, count * sizeof(float)) != 0);
    CHECK(memcmp(mx_model_params(a), mx_model_params(b), count * sizeof(float)) == 0);
    CHECK(memcmp(mx_model_grads(a), mx_model_grads(b), count * sizeof(float)) == 0);
    CHECK(memcmp(ba, bb, bytes) == 0);
    /* Another seed, other weights; the state copies across batch sizes. */
    mx_model *c = make("resnet20", 1, 12, 12, 3, 1);
    mx_model_init_params(c, 22);
    CHECK(memcmp(mx_model_params(c), init, count * sizeof(float)) != 0);
    CHECK_OK(mx_model_copy_state(c, a));
    snapshot_buffers(c, bb);
    CHECK(memcmp(mx_model_params(c), mx_model_params(a), count * sizeof(float)) == 0 && memcmp(ba, bb, bytes) == 0);
    mx_model *other = make("resnet32", 1, 12, 12, 3, 1);
    CHECK(mx_model_copy_state(other, a) == MX_ERR_ARG);
    printf("  3 training steps twice from seed 21: identical parameters, gradients and buffers\n");
    free(init), free(ba), free(bb);
    mx_model_free(a), mx_model_free(b), mx_model_free(c), mx_model_free(other);
}

/* ---- WideResNet's dropout ---- */

static void test_dropout(void)
{
    const size_t n = 4, d = 64, C = 3;
    mx_model *a = make("wrn-10-2", 1, 8, 8, C, n), *b = make("wrn-10-2-0.3", 1, 8, 8, C, n);
    if (!a || !b) return;
    mx_model_init_params(a, 5);
    mx_model_init_params(b, 5);
    size_t count = mx_model_param_count(a);
    CHECK(mx_model_param_count(b) == count);
    CHECK(memcmp(mx_model_params(a), mx_model_params(b), count * sizeof(float)) == 0);
    const mx_buffer_info *ba, *bb;
    size_t na = mx_model_buffer_tensors(a, &ba), nb = mx_model_buffer_tensors(b, &bb);
    mx_buffer_info *rb = find_buffer(b, "mixreg.rng.dropout");
    CHECK(nb == na + 1 && rb && rb->dtype == MX_BUFFER_I64 && rb->ndim == 1 && rb->shape[0] == 11);
    CHECK(find_buffer(a, "mixreg.rng.dropout") == NULL);
    if (!rb) return;
    mx_rng rng;
    mx_rng_init(&rng, 6, 0);
    float x[4 * 64], la[12], l1[12], l2[12];
    random_fill(&rng, x, n * d);
    /* Eval mode: dropout is the identity, the same bits as without it. */
    mx_model_set_training(a, 0);
    mx_model_set_training(b, 0);
    memcpy(la, mx_model_forward(a, x, n), sizeof la);
    CHECK(memcmp(la, mx_model_forward(b, x, n), sizeof la) == 0);
    /* Training: masks drawn from the generator in the buffer, new ones each forward,
     * the same ones again from the same state. */
    int64_t words[11];
    memcpy(words, rb->data, sizeof words);
    mx_model_set_training(a, 1);
    mx_model_set_training(b, 1);
    memcpy(la, mx_model_forward(a, x, n), sizeof la);
    memcpy(l1, mx_model_forward(b, x, n), sizeof l1);
    CHECK(memcmp(words, rb->data, sizeof words) != 0);
    memcpy(l2, mx_model_forward(b, x, n), sizeof l2);
    CHECK(max_diff(la, l1, n * C) > 1e-4 && max_diff(l1, l2, n * C) > 1e-4);
    memcpy(rb->data, words, sizeof words);
    CHECK(memcmp(l1, mx_model_forward(b, x, n), sizeof l1) == 0);
    /* init_params seeds the generator: two models from seed 5 agree. */
    mx_model *c = make("wrn-10-2-0.3", 1, 8, 8, C, n);
    mx_model_init_params(c, 5);
    CHECK(memcmp(find_buffer(c, "mixreg.rng.dropout")->data, words, sizeof words) == 0);
    mx_model_init_params(c, 6);
    CHECK(memcmp(find_buffer(c, "mixreg.rng.dropout")->data, words, sizeof words) != 0);
    printf("  wrn-10-2-0.3: eval mode as wrn-10-2; training masks from the checkpointed generator\n");
    mx_model_free(a), mx_model_free(b), mx_model_free(c);
}

/* ---- names and shapes that do not fit ---- */

static void test_specs(void)
{
    static const char *known[] = {"mlp", "logreg", "lenet5", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56",
                                  "resnet110", "resnet50", "preact18", "wrn-28-10", "wrn-16-4", "wrn-40-2",
                                  "wrn-28-10-0.3", "wrn-16-8-0.05", "wrn-10-1-0.999"};
    static const char *unknown[] = {"resnet", "resnet21", "resnet020", "resnet2", "resnet-20", "resnet50x",
                                    "wrn-28", "wrn-27-10", "wrn-28-0", "wrn-28-10-", "wrn-28-10x", "wrn--28-10",
                                    "lenet", "preact34", "resnet99999", "wrn-28-100", "wrn-28-10-0", "wrn-28-10-1.0",
                                    "wrn-28-10-0.", "wrn-28-10-.3", "wrn-28-10-0.3x", "wrn-28-10-0.0",
                                    "wrn-28-10-0.1234", "wrn-28-10--0.3", "wrn-28-10-0.3-"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) CHECK(mx_model_arch_known(known[i]));
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        if (mx_model_arch_known(unknown[i])) fprintf(stderr, "'%s' accepted\n", unknown[i]);
        CHECK(!mx_model_arch_known(unknown[i]));
    }
    CHECK(strstr(mx_model_arch_names(), "resnet50") && strstr(mx_model_arch_names(), "wrn-D-K"));
    mx_model_spec spec = {.arch = "lenet5", .in_channels = 1, .in_height = 8, .in_width = 28, .num_classes = 10};
    mx_model *m = NULL;
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG && m == NULL);
    CHECK(strstr(mx_error_message(), "lenet5") && strstr(mx_error_message(), "10x10"));
    printf("  %s\n", mx_error_message());
    snprintf(spec.arch, sizeof spec.arch, "resnet21");
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_ARG);
    /* Small inputs that every layer still fits: 1x1 images through resnet50 and preact18. */
    const char *tiny[] = {"resnet50", "preact18", "wrn-10-1"};
    for (size_t i = 0; i < 3; i++) {
        mx_model_spec s = {.in_channels = 2, .in_height = 1, .in_width = 1, .num_classes = 2};
        snprintf(s.arch, sizeof s.arch, "%s", tiny[i]);
        CHECK_OK(mx_model_create(&s, 2, &m));
        mx_model_free(m);
    }
}

int main(void)
{
    printf("parameter counts\n");
    test_param_counts();
    test_forward_flops();
    printf("state_dict tables\n");
    test_state_dicts();
    printf("training steps against PyTorch\n");
    test_steps_against_pytorch();
    printf("modes\n");
    test_modes();
    printf("checkpoint buffers\n");
    test_checkpoint_buffers();
    printf("determinism\n");
    test_determinism();
    printf("dropout\n");
    test_dropout();
    printf("specs\n");
    test_specs();
    CHECK_DONE();
}

/* The cuda backend's kernels against the host functions they mirror (label
 * gpu). Without a device (CI, most machines) the device checks are skipped
 * with exit 77 after checking that the refusal is one clear line naming the
 * way out; in a build without CUDA, that every entry point says so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "check.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"

#define SKIPPED 77

static float *randoms(mx_rng *rng, size_t n, double scale)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(scale * (2 * mx_rng_uniform(rng) - 1));
    return v;
}

static void *device_copy(const void *host, size_t bytes, mx_cuda_arena *arena, size_t offset)
{
    void *d = mx_cuda_arena_at(arena, offset);
    CHECK_OK(mx_cuda_upload(d, host, bytes));
    return d;
}

/* SGD and the residual add: the same float operations in the same order, so the same bits. */
static void test_elementwise(mx_rng *rng)
{
    const size_t n = 100003; /* not a multiple of the block size */
    float *p = randoms(rng, n, 1), *g = randoms(rng, n, 0.1), *v = randoms(rng, n, 0.01);
    float *p_dev_result = malloc(n * sizeof *p), *v_dev_result = malloc(n * sizeof *v), *y = malloc(n * sizeof *y);
    mx_cuda_arena arena = {0};
    size_t op = mx_cuda_arena_reserve(&arena, n * 4), og = mx_cuda_arena_reserve(&arena, n * 4);
    size_t ov = mx_cuda_arena_reserve(&arena, n * 4), oy = mx_cuda_arena_reserve(&arena, n * 4);
    CHECK_OK(mx_cuda_arena_commit(&arena));
    float *dp = device_copy(p, n * 4, &arena, op), *dg = device_copy(g, n * 4, &arena, og);
    float *dv = device_copy(v, n * 4, &arena, ov), *dy = mx_cuda_arena_at(&arena, oy);
    for (int nesterov = 0; nesterov <= 1; nesterov++) {
        mx_sgd_config cfg = {.momentum = 0.9, .nesterov = nesterov, .weight_decay = 5e-4};
        float lr = 0.05f;
        CHECK_OK(mx_cuda_sgd_step(dp, dg, dv, n, lr, (float)cfg.momentum, (float)cfg.weight_decay, nesterov, NULL));
        mx_sgd_step(&cfg, lr, p, g, v, n);
        CHECK_OK(mx_cuda_sync(NULL));
        CHECK_OK(mx_cuda_download(p_dev_result, dp, n * 4));
        CHECK_OK(mx_cuda_download(v_dev_result, dv, n * 4));
        int same_step = !memcmp(p_dev_result, p, n * 4) && !memcmp(v_dev_result, v, n * 4);
        CHECK(same_step);
        if (!same_step) printf("SGD step (nesterov %d): the device's bits differ from the host's\n", nesterov);
    }
    CHECK_OK(mx_cuda_add(dp, dg, n, dy, NULL));
    CHECK_OK(mx_cuda_download(y, dy, n * 4));
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= y[i] == p[i] + g[i];
    CHECK(same);
    printf("add on %zu floats (after the SGD steps): %s\n", n, same ? "the host's bits" : "bits differ");
    mx_cuda_arena_free(&arena);
    free(p), free(g), free(v), free(p_dev_result), free(v_dev_result), free(y);
}

/* The blend row by row, and the soft-target loss and its gradient. */
static void test_blend_and_loss(mx_rng *rng)
{
    const size_t n = 37, size = 3 * 8 * 8, classes = 10;
    float *x = randoms(rng, n * size, 1), *lam = malloc(n * sizeof *lam), *out = malloc(n * size * sizeof *out);
    uint32_t *partner = malloc(n * sizeof *partner);
    for (size_t i = 0; i < n; i++) lam[i] = (float)mx_rng_uniform(rng), partner[i] = (uint32_t)((i * 7 + 3) % n);
    float *logits = randoms(rng, n * classes, 4), *targets = malloc(n * classes * sizeof *targets);
    for (size_t i = 0; i < n; i++) {
        float rest = 1;
        for (size_t c = 0; c < classes; c++) {
            float t = c + 1 < classes ? rest * (float)mx_rng_uniform(rng) : rest;
            targets[i * classes + c] = t;
            rest -= t;
        }
    }
    float *dl_host = malloc(n * classes * sizeof *dl_host), *dl = malloc(n * classes * sizeof *dl);
    float *row_loss = malloc(n * sizeof *row_loss);
    mx_cuda_arena arena = {0};
    size_t ox = mx_cuda_arena_reserve(&arena, n * size * 4), oo = mx_cuda_arena_reserve(&arena, n * size * 4);
    size_t ol = mx_cuda_arena_reserve(&arena, n * 4), op = mx_cuda_arena_reserve(&arena, n * 4);
    size_t oz = mx_cuda_arena_reserve(&arena, n * classes * 4), ot = mx_cuda_arena_reserve(&arena, n * classes * 4);
    size_t od = mx_cuda_arena_reserve(&arena, n * classes * 4), orl = mx_cuda_arena_reserve(&arena, n * 4);
    CHECK_OK(mx_cuda_arena_commit(&arena));
    float *dx = device_copy(x, n * size * 4, &arena, ox), *dlam = device_copy(lam, n * 4, &arena, ol);
    uint32_t *dpartner = device_copy(partner, n * 4, &arena, op);
    float *dout = mx_cuda_arena_at(&arena, oo);
    CHECK_OK(mx_cuda_mixup_blend(dx, dpartner, dlam, n, size, dout, NULL));
    CHECK_OK(mx_cuda_download(out, dout, n * size * 4));
    int same = 1;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < size; k++)
            same &= out[i * size + k] == lam[i] * x[i * size + k] + (1.0f - lam[i]) * x[partner[i] * size + k];
    CHECK(same);
    float *dz = device_copy(logits, n * classes * 4, &arena, oz), *dt = device_copy(targets, n * classes * 4, &arena, ot);
    CHECK_OK(mx_cuda_softmax_xent(dz, dt, n, classes, mx_cuda_arena_at(&arena, orl), mx_cuda_arena_at(&arena, od), NULL));
    CHECK_OK(mx_cuda_download(row_loss, mx_cuda_arena_at(&arena, orl), n * 4));
    CHECK_OK(mx_cuda_download(dl, mx_cuda_arena_at(&arena, od), n * classes * 4));
    double want = mx_softmax_xent(logits, targets, n, classes, dl_host), got = 0, worst = 0;
    for (size_t i = 0; i < n; i++) got += row_loss[i];
    for (size_t i = 0; i < n * classes; i++) worst = fmax(worst, fabs((double)dl[i] - dl_host[i]));
    printf("blend: %s; loss %.9f vs host %.9f, gradient max |diff| %.2e\n", same ? "the host's bits" : "bits differ",
           got / (double)n, want, worst);
    CHECK_NEAR(got / (double)n, want, 1e-6 * want);
    CHECK(worst <= 1e-7);
    mx_cuda_arena_free(&arena);
    free(x), free(lam), free(out), free(partner), free(logits), free(targets), free(dl_host), free(dl), free(row_loss);
}

/* --backend cuda: parsed, and a model on it refused at once with one line
 * saying why (its layer kernels are not written yet, so even with a device). */
static void test_model_refused(void)
{
    mx_backend b = MX_BACKEND_REF;
    CHECK_OK(mx_backend_parse("--backend", "cuda", &b));
    CHECK(b == MX_BACKEND_CUDA && !strcmp(mx_backend_name(b), "cuda"));
    CHECK(mx_backend_available(MX_BACKEND_CPU) == MX_OK && mx_backend_available(MX_BACKEND_REF) == MX_OK);
    mx_model_spec spec = {.arch = "resnet20", .in_channels = 3, .in_height = 32, .in_width = 32, .num_classes = 10,
                          .backend = MX_BACKEND_CUDA};
    mx_model *m = NULL;
    CHECK(mx_model_create(&spec, 4, &m) == MX_ERR_UNSUPPORTED && m == NULL);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", mx_error_message());
    CHECK(!strncmp(msg, "--backend cuda: ", 16) && !strchr(msg, '\n'));
    CHECK(mx_backend_available(MX_BACKEND_CUDA) == MX_ERR_UNSUPPORTED && !strcmp(mx_error_message(), msg));
    if (!mx_cuda_built())
        CHECK(!strcmp(msg, "--backend cuda: this mixreg was built without CUDA (rebuild with -DMIXREG_CUDA=ON)"));
    else if (mx_cuda_device_count() == 0)
        CHECK(strstr(msg, "--backend cuda: no CUDA device visible (") == msg && strstr(msg, "); use --backend cpu"));
    else
        CHECK(strstr(msg, "no layer kernels yet") != NULL);
    printf("--backend cuda refused: %s\n", msg);
}

int main(void)
{
    test_model_refused();
    if (!mx_cuda_built()) {
        CHECK(mx_cuda_device_count() == 0);
        CHECK(strstr(mx_error_message(), "built without CUDA") && strstr(mx_error_message(), "--backend cpu"));
        float f = 0;
        CHECK(mx_cuda_add(&f, &f, 1, &f, NULL) == MX_ERR_UNSUPPORTED);
        CHECK_DONE();
    }
    if (mx_cuda_check_device(0) != MX_OK) {
        /* The refusal every --backend cuda user without a GPU sees. */
        CHECK(strstr(mx_error_message(), "cuda: ") && strstr(mx_error_message(), "--backend cpu"));
        CHECK(strchr(mx_error_message(), '\n') == NULL);
        printf("no CUDA device (%s): device checks skipped\n", mx_error_message());
        return check_failures_ ? 1 : SKIPPED;
    }
    mx_rng rng;
    mx_rng_init(&rng, 12, 0);
    test_elementwise(&rng);
    test_blend_and_loss(&rng);
    CHECK_DONE();
}

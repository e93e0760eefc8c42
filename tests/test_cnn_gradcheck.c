/* Whole-network gradients of the convolutional architectures (reference
 * layers) against central finite differences of the loss: every parameter
 * tensor in training and eval mode, and in eval mode the input gradient
 * that `mixreg analyze` reads; entries whose perturbation crosses a ReLU or
 * max-pool kink are skipped and counted. The exact comparison with PyTorch
 * is test_cnn's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_test_data.h"
#include "mixreg/model.h"
#include "mixreg/rng.h"
#include "nn/cnn_internal.h"

static mx_model *make(const char *arch, size_t c, size_t h, size_t w, size_t classes, size_t batch)
{
    return make_model(arch, c, h, w, classes, batch, MX_BACKEND_REF, MX_PRECISION_FP32, 512);
}

/* With dropout, finite differences need the same masks every time: the
 * generator's state (its buffer) is put back before each forward. */
static int64_t g_rng_words[11];
static int g_restore_rng;

static void restore_rng(mx_model *m)
{
    mx_buffer_info *b = find_buffer(m, "mixreg.rng.dropout");
    if (g_restore_rng && b) memcpy(b->data, g_rng_words, sizeof g_rng_words);
}

static double loss_at(mx_model *m, const float *x, const float *y, size_t n)
{
    restore_rng(m);
    return mx_softmax_xent(mx_model_forward(m, x, n), y, n, mx_model_get_spec(m)->num_classes, NULL);
}

/* Which side of every kink the last forward was on: a hash of the ReLU on/off
 * pattern and the max-pool arg-max choices over the whole graph. */
static uint64_t kink_pattern(const mx_model *m, size_t n)
{
    const cnn_graph *g = ((const struct mx_model *)m)->impl;
    uint64_t h = 1469598103934665603u;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        size_t count = n * g->tensors[nd->out].size;
        if (nd->relu)
            for (size_t i = 0; i < count; i++) h = (h ^ (g->tensors[nd->out].data[i] > 0.0f)) * 1099511628211u;
        if (nd->op == CNN_MAXPOOL)
            for (size_t i = 0; i < count; i++) h = (h ^ nd->argmax[i]) * 1099511628211u;
    }
    return h;
}

typedef struct {
    size_t checked, kinked, bad;
    double worst;
} fd_stats;

/* Central differences of the loss in `samples` random entries of vars[0..count)
 * against the analytic gradient. An entry whose +-eps moves any ReLU or
 * max-pool across its kink (the pattern differs from the unperturbed one) is
 * skipped: there the difference measures the kink, not the derivative. The
 * others must agree to 5% of the gradient, with a floor of 1% of the tensor's
 * largest entry and 5e-4 absolute: float32 losses leave the differences
 * ~5e-5 of noise. (A wrong backward is off by 100%, not 5%; the exact
 * comparison is the PyTorch fixture's.) */
static void entry_errors(mx_model *m, const float *x, const float *y, size_t n, float *vars, const float *analytic,
                         size_t count, size_t samples, float eps, uint64_t base, mx_rng *rng, fd_stats *s,
                         const char *what)
{
    double scale = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(analytic[i]) > scale) scale = fabs(analytic[i]);
    for (size_t k = 0; k < samples && k < count; k++) {
        size_t i = samples >= count ? k : mx_rng_below(rng, (uint32_t)count);
        float saved = vars[i];
        vars[i] = saved + eps;
        double up = loss_at(m, x, y, n);
        int kinked = kink_pattern(m, n) != base;
        vars[i] = saved - eps;
        double down = loss_at(m, x, y, n);
        kinked |= kink_pattern(m, n) != base;
        vars[i] = saved;
        if (kinked) {
            s->kinked++;
            continue;
        }
        double fd = (up - down) / (2.0 * eps);
        double err = fabs(fd - analytic[i]) / (fabs(analytic[i]) + 0.01 * scale + 5e-4);
        s->checked++;
        if (err > s->worst) s->worst = err;
        if (err > 5e-2) {
            s->bad++;
            fprintf(stderr, "  %s[%zu]: backward %.6g, finite difference %.6g\n", what, i, analytic[i], fd);
        }
    }
}

/* Every parameter tensor (`samples` entries of each) of one network, in
 * training or eval mode, and in eval mode its input gradient (what
 * mx_model_backward_input gives the analysis; in training mode a pixel moves
 * the batch statistics and with them nearly every kink). */
static void fd_check(const char *arch, size_t c, size_t hw, size_t classes, size_t n, size_t samples, int training)
{
    mx_model *m = make(arch, c, hw, hw, classes, n);
    if (!m) return;
    mx_model_init_params(m, 3);
    mx_model_set_training(m, training);
    mx_rng rng;
    mx_rng_init(&rng, 41, 0);
    size_t d = c * hw * hw, count = mx_model_param_count(m);
    float *x = malloc(n * d * sizeof *x), *y = malloc(n * classes * sizeof *y), *dl = malloc(n * classes * sizeof *dl);
    float *g = malloc(count * sizeof *g), *dx = malloc(n * d * sizeof *dx);
    random_fill(&rng, x, n * d);
    random_targets(&rng, y, n, classes);
    mx_buffer_info *rb = find_buffer(m, "mixreg.rng.dropout");
    if (rb) memcpy(g_rng_words, rb->data, sizeof g_rng_words);
    g_restore_rng = rb != NULL;
    restore_rng(m);
    mx_softmax_xent(mx_model_forward(m, x, n), y, n, classes, dl);
    uint64_t base = kink_pattern(m, n);
    mx_model_backward_input(m, dl, n, dx);
    memcpy(g, mx_model_grads(m), count * sizeof *g);
    const mx_param_info *t;
    size_t nt = mx_model_param_tensors(m, &t);
    fd_stats ps = {0}, xs = {0};
    for (size_t i = 0; i < nt; i++)
        entry_errors(m, x, y, n, mx_model_params(m) + t[i].offset, g + t[i].offset, t[i].numel, samples, 1e-3f, base,
                     &rng, &ps, t[i].name);
    if (!training) entry_errors(m, x, y, n, x, dx, n * d, 48, 1e-3f, base, &rng, &xs, "input");
    printf("  %-9s %-8s mode, %zux%zux%zu batch %zu: %zu tensors, %zu entries checked (%zu across a kink skipped), "
           "worst error %.2e",
           arch, training ? "training" : "eval", c, hw, hw, n, nt, ps.checked, ps.kinked, ps.worst);
    if (!training) printf("; input %zu (%zu), worst %.2e", xs.checked, xs.kinked, xs.worst);
    printf("\n");
    CHECK(ps.bad == 0 && xs.bad == 0);
    /* Not vacuous: most tensors, and at least a quarter of the entries, were checked. */
    CHECK(ps.checked >= 50 && 3 * ps.checked >= ps.kinked);
    if (!training) CHECK(xs.checked >= 10 && 3 * xs.checked >= xs.kinked);
    free(x), free(y), free(dl), free(g), free(dx);
    g_restore_rng = 0;
    mx_model_free(m);
}

static void test_finite_differences(void)
{
    fd_check("resnet20", 1, 8, 3, 3, 12, 1);
    fd_check("resnet20", 1, 8, 3, 3, 12, 0);
    fd_check("lenet5", 2, 12, 4, 3, 12, 1);
    fd_check("lenet5", 2, 12, 4, 3, 12, 0);
    fd_check("preact18", 1, 6, 3, 3, 4, 1);
    fd_check("preact18", 1, 6, 3, 3, 4, 0);
    fd_check("wrn-10-2", 3, 8, 3, 3, 8, 1);
    fd_check("wrn-10-2-0.3", 3, 8, 3, 3, 8, 1);
    fd_check("resnet50", 1, 16, 3, 2, 1, 0);
}

int main(void)
{
    printf("finite differences\n");
    test_finite_differences();
    CHECK_DONE();
}

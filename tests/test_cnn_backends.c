/* The CNN backends against each other: the cpu backend (oneDNN convolution,
 * pooling and linear layers, its own threaded batch norm, ReLU and add) agrees
 * with the reference layers on a whole training step (logits, loss, every
 * parameter gradient, the batch-norm buffers it updates, the parameters after
 * SGD) and in eval mode (logits, input gradient), at the max batch and at a
 * smaller one (plans made on first use); the cpu backend repeats bit for bit;
 * its plan sets are reused and replaced correctly; a cpu-backend checkpoint
 * loads onto the cpu backend and evaluates identically; the MLP ignores the
 * backend; bf16 convolutions stay within bfloat16's precision of the
 * reference and repeat bit for bit, and are refused off the cpu backend. Two threads throughout (results repeat for a fixed thread count). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cnn_kinks.h"
#include "cnn_test_data.h"
#include "cnn_twins.h"
#include "mixreg/fileio.h"
#include "mixreg/mixup.h"
#include "mixreg/model.h"
#include "mixreg/optim.h"
#include "mixreg/rng.h"
#include "mixreg/run.h"
#include "mixreg/step.h"
#include "mixreg/train.h"
#include "nn/cnn_cpu.h"
#include "nn/winograd.h"

/* The tolerance between the backends: every entry within RTOL (GRAD_RTOL for
 * parameter gradients) of the reference relative to |entry| + FLOOR
 * max|entries| of its tensor (the floor for sums that cancel to nearly
 * nothing). The differences are float32 sums in other orders (oneDNN's
 * convolutions, batch norm's statistics) through up to 20 layers, which batch
 * norm's backward over the 3-6 samples of these batches amplifies in the
 * gradients of the layers below it (measured up to 2.4e-4; the printed
 * figures are each run's worst). Against PyTorch's float64 step both backends
 * stay within 1e-4, the gradients through mixreg's Winograd training kernels
 * within 1.5e-3 (tests/test_cnn.c). A step where
 * the two forwards put some activation on different sides of a ReLU's kink
 * (a value within ~1e-7 of zero) is not compared: its gradient there differs
 * by the whole gradient, legitimately; the step is redrawn instead. */
#define RTOL 1e-4
#define GRAD_RTOL 5e-4
/* Convolutions of 64 channels and more run Winograd kernels on the cpu
 * backend (cnn_cpu_choice.c), whose transforms round more: the gradients of a model
 * with them get this tolerance instead (preact18 measured 6.3e-4). */
#define GRAD_RTOL_WINOGRAD 1.5e-3
/* ... and their batch-norm running statistics this one: a batch variance
 * over the few values of a deep layer's plane in these 3-6 sample batches
 * cancels, and F(4x4, 3x3)'s rounding (ten times the direct kernels') shows
 * in it (preact18 on AVX2, whose 64-channel layers train on mixreg's
 * Winograd kernel, measured 1.4e-4). */
#define BUFFER_RTOL_WINOGRAD 5e-4
/* ... and the eval pass's input gradient this one: it goes back through
 * every Winograd layer's input-gradient kernel (resnet20 on 28x28, whose
 * 14x14 layers take F(5x5, 3x3) on AVX2, measured 1.1e-4; 6.8e-5 with
 * F(4x4, 3x3) there). */
#define EVAL_DX_RTOL_WINOGRAD 3e-4
#define FLOOR 1e-2

/* Worst |got - want| / (|want| + floor * max|want|) over the entries: relative,
 * with a floor for entries that cancel to nearly nothing. */
static double rel_error(const float *got, const float *want, size_t count, double floor)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < count; i++)
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!isfinite(got[i])) return INFINITY;
        double r = d / (fabs(want[i]) + floor * scale + 1e-30);
        if (r > worst) worst = r;
    }
    return worst;
}

typedef struct {
    double logits, loss, grads, buffers, params, eval_logits, eval_dx;
    const char *worst_grad;
} agreement;

static void note(double *slot, double e) { if (!(e <= *slot)) *slot = e; }

/* Every parameter gradient of b against a; the worst one's name. */
static double compare_grads(mx_model *a, mx_model *b, const char **worst_name)
{
    const mx_param_info *pt;
    size_t np = mx_model_param_tensors(a, &pt);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        double e = rel_error(mx_model_grads(b) + pt[i].offset, mx_model_grads(a) + pt[i].offset, pt[i].numel, FLOOR);
        if (!(e <= worst)) {
            worst = e;
            *worst_name = pt[i].name;
        }
    }
    return worst;
}

/* The F32 buffers compared, the I64 counters equal. */
static double compare_buffers(mx_model *a, mx_model *b)
{
    const mx_buffer_info *ba, *bb;
    size_t nb = mx_model_buffer_tensors(a, &ba);
    CHECK(mx_model_buffer_tensors(b, &bb) == nb);
    double worst = 0;
    for (size_t i = 0; i < nb; i++) {
        if (ba[i].dtype == MX_BUFFER_F32)
            note(&worst, rel_error(bb[i].data, ba[i].data, ba[i].numel, FLOOR));
        else
            CHECK(memcmp(ba[i].data, bb[i].data, ba[i].numel * sizeof(int64_t)) == 0);
    }
    return worst;
}


/* How many tensors of a model are nChw16c. */
static size_t blocked_tensors(mx_model *m)
{
    const cnn_graph *g = ((const struct mx_model *)m)->impl;
    size_t count = 0;
    for (size_t t = 0; t < g->num_tensors; t++) count += g->tensors[t].blocked != 0;
    return count;
}

/* How many of the model's convolutions (at its max batch) run oneDNN's
 * Winograd kernels or, in training, mixreg's (on AVX2). */
static size_t winograd_convs(mx_model *m)
{
    const cnn_graph *g = ((const struct mx_model *)m)->impl;
    size_t count = 0;
    for (size_t k = 0; k < g->num_nodes; k++) count += cnn_cpu_node_of(g, k)->train_wino != CNN_WINO_NONE;
    for (size_t s = 0; s < CNN_PLAN_SETS; s++) {
        const cnn_plan_set *set = &cnn_cpu_of(g)->plans[s];
        if (set->n != mx_model_max_batch(m)) continue;
        for (size_t k = 0; k < g->num_nodes; k++)
            if (set->node[k].conv && strstr(mx_dnnl_conv2d_plan_impl(set->node[k].conv, 0), "wino"))
                count++;
    }
    return count;
}

/* One training step of batch n (<= max_batch) on both backends from the same
 * weights and buffers, then an eval-mode forward and input gradient. Returns
 * 0, recording nothing, when the forwards disagree on a ReLU's side. */
static int step_both(mx_model *ref, mx_model *cpu, size_t n, mx_rng *rng, agreement *total)
{
    agreement step = *total, *ag = &step;
    int kinked = 0;
    const mx_model_spec *spec = mx_model_get_spec(ref);
    const size_t d = mx_model_input_size(ref), C = spec->num_classes, count = mx_model_param_count(ref);
    float *x = malloc(n * d * sizeof *x), *y = malloc(n * C * sizeof *y);
    float *dl_ref = malloc(n * C * sizeof *y), *dl_cpu = malloc(n * C * sizeof *y), *lr = malloc(n * C * sizeof *y);
    float *dx_ref = malloc(n * d * sizeof *x), *dx_cpu = malloc(n * d * sizeof *x);
    float *v_ref = calloc(count, sizeof(float)), *v_cpu = calloc(count, sizeof(float));
    random_fill(rng, x, n * d);
    random_targets(rng, y, n, C);
    CHECK_OK(mx_model_copy_state(cpu, ref));

    mx_model_set_training(ref, 1);
    mx_model_set_training(cpu, 1);
    memcpy(lr, mx_model_forward(ref, x, n), n * C * sizeof *lr);
    const float *lc = mx_model_forward(cpu, x, n);
    kinked |= relu_flips(ref, cpu, n) != 0;
    note(&ag->logits, rel_error(lc, lr, n * C, FLOOR));
    double loss_ref = mx_softmax_xent(lr, y, n, C, dl_ref), loss_cpu = mx_softmax_xent(lc, y, n, C, dl_cpu);
    note(&ag->loss, fabs(loss_cpu - loss_ref) / fabs(loss_ref));
    /* Each backward from its own dlogits: the whole step as training runs it. */
    mx_model_backward(ref, dl_ref, n);
    mx_model_backward(cpu, dl_cpu, n);
    note(&ag->grads, compare_grads(ref, cpu, &ag->worst_grad));
    note(&ag->buffers, compare_buffers(ref, cpu));
    mx_sgd_config sgd = {0.9, 1, 5e-4};
    mx_sgd_step(&sgd, 0.05, mx_model_params(ref), mx_model_grads(ref), v_ref, count);
    mx_sgd_step(&sgd, 0.05, mx_model_params(cpu), mx_model_grads(cpu), v_cpu, count);
    note(&ag->params, rel_error(mx_model_params(cpu), mx_model_params(ref), count, FLOOR));

    /* Eval mode from the same (reference) state. */
    CHECK_OK(mx_model_copy_state(cpu, ref));
    mx_model_set_training(ref, 0);
    mx_model_set_training(cpu, 0);
    memcpy(lr, mx_model_forward(ref, x, n), n * C * sizeof *lr);
    lc = mx_model_forward(cpu, x, n);
    kinked |= relu_flips(ref, cpu, n) != 0;
    note(&ag->eval_logits, rel_error(lc, lr, n * C, FLOOR));
    mx_softmax_xent(lr, y, n, C, dl_ref);
    mx_softmax_xent(lc, y, n, C, dl_cpu);
    mx_model_backward_input(ref, dl_ref, n, dx_ref);
    mx_model_backward_input(cpu, dl_cpu, n, dx_cpu);
    note(&ag->eval_dx, rel_error(dx_cpu, dx_ref, n * d, FLOOR));
    free(x), free(y), free(dl_ref), free(dl_cpu), free(lr), free(dx_ref), free(dx_cpu), free(v_ref), free(v_cpu);
    if (kinked) return 0;
    *total = step;
    return 1;
}

typedef struct {
    const char *arch;
    size_t c, h, w, classes, batch;
} agreement_case;

/* Case c (seeded by k) on both backends: three steps and the eval passes
 * within the tolerances. */
static void agree(const agreement_case *c, size_t k)
{
    mx_model *ref = make(c->arch, c->c, c->h, c->w, c->classes, c->batch, MX_BACKEND_REF);
    mx_model *cpu = make(c->arch, c->c, c->h, c->w, c->classes, c->batch, MX_BACKEND_CPU);
    if (!ref || !cpu) {
        mx_model_free(ref), mx_model_free(cpu);
        return;
    }
    CHECK(mx_model_get_spec(cpu)->backend == MX_BACKEND_CPU);
    size_t blocked = blocked_tensors(cpu), winograd = winograd_convs(cpu);
    const double grad_rtol = winograd ? GRAD_RTOL_WINOGRAD : GRAD_RTOL;
    const double buffer_rtol = winograd ? BUFFER_RTOL_WINOGRAD : RTOL;
    const double eval_dx_rtol = winograd ? EVAL_DX_RTOL_WINOGRAD : RTOL;
    mx_model_init_params(ref, 11 + k);
    mx_rng rng;
    mx_rng_init(&rng, 100 + k, 0);
    agreement ag = {0};
    /* Two steps at the max batch (the second from trained weights and moved
     * statistics), then one at a smaller batch: its plans are made then. */
    size_t done = 0, tries = 0;
    for (; done < 3 && tries < 12; tries++) done += step_both(ref, cpu, c->batch - (done == 2), &rng, &ag);
    CHECK(done == 3);
    printf("  %-12s %zux%zux%zu batch %zu and %zu (%zu blocked tensors, %zu Winograd convolutions; %zu of %zu steps "
           "kink-free): logits %.1e, loss %.1e, "
           "gradients %.1e (%s), buffers %.1e, parameters after SGD %.1e; eval logits %.1e, input gradient "
           "%.1e\n",
           c->arch, c->c, c->h, c->w, c->batch, c->batch - 1, blocked, winograd, done, tries, ag.logits, ag.loss,
           ag.grads, ag.worst_grad ? ag.worst_grad : "-", ag.buffers, ag.params, ag.eval_logits, ag.eval_dx);
    CHECK(ag.logits <= RTOL && ag.loss <= RTOL && ag.grads <= grad_rtol && ag.buffers <= buffer_rtol);
    CHECK(ag.params <= RTOL && ag.eval_logits <= RTOL && ag.eval_dx <= eval_dx_rtol);
    mx_model_free(ref);
    mx_model_free(cpu);
}

static void test_agreement(void)
{
    static const agreement_case cases[] = {
        {"lenet5", 1, 28, 28, 10, 8},   {"lenet5", 3, 20, 20, 7, 5},     {"resnet20", 1, 28, 28, 10, 6},
        {"resnet20", 3, 16, 16, 5, 4},  {"preact18", 1, 12, 12, 10, 4}, {"wrn-10-2-0.3", 3, 8, 8, 4, 4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) agree(&cases[k], k);
    if (mx_wino_block() == 8 && (g_block ? g_block : mx_dnnl_channel_block()) == 8) {
        /* preact18 again with the batch-wide GEMM Winograd kernels on its
         * 128- to 512-channel layers, which these batches are too small for
         * otherwise (AVX2 runs them in training). */
        printf("  with the GEMM Winograd kernels at every batch:\n");
        mx_wino_gemm_min_tiles_set(1);
        agree(&cases[4], 4);
        mx_wino_gemm_min_tiles_set(0);
    }
}

/* ---- determinism ---- */

static void test_determinism(void)
{
    static const char *const archs[] = {"lenet5", "resnet20", "preact18"};
    for (size_t k = 0; k < 3; k++) {
        mx_model *a = make(archs[k], 1, 16, 16, 3, 6, MX_BACKEND_CPU), *b = make(archs[k], 1, 16, 16, 3, 6, MX_BACKEND_CPU);
        mx_model *c = make(archs[k], 1, 16, 16, 3, 6, MX_BACKEND_CPU);
        if (!a || !b || !c) {
            mx_model_free(a), mx_model_free(b), mx_model_free(c);
            continue;
        }
        mx_model_init_params(a, 21);
        mx_model_init_params(b, 21);
        mx_model_init_params(c, 21);
        train_steps(a, 4, 6, 0);
        train_steps(b, 4, 6, 0);
        train_steps(c, 4, 6, 1);
        CHECK(same_state(a, b));
        CHECK(same_state(a, c));
        printf("  %s: 4 cpu-backend steps (batches 6, 6, 6, 5) three times from one seed, predictions between "
               "them once: identical parameters, gradients and buffers\n", archs[k]);
        mx_model_free(a), mx_model_free(b), mx_model_free(c);
    }
}

/* ---- bf16 convolutions ---- */

/* One training step and an eval forward with bf16 convolutions against the
 * float32 reference, norm-wise: bfloat16's 8-bit mantissa carried through the
 * network. The gradients move most: sums of many rounded products that
 * cancel (batch norm's dgamma at initialisation above all). PyTorch's own
 * bf16 autocast against its float32, on the same models and batches
 * (tests/make_cnn_fixtures.py's modules, random inputs), differs by logits
 * 3.7e-3 / 8.7e-3 / 1.7e-2 and gradient 2.3e-2 / 0.31 / 0.20 (worst tensor
 * 0.094 / 0.51 / 0.29) for lenet5 / resnet20 / preact18: the same magnitudes
 * as the figures printed here. */
static void test_bf16_refused(void);

/* The bfloat16 activations (cnn_cpu_node.y_bf16, dx_bf16): in resnet20 every
 * convolution writes its output in bfloat16 for its batch norm, each
 * convolution whose input is a batch norm's output alone writes its input
 * gradient so, and the training arena gives those outputs half the bytes: a
 * buffer of two bytes an element, the difference exactly what flagging them
 * as float32 adds. A model planned for prediction alone keeps them float32. */
static void test_bf16_activation_buffers(void)
{
    const size_t n = 6;
    g_precision = MX_PRECISION_BF16;
    mx_model *m = make("resnet20", 1, 16, 16, 3, n, MX_BACKEND_CPU);
    g_precision = MX_PRECISION_FP32;
    if (!m) return;
    cnn_graph *g = ((struct mx_model *)m)->impl;
    size_t convs = 0, halves = 0, dx16 = 0, half_bytes = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_CONV) continue;
        convs++;
        halves += g->tensors[nd->out].bf16 && cnn_cpu_node_of(g, k)->y_bf16;
        dx16 += cnn_cpu_node_of(g, k)->dx_bf16;
        size_t readers = 0; /* of its input: the stem's batch norm also feeds the first residual add */
        for (size_t j = 0; j < g->num_nodes; j++) readers += g->nodes[j].in == nd->in || g->nodes[j].in2 == nd->in;
        CHECK(cnn_cpu_node_of(g, k)->dx_bf16 ==
              (k > 0 && g->nodes[k - 1].op == CNN_BN && g->nodes[k - 1].out == nd->in && readers == 1));
        if (g->tensors[nd->out].bf16) {
            half_bytes += n * g->tensors[nd->out].size * sizeof(uint16_t);
            CHECK(cnn_cpu_node_of(g, k + 1)->bf16_io & CNN_X_BF16);
        }
    }
    CHECK(convs > 0 && halves == convs && dx16 > 0 && dx16 < convs);
    const size_t train = mx_model_plan_bytes(m, n, MX_MODEL_TRAIN), predict = mx_model_plan_bytes(m, n, MX_MODEL_PREDICT);
    for (size_t t = 0; t < g->num_tensors; t++) g->tensors[t].bf16 = 0;
    const size_t train_f32 = mx_model_plan_bytes(m, n, MX_MODEL_TRAIN);
    CHECK(mx_model_plan_bytes(m, n, MX_MODEL_PREDICT) == predict);
    /* Each buffer's start is aligned: within that of each halved one. */
    CHECK(train_f32 > train && train_f32 - train + 64 * halves >= half_bytes && train_f32 - train <= half_bytes + 64 * halves);
    printf("  resnet20 bf16: %zu of %zu convolutions write bfloat16 outputs (%zu bytes fewer at batch %zu), %zu "
           "bfloat16 input gradients\n", halves, convs, train_f32 - train, n, dx16);
    mx_model_free(m);
}

static void test_bf16(void)
{
    if (!mx_dnnl_bf16_available()) {
        test_bf16_refused();
        return;
    }
    static const struct {
        const char *arch;
        size_t c, h, classes, batch;
    } cases[] = {{"lenet5", 1, 28, 10, 8}, {"resnet20", 1, 28, 10, 6}, {"preact18", 3, 12, 10, 4}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const size_t n = cases[k].batch, C = cases[k].classes, d = cases[k].c * cases[k].h * cases[k].h;
        g_precision = MX_PRECISION_BF16;
        mx_model *ref = make(cases[k].arch, cases[k].c, cases[k].h, cases[k].h, C, n, MX_BACKEND_REF);
        mx_model *bf = make(cases[k].arch, cases[k].c, cases[k].h, cases[k].h, C, n, MX_BACKEND_CPU);
        g_precision = MX_PRECISION_FP32;
        if (!ref || !bf) {
            mx_model_free(ref), mx_model_free(bf);
            continue;
        }
        CHECK(mx_model_get_spec(bf)->precision == MX_PRECISION_BF16);
        mx_model_init_params(ref, 31 + k);
        CHECK_OK(mx_model_copy_state(bf, ref));
        mx_rng rng;
        mx_rng_init(&rng, 300 + k, 0);
        float *x = malloc(n * d * sizeof *x), *y = malloc(n * C * sizeof *y), *dl = malloc(n * C * sizeof *y);
        float *lr = malloc(n * C * sizeof *y);
        random_fill(&rng, x, n * d);
        random_targets(&rng, y, n, C);
        memcpy(lr, mx_model_forward(ref, x, n), n * C * sizeof *lr);
        const float *lb = mx_model_forward(bf, x, n);
        double e_logits = norm_error(lb, lr, n * C);
        double loss_ref = mx_softmax_xent(lr, y, n, C, dl);
        mx_model_backward(ref, dl, n);
        double loss_bf = mx_softmax_xent(lb, y, n, C, dl);
        mx_model_backward(bf, dl, n);
        double e_loss = fabs(loss_bf - loss_ref) / loss_ref, e_tensor = 0;
        double e_grads = norm_error(mx_model_grads(bf), mx_model_grads(ref), mx_model_param_count(ref));
        const mx_param_info *pt;
        const char *worst = "-";
        size_t np = mx_model_param_tensors(ref, &pt);
        for (size_t i = 0; i < np; i++) {
            double e = norm_error(mx_model_grads(bf) + pt[i].offset, mx_model_grads(ref) + pt[i].offset, pt[i].numel);
            if (e > e_tensor) e_tensor = e, worst = pt[i].name;
        }
        mx_model_set_training(ref, 0);
        mx_model_set_training(bf, 0);
        memcpy(lr, mx_model_forward(ref, x, n), n * C * sizeof *lr);
        double e_eval = norm_error(mx_model_forward(bf, x, n), lr, n * C);
        printf("  %-9s bf16 convolutions: norm-wise relative difference logits %.1e, loss %.1e, gradient %.1e "
               "(worst tensor %s %.1e); eval logits %.1e\n", cases[k].arch, e_logits, e_loss, e_grads, worst, e_tensor,
               e_eval);
        CHECK(e_logits < 3e-2 && e_loss < 1e-2 && e_grads < 0.5 && e_eval < 3e-2);
        free(x), free(y), free(dl), free(lr);
        mx_model_free(ref), mx_model_free(bf);
    }
    /* Determinism, as for float32. */
    g_precision = MX_PRECISION_BF16;
    mx_model *a = make("resnet20", 1, 16, 16, 3, 6, MX_BACKEND_CPU), *b = make("resnet20", 1, 16, 16, 3, 6, MX_BACKEND_CPU);
    g_precision = MX_PRECISION_FP32;
    if (a && b) {
        mx_model_init_params(a, 21);
        mx_model_init_params(b, 21);
        train_steps(a, 3, 6, 0);
        train_steps(b, 3, 6, 0);
        CHECK(same_state(a, b));
    }
    mx_model_free(a), mx_model_free(b);
    test_bf16_activation_buffers();
    /* bf16 is for the CNNs on the cpu backend only. */
    mx_model_spec spec = {.arch = "resnet20", .in_channels = 1, .in_height = 12, .in_width = 12, .num_classes = 3,
                          .backend = MX_BACKEND_REF, .precision = MX_PRECISION_BF16};
    mx_model *m = NULL;
    CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_ARG && m == NULL);
    snprintf(spec.arch, sizeof spec.arch, "mlp");
    spec.backend = MX_BACKEND_CPU;
    spec.num_hidden = 1;
    spec.hidden[0] = 8;
    CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_ARG && m == NULL);
    CHECK(strstr(mx_error_message(), "bf16") != NULL);
}

/* A CPU without oneDNN's bfloat16 kernels (AVX2 only): a bf16 model is
 * refused at creation with the way out named, not by a planning failure. */
static void test_bf16_refused(void)
{
    printf("  this CPU has no oneDNN bfloat16 convolutions: bf16 models are refused (numeric checks skipped)\n");
    mx_model_spec spec = {.arch = "resnet20", .in_channels = 1, .in_height = 12, .in_width = 12, .num_classes = 3,
                          .backend = MX_BACKEND_CPU, .precision = MX_PRECISION_BF16};
    mx_model *m = NULL;
    CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_UNSUPPORTED && m == NULL);
    CHECK(strstr(mx_error_message(), "--precision fp32") != NULL);
}

/* ---- plan sets: the max batch's, then up to two others replaced least recently used first ---- */

static void test_plan_sets(void)
{
    const size_t B = 5, d = 144, C = 4;
    mx_model *m = make("resnet20", 1, 12, 12, C, B, MX_BACKEND_CPU);
    if (!m) return;
    mx_model_init_params(m, 3);
    mx_model_set_training(m, 0);
    mx_rng rng;
    mx_rng_init(&rng, 9, 0);
    float x[5 * 144], first[5][5 * 4], again[5 * 4];
    random_fill(&rng, x, B * d);
    /* Eval mode: every sample's logits on its own, whatever the batch. */
    for (size_t n = 1; n <= B; n++) memcpy(first[n - 1], mx_model_forward(m, x, n), n * C * sizeof(float));
    int same = 1;
    double worst = 0;
    for (size_t round = 0; round < 2; round++)
        for (size_t n = B; n >= 1; n--) {
            memcpy(again, mx_model_forward(m, x, n), n * C * sizeof(float));
            same = same && memcmp(again, first[n - 1], n * C * sizeof(float)) == 0;
            double e = rel_error(again, first[B - 1], n * C, FLOOR);
            if (e > worst) worst = e;
        }
    CHECK(same);        /* a batch size's plans, made again after being replaced, give the same bits */
    CHECK(worst < 1e-5); /* and the batch sizes agree on each sample (to float32 rounding) */
    printf("  batches 1..5 in turn on three plan slots: each size repeats its bits, sizes agree to %.1e\n", worst);
    mx_model_free(m);
}

/* ---- the blocked kernels in either channel block ---- */

static void to_layout(size_t block, size_t n, size_t C, size_t hw, const float *nchw, float *out, int back)
{
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < C; c++)
            for (size_t q = 0; q < hw; q++) {
                const size_t i = cnn_index(0, C, hw, s, c, q), j = cnn_index(block, C, hw, s, c, q);
                if (back) out[i] = nchw[j];
                else out[j] = nchw[i];
            }
}

/* What one block's kernels give, mapped back to NCHW. */
typedef struct {
    float *y, *ye, *dx, *dx_masked, *dxe, *gap, *gap_dx, *drop, *drop_dx;
    float mean[48], invstd[48], rm[48], rv[48], dg[48], db[48], dge[48], dbe[48];
    uint8_t *mask;
} blocked_results;

/* The blocked kernels (batch norm training with its ReLU, eval, both
 * backwards, the ReLU's mask from the output and from the input; global
 * average pooling; dropout) in blocks of 8 and 16 channels: channel c's sums
 * run over the same values in the same order whatever the block (its
 * pixels, then the samples), so both give the same bits once mapped back to
 * NCHW; the NCHW kernels add in another order and agree within RTOL;
 * dropout takes the reference's draws, bit for bit. */
static void run_blocked(size_t block, size_t n, size_t C, size_t hw, const float *x, const float *dy,
                        const float *gamma, const float *beta, blocked_results *r)
{
    const size_t count = n * C * hw;
    float *xb = malloc(count * sizeof *xb), *dyb = malloc(count * sizeof *dyb), *out = malloc(count * sizeof *out);
    float *yb = malloc(count * sizeof *yb), affine[3 * 48], gy[3 * 48];
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    to_layout(block, n, C, hw, x, xb, 0);
    to_layout(block, n, C, hw, dy, dyb, 0);
    for (size_t c = 0; c < C; c++) r->rm[c] = 0.1f * (float)c, r->rv[c] = 1.0f + 0.05f * (float)c;
    cnn_cpu_bn_forward_train_blocked(n, C, hw, block, xb, gamma, beta, 0.1f, 1e-5f, r->rm, r->rv, yb, r->mean,
                                     r->invstd, 1, partial, affine, NULL);
    to_layout(block, n, C, hw, yb, r->y, 1);
    cnn_cpu_bn_backward_blocked(n, C, hw, block, xb, yb, NULL, dyb, gamma, r->mean, r->invstd, out, 0, r->dg, r->db,
                                partial);
    to_layout(block, n, C, hw, out, r->dx, 1);
    cnn_cpu_bn_backward_blocked(n, C, hw, block, xb, NULL, affine, dyb, gamma, r->mean, r->invstd, out, 0, NULL, NULL,
                                partial);
    to_layout(block, n, C, hw, out, r->dx_masked, 1);
    cnn_cpu_bn_forward_eval_blocked(n, C, hw, block, xb, gamma, beta, r->rm, r->rv, 1e-5f, out, 1, partial, NULL, NULL, NULL);
    to_layout(block, n, C, hw, out, r->ye, 1);
    cnn_cpu_bn_backward_eval_blocked(n, C, hw, block, xb, NULL, NULL, dyb, gamma, r->rm, r->rv, 1e-5f, out, 0, r->dge,
                                     r->dbe, partial);
    to_layout(block, n, C, hw, out, r->dxe, 1);
    cnn_cpu_gap_forward_blocked(n, C, hw, block, xb, r->gap);
    for (size_t i = 0; i < n * C; i++) gy[i] = dy[i];
    cnn_cpu_gap_backward_blocked(n, C, hw, block, gy, out);
    to_layout(block, n, C, hw, out, r->gap_dx, 1);
    mx_rng rng;
    mx_rng_init(&rng, 5, MX_STREAM_DROPOUT);
    cnn_cpu_dropout_forward_blocked(n, C, hw, block, 0.3f, &rng, xb, out, r->mask);
    to_layout(block, n, C, hw, out, r->drop, 1);
    cnn_cpu_dropout_backward_blocked(n, C, hw, block, 0.3f, r->mask, dyb, out);
    to_layout(block, n, C, hw, out, r->drop_dx, 1);
    free(xb), free(dyb), free(out), free(yb), free(partial);
}

static void test_blocked_kernels(void)
{
    /* 190 pixels: NHWC walks them in tiles of 10 rows (cnn_cpu_blocked.c NHWC_TILE_FLOATS). */
    enum { n = 3, C = 48, hw = 190, count = n * C * hw };
    mx_rng rng;
    mx_rng_init(&rng, 91, 0);
    float *x = malloc(count * sizeof *x), *dy = malloc(count * sizeof *dy), gamma[C], beta[C];
    random_fill(&rng, x, count);
    random_fill(&rng, dy, count);
    for (size_t c = 0; c < C; c++)
        gamma[c] = 1.0f + 0.3f * (float)mx_rng_normal(&rng), beta[c] = 0.3f * (float)mx_rng_normal(&rng);
    /* nChw8c, nChw16c and NHWC walked by 16 channels. */
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    blocked_results r[3];
    for (int b = 0; b < 3; b++) {
        float **bufs[] = {&r[b].y, &r[b].ye, &r[b].dx, &r[b].dx_masked, &r[b].dxe, &r[b].gap_dx, &r[b].drop,
                          &r[b].drop_dx};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) *bufs[i] = malloc(count * sizeof(float));
        r[b].gap = malloc(n * C * sizeof(float));
        r[b].mask = malloc(count);
        run_blocked(layouts[b], n, C, hw, x, dy, gamma, beta, &r[b]);
    }
    /* Every layout: the same bits. */
    const size_t bytes = count * sizeof(float);
    for (int b = 1; b < 3; b++) {
        CHECK(memcmp(r[0].y, r[b].y, bytes) == 0 && memcmp(r[0].ye, r[b].ye, bytes) == 0);
        CHECK(memcmp(r[0].dx, r[b].dx, bytes) == 0 && memcmp(r[0].dxe, r[b].dxe, bytes) == 0);
        CHECK(memcmp(r[b].dx_masked, r[b].dx, bytes) == 0);
        CHECK(memcmp(r[0].mean, r[b].mean, sizeof r[0].mean) == 0 &&
              memcmp(r[0].invstd, r[b].invstd, sizeof r[0].invstd) == 0);
        CHECK(memcmp(r[0].rm, r[b].rm, sizeof r[0].rm) == 0 && memcmp(r[0].rv, r[b].rv, sizeof r[0].rv) == 0);
        CHECK(memcmp(r[0].dg, r[b].dg, sizeof r[0].dg) == 0 && memcmp(r[0].db, r[b].db, sizeof r[0].db) == 0);
        CHECK(memcmp(r[0].dge, r[b].dge, sizeof r[0].dge) == 0 && memcmp(r[0].dbe, r[b].dbe, sizeof r[0].dbe) == 0);
        CHECK(memcmp(r[0].gap, r[b].gap, n * C * sizeof(float)) == 0 && memcmp(r[0].gap_dx, r[b].gap_dx, bytes) == 0);
        CHECK(memcmp(r[0].drop, r[b].drop, bytes) == 0 && memcmp(r[0].drop_dx, r[b].drop_dx, bytes) == 0);
        CHECK(memcmp(r[0].mask, r[b].mask, count) == 0);
    }
    CHECK(memcmp(r[0].dx_masked, r[0].dx, bytes) == 0);
    /* The NCHW kernels and the reference's dropout. */
    float *y = malloc(bytes), *out = malloc(bytes), mean[C], invstd[C], rm[C], rv[C], dg[C], db[C], gap[n * C];
    uint8_t *mask = malloc(count);
    for (size_t c = 0; c < C; c++) rm[c] = 0.1f * (float)c, rv[c] = 1.0f + 0.05f * (float)c;
    cnn_cpu_bn_forward_train(n, C, hw, x, gamma, beta, 0.1f, 1e-5f, rm, rv, y, mean, invstd, 1, NULL);
    double worst = rel_error(r[0].y, y, count, FLOOR);
    note(&worst, rel_error(r[0].rv, rv, C, FLOOR));
    cnn_cpu_bn_backward(n, C, hw, x, y, dy, gamma, mean, invstd, out, dg, db);
    note(&worst, rel_error(r[0].dx, out, count, FLOOR));
    note(&worst, rel_error(r[0].dg, dg, C, FLOOR));
    note(&worst, rel_error(r[0].db, db, C, FLOOR));
    cnn_cpu_bn_forward_eval(n, C, hw, x, gamma, beta, rm, rv, 1e-5f, out, 1, NULL);
    note(&worst, rel_error(r[0].ye, out, count, FLOOR));
    for (size_t s = 0; s < n; s++)
        for (size_t c = 0; c < C; c++) {
            double sum = 0;
            for (size_t q = 0; q < hw; q++) sum += x[(s * C + c) * hw + q];
            gap[s * C + c] = (float)(sum / hw);
        }
    note(&worst, rel_error(r[0].gap, gap, n * C, FLOOR));
    mx_rng drop;
    mx_rng_init(&drop, 5, MX_STREAM_DROPOUT);
    mx_dropout_forward(count, 0.3f, &drop, x, out, mask);
    CHECK(memcmp(out, r[0].drop, bytes) == 0 && memcmp(mask, r[0].mask, count) == 0);
    CHECK(worst <= RTOL);
    size_t zeroed = 0;
    for (size_t i = 0; i < count; i++) zeroed += r[0].y[i] == 0.0f;
    CHECK(zeroed > count / 4 && zeroed < 3 * count / 4);
    printf("  nChw8c, nChw16c and NHWC: the same bits (batch norm both modes, its backwards, pooling, dropout); "
           "%.1e from the NCHW kernels\n", worst);
    for (int b = 0; b < 3; b++) {
        free(r[b].y), free(r[b].ye), free(r[b].dx), free(r[b].dx_masked), free(r[b].dxe), free(r[b].gap);
        free(r[b].gap_dx), free(r[b].drop), free(r[b].drop_dx), free(r[b].mask);
    }
    free(x), free(dy), free(y), free(out), free(mask);
}

/* The block is the CPU's kernels' own unless MIXREG_CHANNEL_BLOCK says 8,
 * 16 or nhwc; anything else, or 8 for a bfloat16 model, is refused in one
 * line. A bfloat16 model is NHWC exactly where oneDNN's bfloat16 kernels
 * pick that layout. */
static void test_block_choice(void)
{
    CHECK(mx_dnnl_channel_block() == 8 || mx_dnnl_channel_block() == 16);
    mx_model *m = make("resnet20", 1, 12, 12, 3, 2, MX_BACKEND_CPU);
    if (m) {
        const cnn_graph *g = ((const struct mx_model *)m)->impl;
        size_t blocked = 0;
        for (size_t t = 0; t < g->num_tensors; t++) {
            CHECK(g->tensors[t].blocked == 0 || g->tensors[t].blocked == mx_dnnl_channel_block());
            blocked += g->tensors[t].blocked != 0;
        }
        CHECK(blocked > 0);
        mx_model_free(m);
    }
    mx_model_spec spec = {.in_channels = 1, .in_height = 12, .in_width = 12, .num_classes = 3,
                          .backend = MX_BACKEND_CPU};
    snprintf(spec.arch, sizeof spec.arch, "resnet20");
    setenv("MIXREG_CHANNEL_BLOCK", "12", 1);
    m = NULL;
    CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_ARG && m == NULL);
    CHECK(strstr(mx_error_message(), "MIXREG_CHANNEL_BLOCK") && strstr(mx_error_message(), "8, 16 or nhwc"));
    if (mx_dnnl_bf16_available()) {
        setenv("MIXREG_CHANNEL_BLOCK", "8", 1);
        spec.precision = MX_PRECISION_BF16;
        CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_ARG && m == NULL);
        CHECK(strstr(mx_error_message(), "bfloat16 models are blocked by 16"));
        /* Each setting's layout, and the CPU's own without one. */
        static const char *const settings[3] = {"16", "nhwc", NULL};
        const size_t want[3] = {16, 16 | CNN_NHWC, mx_dnnl_bf16_prefers_nhwc() ? 16 | CNN_NHWC : 16};
        for (int k = 0; k < 3; k++) {
            if (settings[k]) setenv("MIXREG_CHANNEL_BLOCK", settings[k], 1);
            else unsetenv("MIXREG_CHANNEL_BLOCK");
            m = NULL;
            CHECK_OK(mx_model_create(&spec, 2, &m));
            if (!m) continue;
            const cnn_graph *g = ((const struct mx_model *)m)->impl;
            for (size_t t = 0; t < g->num_tensors; t++) CHECK(g->tensors[t].blocked == 0 || g->tensors[t].blocked == want[k]);
            mx_model_free(m);
        }
        printf("  bfloat16 activations here: %s\n", layout_name(want[2]));
    }
    unsetenv("MIXREG_CHANNEL_BLOCK");
}

/* ---- a cpu-backend checkpoint ---- */

/* The bf16 data flow's kernels (cnn_cpu_exec.c hands bfloat16 on between
 * layers) against their float32 forms, bit for bit: batch norm's output
 * written in bfloat16 (alone or beside float32) is the float32 output rounded
 * to nearest even; its backward with the ReLU's mask from the input and the
 * forward's constants equals the one masking by the output; its input
 * gradient in bfloat16 is the float32 one rounded; the residual add's
 * bfloat16 copy is its output rounded. */
static uint16_t rne_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static int rounds_to(const float *f32, const uint16_t *b16, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (b16[i] != rne_bf16(f32[i])) return 0;
    return 1;
}

static float widen_bf16(uint16_t h)
{
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Batch norm reading its input and its dy in bfloat16 (CNN_X_BF16,
 * CNN_DY_BF16: a convolution wrote them so) gives the float32 kernels' bits
 * on the values they hold, in both layouts of block 16: forward (training and
 * eval), backward (the ReLU's mask from the output and from the input) and
 * the recomputed output. */
static void test_bf16_operands(size_t n, size_t C, size_t hw, const float *x, const float *dy, const float *gamma,
                               const float *beta, double *partial)
{
    const size_t count = n * C * hw;
    uint16_t *x16 = malloc(count * sizeof *x16), *g16 = malloc(count * sizeof *g16);
    float *xr = malloc(count * sizeof *xr), *gr = malloc(count * sizeof *gr), *y[2], *dx[2], *ya[2];
    for (int k = 0; k < 2; k++) {
        y[k] = malloc(count * sizeof *y[k]), dx[k] = malloc(count * sizeof *dx[k]);
        ya[k] = malloc(count * sizeof *ya[k]);
    }
    for (size_t i = 0; i < count; i++) {
        x16[i] = rne_bf16(x[i]), xr[i] = widen_bf16(x16[i]);
        g16[i] = rne_bf16(dy[i]), gr[i] = widen_bf16(g16[i]);
    }
    const float *xb = (const float *)(const void *)x16, *gb = (const float *)(const void *)g16;
    static const size_t layouts[2] = {16, 16 | CNN_NHWC};
    for (size_t l = 0; l < 2; l++) {
        const size_t L = layouts[l], LB = L | CNN_X_BF16 | CNN_DY_BF16;
        float rm[2][32], rv[2][32], sm[2][32], si[2][32], affine[2][96], dg[2][32], db[2][32];
        for (int k = 0; k < 2; k++)
            for (size_t c = 0; c < C; c++) rm[k][c] = 0.1f * (float)c, rv[k][c] = 1.0f + 0.01f * (float)c;
        cnn_cpu_bn_forward_train_blocked(n, C, hw, L, xr, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y[0], sm[0], si[0], 1,
                                         partial, affine[0], NULL);
        cnn_cpu_bn_forward_train_blocked(n, C, hw, LB, xb, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], y[1], sm[1], si[1],
                                         1, partial, affine[1], NULL);
        CHECK(memcmp(y[0], y[1], count * sizeof *y[0]) == 0);
        CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
        CHECK(memcmp(sm[0], sm[1], sizeof sm[0]) == 0 && memcmp(si[0], si[1], sizeof si[0]) == 0);
        /* The recomputed output, and the eval forward. */
        cnn_cpu_bn_apply(n, C, hw, LB, xb, affine[1], 1, ya[1]);
        CHECK(memcmp(y[0], ya[1], count * sizeof *y[0]) == 0);
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, xr, gamma, beta, rm[0], rv[0], 1e-5f, ya[0], 0, partial, NULL,
                                        NULL, NULL);
        cnn_cpu_bn_forward_eval_blocked(n, C, hw, LB, xb, gamma, beta, rm[0], rv[0], 1e-5f, ya[1], 0, partial, NULL,
                                        NULL, NULL);
        CHECK(memcmp(ya[0], ya[1], count * sizeof *ya[0]) == 0);
        /* Backward, masked by the output, then by the input and the constants. */
        for (int from_input = 0; from_input < 2; from_input++) {
            const float *mask = from_input ? NULL : y[0], *rk = from_input ? affine[0] : NULL;
            cnn_cpu_bn_backward_blocked(n, C, hw, L, xr, mask, rk, gr, gamma, sm[0], si[0], dx[0], 0, dg[0], db[0],
                                        partial);
            cnn_cpu_bn_backward_blocked(n, C, hw, LB, xb, mask, rk, gb, gamma, sm[0], si[0], dx[1], 0, dg[1], db[1],
                                        partial);
            CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0);
            CHECK(memcmp(dg[0], dg[1], C * sizeof dg[0][0]) == 0 && memcmp(db[0], db[1], C * sizeof db[0][0]) == 0);
        }
        /* Only x in bfloat16, then only dy (eval-mode backward). */
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L, xr, NULL, NULL, dy, gamma, rm[0], rv[0], 1e-5f, dx[0], 0, dg[0],
                                         db[0], partial);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L | CNN_X_BF16, xb, NULL, NULL, dy, gamma, rm[0], rv[0], 1e-5f,
                                         dx[1], 0, dg[1], db[1], partial);
        CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0 && memcmp(dg[0], dg[1], C * sizeof dg[0][0]) == 0);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L, x, NULL, NULL, gr, gamma, rm[0], rv[0], 1e-5f, dx[0], 0, dg[0],
                                         db[0], partial);
        cnn_cpu_bn_backward_eval_blocked(n, C, hw, L | CNN_DY_BF16, x, NULL, NULL, gb, gamma, rm[0], rv[0], 1e-5f,
                                         dx[1], 0, dg[1], db[1], partial);
        CHECK(memcmp(dx[0], dx[1], count * sizeof *dx[0]) == 0 && memcmp(db[0], db[1], C * sizeof db[0][0]) == 0);
    }
    printf("bf16 kernels: batch norm reading x and dy in bfloat16: the float32 kernels' bits on the values they hold, "
           "nChw16c and NHWC\n");
    free(x16), free(g16), free(xr), free(gr);
    for (int k = 0; k < 2; k++) free(y[k]), free(dx[k]), free(ya[k]);
}

/* A batch norm writing the residual add after it (the addend added before
 * the add's ReLU, cnn_cpu_exec.c bn_add_fused): the bits of the batch norm's
 * output added by cnn_cpu_add_forward, training and eval, in every blocked
 * layout, with the add's bfloat16 copy. */
static void test_bn_add_fused(void)
{
    const size_t n = 3, C = 32, hw = 40, count = n * C * hw;
    mx_rng rng;
    mx_rng_init(&rng, 78, 0);
    float *x = malloc(count * sizeof *x), *other = malloc(count * sizeof *other), *y = malloc(count * sizeof *y);
    float *two = malloc(count * sizeof *two), *one = malloc(count * sizeof *one);
    uint16_t *c16 = malloc(count * sizeof *c16), *bits[2] = {malloc(count / 16 * 2), malloc(count / 16 * 2)};
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    float gamma[32], beta[32], rm[2][32], rv[2][32], sm[32], si[32];
    random_fill(&rng, x, count);
    random_fill(&rng, other, count);
    for (size_t c = 0; c < C; c++) gamma[c] = 1.0f + 0.2f * (float)c / 32, beta[c] = 0.1f * (float)c / 32 - 0.05f;
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    size_t zeroed = 0;
    for (size_t l = 0; l < 3; l++)
        for (int eval = 0; eval < 2; eval++) {
            const size_t L = layouts[l];
            const cnn_bn_add add = {other, L == 16 ? bits[0] : NULL};
            for (int k = 0; k < 2; k++)
                for (size_t c = 0; c < C; c++) rm[k][c] = 0.0f, rv[k][c] = 1.0f;
            if (eval) {
                cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, x, gamma, beta, rm[0], rv[0], 1e-5f, y, 0, partial, NULL,
                                                NULL, NULL);
                cnn_cpu_bn_forward_eval_blocked(n, C, hw, L, x, gamma, beta, rm[1], rv[1], 1e-5f, one, 1, partial,
                                                NULL, L == 16 ? c16 : NULL, &add);
            } else {
                cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, L, x, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y, sm, si,
                                                        0, partial, NULL, NULL, NULL, NULL);
                cnn_cpu_bn_forward_train_blocked_synced(n, C, hw, L, x, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], one, sm,
                                                        si, 1, partial, NULL, L == 16 ? c16 : NULL, NULL, &add);
                CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
            }
            cnn_cpu_add_forward_bf16_copy(count, other, y, two, 1, NULL, bits[1]);
            CHECK(memcmp(one, two, count * sizeof *one) == 0);
            if (L == 16) CHECK(rounds_to(two, c16, count) && memcmp(bits[0], bits[1], count / 16 * 2) == 0);
            for (size_t i = 0; i < count; i++) zeroed += two[i] == 0.0f;
        }
    CHECK(zeroed > count && zeroed < 5 * count); /* the ReLU mattered (6 runs) */
    /* The add's backward from its ReLU's mask as bits (the last output's): the
     * bits of the one masking by the output, fresh and added to. */
    float *d[4];
    for (int k = 0; k < 4; k++) d[k] = malloc(count * sizeof *d[k]);
    memcpy(d[0], x, count * sizeof *x), memcpy(d[2], x, count * sizeof *x);
    cnn_cpu_add_backward(count, two, other, NULL, d[0], 1, d[1], 0);
    cnn_cpu_add_backward_bits(count, bits[1], other, NULL, d[2], 1, d[3], 0);
    CHECK(memcmp(d[0], d[2], count * sizeof *x) == 0 && memcmp(d[1], d[3], count * sizeof *x) == 0);
    /* A gradient the executor left to add into dy (dy_extra): the bits of
     * adding it first, also where it is the buffer of a gradient written
     * fresh; by the output and by the bits. */
    float *sum = malloc(count * sizeof *sum), *want = malloc(count * sizeof *want);
    for (int by_bits = 0; by_bits < 2; by_bits++) {
        memcpy(sum, other, count * sizeof *sum);
        cnn_cpu_grad_pass(count, sum, x, 1);
        if (by_bits) cnn_cpu_add_backward_bits(count, bits[1], sum, NULL, want, 0, NULL, 0);
        else cnn_cpu_add_backward(count, two, sum, NULL, want, 0, NULL, 0);
        memcpy(d[0], x, count * sizeof *x);
        memcpy(d[1], x, count * sizeof *x);
        memcpy(d[2], y, count * sizeof *y), memcpy(d[3], y, count * sizeof *y);
        if (by_bits) { /* d[0] aliases the extra; d[2] is added to */
            cnn_cpu_add_backward_bits(count, bits[1], other, d[0], d[0], 0, d[2], 1);
            cnn_cpu_add_backward_bits(count, bits[1], other, d[1], d[3], 0, NULL, 0);
        } else {
            cnn_cpu_add_backward(count, two, other, d[0], d[0], 0, d[2], 1);
            cnn_cpu_add_backward(count, two, other, d[1], d[3], 0, NULL, 0);
        }
        cnn_cpu_grad_pass(count, sum, y, 0);
        cnn_cpu_grad_pass(count, sum, want, 1);
        CHECK(memcmp(d[0], want, count * sizeof *x) == 0 && memcmp(d[3], want, count * sizeof *x) == 0);
        CHECK(memcmp(d[2], sum, count * sizeof *x) == 0);
    }
    free(sum), free(want);
    printf("batch norm writing the residual add after it: the two nodes' bits (nChw8c, nChw16c, NHWC; training, eval), "
           "the ReLU's mask as bits\n");
    for (int k = 0; k < 4; k++) free(d[k]);
    free(x), free(other), free(y), free(two), free(one), free(c16), free(bits[0]), free(bits[1]), free(partial);
}

/* The residual add's masked backward with a gradient to add (dy_extra)
 * against the scalar formula d = (or +=) (dy + extra) where y > 0 (y NaN
 * passes), on a count that is no multiple of the kernel's 16-element blocks:
 * written fresh, added to, and with the extra in the buffer written. */
static void test_add_backward_extra(void)
{
    const size_t count = 16 * 5 + 7;
    float y[16 * 5 + 7], dy[16 * 5 + 7], extra[16 * 5 + 7], d[16 * 5 + 7], want[16 * 5 + 7];
    mx_rng rng;
    mx_rng_init(&rng, 21, MX_STREAM_INIT);
    for (size_t i = 0; i < count; i++) {
        y[i] = (float)mx_rng_uniform(&rng) - 0.5f;
        dy[i] = (float)mx_rng_uniform(&rng) - 0.5f;
        extra[i] = (float)mx_rng_uniform(&rng) - 0.5f;
    }
    y[3] = NAN, y[count - 1] = 0.0f, y[count - 2] = 1.0f;
    size_t masked = 0;
    for (int acc = 0; acc < 2; acc++)
        for (int alias = 0; alias < 2; alias++) {
            if (acc && alias) continue; /* the executor never adds into the extra's own buffer */
            for (size_t i = 0; i < count; i++) {
                const float base = acc ? 0.25f * (float)i : 0.0f, g = y[i] <= 0.0f ? 0.0f : dy[i] + extra[i];
                want[i] = acc ? base + g : g;
                d[i] = alias ? extra[i] : base;
                masked += !acc && !alias && y[i] <= 0.0f;
            }
            cnn_cpu_add_backward(count, y, dy, alias ? d : extra, d, acc, NULL, 0);
            CHECK(memcmp(d, want, sizeof want) == 0);
        }
    CHECK(masked > 10 && masked < count - 10); /* both sides of the mask */
    printf("the residual add's masked backward with a gradient to add: the scalar formula's bits (%zu elements)\n",
           count);
}

/* The residual add's backward taking the batch norm's backward sums
 * (cnn_cpu_add_bn_sums, one pass): the masked gradient and the batch norm's backward
 * (dx, dgamma, dbeta) are the bits of the add's pass followed by the batch
 * norm's own sums; masks by bits and by the output, with a gradient to add
 * (also aliasing the output), x float32 and bfloat16, nChw16c and NHWC. */
static void test_add_bn_sums(void)
{
    const size_t n = 3, C = 48, hw = 37, count = n * C * hw;
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    mx_rng rng;
    mx_rng_init(&rng, 79, 0);
    float *x = malloc(count * sizeof *x), *dy = malloc(count * sizeof *dy), *extra = malloc(count * sizeof *extra);
    float *y = malloc(count * sizeof *y), *g[2] = {malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    float *dx[2] = {malloc(count * sizeof(float)), malloc(count * sizeof(float))};
    uint16_t *x16 = malloc(count * sizeof *x16), *bits = malloc(count / 16 * sizeof *bits);
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    float gamma[48], sm[48], si[48], dg[2][48], db[2][48];
    random_fill(&rng, x, count), random_fill(&rng, dy, count), random_fill(&rng, extra, count), random_fill(&rng, y, count);
    for (size_t i = 0; i < count; i++) x16[i] = rne_bf16(x[i]);
    cnn_cpu_add_forward_bf16_copy(count, y, dy, y, 1, NULL, bits); /* y: an add's output, the bits its mask */
    for (size_t c = 0; c < C; c++) gamma[c] = 1.0f + 0.01f * (float)c, sm[c] = 0.02f * (float)c, si[c] = 1.5f;
    size_t cases = 0;
    for (size_t l = 0; l < 3; l++)
        for (int mask = 0; mask < 2; mask++)
            for (int ex = 0; ex < 3; ex++)
                for (int half = 0; half < 2 - (layouts[l] == 8); half++) { /* nChw8c: float32 only (AVX2) */
                    const size_t L = layouts[l] | (half ? CNN_X_BF16 : 0);
                    const void *xs = half ? (const void *)x16 : (const void *)x;
                    const uint16_t *b = mask ? bits : NULL;
                    const float *yv = mask ? NULL : y;
                    /* ex 2: the gradient to add is the output's own buffer */
                    if (ex == 2) memcpy(g[1], extra, count * sizeof *extra);
                    const float *e = ex == 0 ? NULL : ex == 1 ? extra : g[1];
                    if (b) cnn_cpu_add_backward_bits(count, b, dy, ex ? extra : NULL, g[0], 0, NULL, 0);
                    else cnn_cpu_add_backward(count, yv, dy, ex ? extra : NULL, g[0], 0, NULL, 0);
                    cnn_cpu_bn_backward_blocked_synced(n, C, hw, L, xs, NULL, NULL, g[0], gamma, sm, si, dx[0], 0,
                                                       dg[0], db[0], partial, NULL, 0);
                    cnn_cpu_add_bn_sums(n, C, hw, L, b, yv, dy, e, xs, g[1], partial);
                    cnn_cpu_bn_backward_blocked_synced(n, C, hw, L, xs, NULL, NULL, g[1], gamma, sm, si, dx[1], 0,
                                                       dg[1], db[1], partial, NULL, 1);
                    CHECK(memcmp(g[0], g[1], count * sizeof(float)) == 0);
                    CHECK(memcmp(dx[0], dx[1], count * sizeof(float)) == 0);
                    CHECK(memcmp(dg[0], dg[1], sizeof dg[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
                    cases++;
                }
    printf("add backward with batch norm sums in one pass: the bits of the two passes in %zu cases "
           "(nChw8c, nChw16c, NHWC)\n", cases);
    free(x), free(dy), free(extra), free(y), free(g[0]), free(g[1]), free(dx[0]), free(dx[1]), free(x16), free(bits);
    free(partial);
}

static void test_bf16_kernels(void)
{
    const size_t n = 3, C = 32, hw = 20, count = n * C * hw;
    mx_rng rng;
    mx_rng_init(&rng, 77, 0);
    float *x = malloc(count * sizeof *x), *y = malloc(count * sizeof *y), *y2 = malloc(count * sizeof *y2);
    float *dy = malloc(count * sizeof *dy), *dx = malloc(count * sizeof *dx), *dx2 = malloc(count * sizeof *dx2);
    uint16_t *y16 = malloc(count * sizeof *y16), *b16 = malloc(count * sizeof *b16);
    float gamma[32], beta[32], rm[2][32], rv[2][32], sm[32], si[32], affine[3 * 32], dg[2][32], db[2][32];
    double *partial = malloc((2 * n + 3) * C * sizeof *partial);
    random_fill(&rng, x, count);
    random_fill(&rng, dy, count);
    for (size_t c = 0; c < C; c++) {
        gamma[c] = 1.0f + 0.3f * (float)mx_rng_normal(&rng), beta[c] = 0.3f * (float)mx_rng_normal(&rng);
        rm[0][c] = rm[1][c] = 0.0f, rv[0][c] = rv[1][c] = 1.0f;
    }
    /* Forward: float32, then bfloat16 alone, then both. */
    cnn_cpu_bn_forward_train_blocked(n, C, hw, 16, x, gamma, beta, 0.1f, 1e-5f, rm[0], rv[0], y, sm, si, 1, partial,
                                     affine, NULL);
    cnn_cpu_bn_forward_train_blocked(n, C, hw, 16, x, gamma, beta, 0.1f, 1e-5f, rm[1], rv[1], NULL, sm, si, 1, partial,
                                     NULL, y16);
    CHECK(rounds_to(y, y16, count));
    CHECK(memcmp(rm[0], rm[1], sizeof rm[0]) == 0 && memcmp(rv[0], rv[1], sizeof rv[0]) == 0);
    memset(b16, 0, count * sizeof *b16);
    cnn_cpu_bn_forward_eval_blocked(n, C, hw, 16, x, gamma, beta, rm[0], rv[0], 1e-5f, y2, 1, partial, NULL, b16, NULL);
    CHECK(rounds_to(y2, b16, count));
    /* Backward: the mask from the output y, then from the input and the constants. */
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, y, NULL, dy, gamma, sm, si, dx, 0, dg[0], db[0], partial);
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, NULL, affine, dy, gamma, sm, si, dx2, 0, dg[1], db[1], partial);
    CHECK(memcmp(dx, dx2, count * sizeof *dx) == 0);
    CHECK(memcmp(dg[0], dg[1], sizeof dg[0]) == 0 && memcmp(db[0], db[1], sizeof db[0]) == 0);
    size_t zeroed = 0; /* the mask must matter for the comparison to mean anything */
    for (size_t i = 0; i < count; i++) zeroed += y[i] == 0.0f;
    CHECK(zeroed > count / 4 && zeroed < 3 * count / 4);
    /* Its input gradient in bfloat16, into dx2's first half. */
    cnn_cpu_bn_backward_blocked(n, C, hw, 16, x, NULL, affine, dy, gamma, sm, si, dx2, 1, NULL, NULL, partial);
    CHECK(rounds_to(dx, (const uint16_t *)(const void *)dx2, count));
    /* The residual add's copy. */
    cnn_cpu_add_forward(count, x, dy, y, 1);
    cnn_cpu_add_forward_bf16_copy(count, x, dy, y2, 1, y16, NULL);
    CHECK(memcmp(y, y2, count * sizeof *y) == 0);
    CHECK(rounds_to(y, y16, count));
    printf("bf16 kernels: batch norm and add outputs, the ReLU mask from the input, the bfloat16 gradient: "
           "the float32 forms' bits (%zu of %zu outputs zeroed by the ReLU)\n", zeroed, count);
    test_bf16_operands(n, C, hw, x, dy, gamma, beta, partial);
    free(x), free(y), free(y2), free(dy), free(dx), free(dx2), free(y16), free(b16), free(partial);
}

static void test_checkpoint(void)
{
    const size_t B = 4, d = 256, C = 3;
    mx_run run;
    memset(&run, 0, sizeof run);
    mx_train_config_default(&run.config);
    CHECK(run.config.model.backend == MX_BACKEND_CPU);
    snprintf(run.config.model.arch, sizeof run.config.model.arch, "resnet20");
    run.model = make("resnet20", 1, 16, 16, C, B, MX_BACKEND_CPU);
    if (!run.model) return;
    mx_model_init_params(run.model, 4);
    train_steps(run.model, 2, B, 0);
    float mean = 0.0f, std = 1.0f;
    CHECK_OK(mx_normalizer_init(&run.normalizer, 1, &mean, &std));
    CHECK_OK(mx_rescale_stats_alloc(&run.rescale, d, C));
    run.rescale.theta_bar = 0.75;
    char dir[4096];
    const char *tmp = getenv("MIXREG_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/test_cnn_backends_run", tmp ? tmp : "/tmp");
    CHECK_OK(mx_make_dirs(dir));
    CHECK_OK(mx_run_save(dir, &run));
    mx_run loaded;
    CHECK_OK(mx_run_load(dir, B, &loaded));
    if (!loaded.model) {
        mx_run_free(&run);
        return;
    }
    CHECK(mx_model_get_spec(loaded.model)->backend == MX_BACKEND_CPU);
    CHECK(loaded.config.model.backend == MX_BACKEND_CPU);
    mx_rng rng;
    mx_rng_init(&rng, 8, 0);
    float x[4 * 256], a[12], b[12];
    random_fill(&rng, x, B * d);
    mx_model_set_training(run.model, 0);
    mx_model_set_training(loaded.model, 0);
    for (size_t n = B; n >= B - 1; n--) {
        memcpy(a, mx_model_forward(run.model, x, n), n * C * sizeof(float));
        memcpy(b, mx_model_forward(loaded.model, x, n), n * C * sizeof(float));
        CHECK(memcmp(a, b, n * C * sizeof(float)) == 0);
    }
    /* The same weights on the reference layers: the same model to the tolerance. */
    mx_model *ref = make("resnet20", 1, 16, 16, C, B, MX_BACKEND_REF);
    if (ref) {
        CHECK_OK(mx_model_copy_state(ref, loaded.model));
        mx_model_set_training(ref, 0);
        memcpy(a, mx_model_forward(ref, x, B), B * C * sizeof(float));
        memcpy(b, mx_model_forward(loaded.model, x, B), B * C * sizeof(float));
        double e = rel_error(b, a, B * C, FLOOR);
        CHECK(e <= RTOL);
        printf("  cpu-backend checkpoint: loads on the cpu backend, identical eval logits (batches 4, 3); "
               "%.1e from the reference layers\n", e);
        mx_model_free(ref);
    }
    mx_run_free(&loaded);
    mx_run_free(&run);
}

/* ---- the MLP ignores the backend ---- */

static void test_mlp(void)
{
    mx_model *a = make("mlp", 1, 8, 8, 3, 4, MX_BACKEND_REF), *b = make("mlp", 1, 8, 8, 3, 4, MX_BACKEND_CPU);
    if (!a || !b) {
        mx_model_free(a), mx_model_free(b);
        return;
    }
    mx_model_init_params(a, 1);
    mx_model_init_params(b, 1);
    mx_rng rng;
    mx_rng_init(&rng, 2, 0);
    float x[4 * 64], la[12];
    random_fill(&rng, x, sizeof x / sizeof x[0]);
    memcpy(la, mx_model_forward(a, x, 4), sizeof la);
    CHECK(memcmp(la, mx_model_forward(b, x, 4), sizeof la) == 0);
    mx_model_free(a), mx_model_free(b);
    mx_model_spec spec = {.arch = "lenet5", .in_channels = 1, .in_height = 28, .in_width = 28, .num_classes = 10,
                          .backend = (mx_backend)7};
    mx_model *m = NULL;
    CHECK(mx_model_create(&spec, 2, &m) == MX_ERR_ARG && m == NULL);
    CHECK(strstr(mx_error_message(), "ref, cpu or cuda") != NULL);
}

/* mx_model_predict against the eval-mode forward on the cpu backend (its
 * folded batch norms, sum and ReLU post-ops), after training steps have moved
 * the running statistics and with gamma and beta away from 1 and 0: logits
 * within RTOL, the same bits on every call and at every batch size's own
 * plans, the mode left as it was, also for batches split into chunks; on the
 * reference backend, the forward's bits. */
typedef struct {
    const char *arch;
    size_t c, h, w, classes, batch;
    int folds_bn, fuses_add; /* lenet5 has no batch norm; pre-activation blocks add after a plain conv */
    int winograd;            /* no conv wider than 64 channels: mixreg's Winograd kernel on its 3x3 ones */
    int narrow_3x3;          /* a wider network with 3x3 stride-1 layers of at most 64 channels: on the
                                Winograd kernel where oneDNN has no Winograd of its own (AVX2) */
} predict_case;

/* Case c (seeded by k): predictions against the eval forward at the max
 * batch and one less, and the fusions the case expects. */
static void predict_agrees(const predict_case *c, size_t k)
{
    const size_t B = c->batch, C = c->classes, d = c->c * c->h * c->w;
    mx_model *m = make(c->arch, c->c, c->h, c->w, C, B, MX_BACKEND_CPU);
    mx_model *r = make(c->arch, c->c, c->h, c->w, C, B, MX_BACKEND_REF);
    float *x = malloc(B * d * sizeof *x), *y = malloc(B * C * sizeof *y), *dl = malloc(B * C * sizeof *dl);
    float *eval = malloc(B * C * sizeof *eval), *pred = malloc(B * C * sizeof *pred);
    if (!m || !r || !x || !y || !dl || !eval || !pred) {
        CHECK(0);
        goto next;
    }
    mx_model_init_params(m, 40 + k);
    mx_rng rng;
    mx_rng_init(&rng, 50 + k, 0);
    settle_model(m, &rng, B, d, C, x, y, dl);
    size_t folded = 0, summed = 0, wino = 0, gemm = 0;
    const cnn_graph *g = ((const struct mx_model *)m)->impl;
    for (size_t j = 0; j < g->num_nodes; j++)
        folded += cnn_cpu_node_of(g, j)->fold_bn >= 0, summed += cnn_cpu_node_of(g, j)->fold_add >= 0,
            wino += cnn_cpu_node_of(g, j)->wino == CNN_WINO_TILES, gemm += cnn_cpu_node_of(g, j)->wino == CNN_WINO_GEMM;
    CHECK((folded > 0) == c->folds_bn);
    /* mixreg's Winograd kernel works in the build's vector block
     * (mx_wino_block); the add is fused by it or by oneDNN where the
     * activations are in its kernels' own block; elsewhere (nChw16c on
     * AVX2) it stays a node. */
    const size_t block = g_block ? g_block : mx_dnnl_channel_block();
    const int own_wino = (c->winograd || (c->narrow_3x3 && mx_wino_block() == 8)) &&
                         mx_wino_available() && block == mx_wino_block();
    const int add_fusable = own_wino || mx_dnnl_fused_add_available(block);
    CHECK((summed > 0) == (c->fuses_add && add_fusable));
    CHECK((wino > 0) == own_wino);
    random_fill(&rng, x, B * d);
    double worst = 0;
    for (size_t n = B; n >= B - 1; n--) {
        mx_model_set_training(m, 0);
        memcpy(eval, mx_model_forward(m, x, n), n * C * sizeof *eval);
        mx_model_set_training(m, 1);
        memcpy(pred, mx_model_predict(m, x, n), n * C * sizeof *pred);
        CHECK(mx_model_is_training(m) == 1);
        double e = norm_error(pred, eval, n * C);
        if (e > worst) worst = e;
        CHECK(e <= RTOL);
        CHECK(memcmp(pred, mx_model_predict(m, x, n), n * C * sizeof *pred) == 0);
    }
    /* Every batch size got its inference plans (none fell back to the
     * unfused forward, which says so on stderr). */
    CHECK(!cnn_cpu_of(g)->plan_warned);
    printf("  %-12s %zux%zux%zu: %zu batch norms folded into convolutions, %zu residual adds fused, %zu "
           "convolutions on the Winograd kernel and %zu on the GEMM ones; logits %.1e from the eval forward "
           "(norm-wise)\n",
           c->arch, c->c, c->h, c->w, folded, summed, wino, gemm, worst);
    /* The reference backend's predict is its eval forward, bit for bit. */
    CHECK_OK(mx_model_copy_state(r, m));
    mx_model_set_training(r, 0);
    memcpy(eval, mx_model_forward(r, x, B), B * C * sizeof *eval);
    CHECK(memcmp(eval, mx_model_predict(r, x, B), B * C * sizeof *eval) == 0);
next:
    mx_model_free(m), mx_model_free(r);
    free(x), free(y), free(dl), free(eval), free(pred);
}

static void test_predict(void)
{
    static const predict_case cases[] = {
        {"lenet5", 1, 28, 28, 10, 5, 0, 0, 0, 0},    {"resnet20", 1, 28, 28, 10, 5, 1, 1, 1, 0},
        {"resnet20", 3, 16, 16, 5, 4, 1, 1, 1, 0},   {"preact18", 1, 12, 12, 10, 4, 1, 0, 0, 1},
        {"wrn-10-2-0.3", 3, 8, 8, 4, 4, 1, 0, 0, 1}, {"resnet50", 3, 32, 32, 6, 2, 1, 1, 0, 1},
        /* above CNN_PREDICT_CHUNK: chunks of 24, 23, 23 (then 3 x 23), the weights folded once per call */
        {"resnet20", 3, 8, 8, 4, 70, 1, 1, 1, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) predict_agrees(&cases[k], k);
    if (mx_wino_block() && (g_block ? g_block : mx_dnnl_channel_block()) == mx_wino_block()) {
        /* preact18's and resnet50's wider layers on the batch-wide GEMM
         * Winograd kernels, which these batches are too small for otherwise
         * (prediction runs them where they have the tiles). */
        printf("  with the GEMM Winograd kernels at every batch:\n");
        mx_wino_gemm_min_tiles_set(1);
        predict_agrees(&cases[3], 3);
        predict_agrees(&cases[5], 5);
        mx_wino_gemm_min_tiles_set(0);
    }
}

/* The backend tables (cnn_backend.h): ref and cpu fill in every kernel (the
 * executor calls them unchecked), the optimizer and copies are the host's,
 * each value maps to its table, and the cuda table fills in none (its
 * models are refused before any could be called: tests/test_cuda.c). */
static void test_backend_tables(void)
{
    const cnn_backend *tables[2] = {&cnn_backend_ref, &cnn_backend_cpu};
    for (int t = 0; t < 2; t++) {
        const cnn_backend *be = tables[t];
        const void *kernels[] = {
            (const void *)be->conv_forward,    (const void *)be->bn_forward,       (const void *)be->add_forward,
            (const void *)be->maxpool_forward, (const void *)be->gap_forward,      (const void *)be->linear_forward,
            (const void *)be->dropout_forward, (const void *)be->relu_forward,     (const void *)be->conv_backward,
            (const void *)be->bn_backward,     (const void *)be->add_backward,     (const void *)be->maxpool_backward,
            (const void *)be->gap_backward,    (const void *)be->linear_backward,  (const void *)be->dropout_backward,
            (const void *)be->relu_backward,   (const void *)be->grad_accumulate,  (const void *)be->bn_recompute,
            (const void *)be->sgd_step,        (const void *)be->to_device,        (const void *)be->to_host};
        for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) CHECK(kernels[i] != NULL);
    }
    CHECK(cnn_backend_of(MX_BACKEND_REF) == &cnn_backend_ref && cnn_backend_of(MX_BACKEND_CPU) == &cnn_backend_cpu);
    CHECK(cnn_backend_of(MX_BACKEND_CUDA) == &cnn_backend_cuda && cnn_backend_of((mx_backend)7) == NULL);
    CHECK(!strcmp(cnn_backend_ref.name, "ref") && !strcmp(cnn_backend_cpu.name, "cpu"));
    CHECK(cnn_backend_cuda.conv_forward == NULL && cnn_backend_cuda.prepare != NULL);
    /* The host's optimizer update and copies, through the table: mx_sgd_step's bits. */
    mx_sgd_config sgd = {.momentum = 0.9, .weight_decay = 5e-4, .nesterov = 1};
    float p[5] = {1, -2, 0.5f, 3, -0.25f}, g[5] = {0.1f, 0.2f, -0.3f, 0.4f, -0.5f}, v[5] = {0}, p2[5], v2[5] = {0},
          back[5];
    memcpy(p2, p, sizeof p);
    for (int step = 0; step < 3; step++) {
        CHECK_OK(cnn_backend_cpu.sgd_step(&sgd, 0.1, p, g, v, 5));
        mx_sgd_step(&sgd, 0.1, p2, g, v2, 5);
    }
    CHECK(memcmp(p, p2, sizeof p) == 0 && memcmp(v, v2, sizeof v) == 0 && p[0] != 1.0f);
    CHECK_OK(cnn_backend_cpu.to_host(back, p, sizeof p));
    CHECK(memcmp(back, p, sizeof p) == 0);
}

int main(void)
{
    mx_set_threads(2);
    /* The model tests in every layout, whichever is this CPU's own. */
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    for (int b = 0; b < 3; b++) {
        set_block(layouts[b]);
        printf("agreement, activations %s (this CPU's kernels: nChw%zuc; tolerance %.0e relative, "
               "gradients %.0e, %.1e with Winograd convolutions)\n",
               layout_name(g_block), mx_dnnl_channel_block(), RTOL, GRAD_RTOL, GRAD_RTOL_WINOGRAD);
        test_agreement();
        printf("predict, activations %s\n", layout_name(g_block));
        test_predict();
    }
    set_block(0);
    printf("blocked kernels\n");
    test_blocked_kernels();
    test_block_choice();
    printf("determinism\n");
    test_determinism();
    /* bf16 in the layout this CPU's bfloat16 kernels pick, then in the other. */
    printf("bf16, activations %s\n", layout_name(mx_dnnl_bf16_prefers_nhwc() ? 16 | CNN_NHWC : 16));
    test_bf16();
    if (mx_dnnl_bf16_available()) {
        set_block(mx_dnnl_bf16_prefers_nhwc() ? 16 : 16 | CNN_NHWC);
        printf("bf16, activations %s\n", layout_name(g_block));
        test_bf16();
        set_block(0);
    }
    test_bf16_kernels();
    test_bn_add_fused();
    test_add_backward_extra();
    test_add_bn_sums();
    printf("plan sets\n");
    test_plan_sets();
    printf("checkpoint\n");
    test_checkpoint();
    printf("mlp\n");
    test_mlp();
    test_backend_tables();
    CHECK_DONE();
}

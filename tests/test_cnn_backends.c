/* The CNN backends against each other: the cpu backend (oneDNN convolution,
 * pooling and linear layers, its own threaded batch norm, ReLU and add) agrees
 * with the reference layers on a whole training step (logits, loss, every
 * parameter gradient, the batch-norm buffers it updates, the parameters after
 * SGD) and in eval mode (logits, input gradient), at the max batch and at a
 * smaller one (plans made on first use); the cpu backend repeats bit for bit;
 * its plan sets are reused and replaced correctly; a cpu-backend checkpoint
 * loads onto the cpu backend and evaluates identically; the MLP ignores the
 * backend; bf16 convolutions stay within bfloat16's precision of the
 * reference and repeat bit for bit, and are refused off the cpu backend.
 * Two threads throughout (results repeat for a fixed thread count). The cpu
 * backend's kernels on their own: test_cnn_cpu_kernels. */
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

typedef struct {
    double logits, loss, grads, buffers, params, eval_logits, eval_dx;
    const char *worst_grad;
} agreement;

/* Every parameter gradient of b against a; the worst one's name. */
static double compare_grads(mx_model *a, mx_model *b, const char **worst_name)
{
    const mx_param_info *pt;
    size_t np = mx_model_param_tensors(a, &pt);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        double e = check_rel_floor(mx_model_grads(b) + pt[i].offset, mx_model_grads(a) + pt[i].offset, pt[i].numel, FLOOR);
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
            check_note_worst(&worst, check_rel_floor(bb[i].data, ba[i].data, ba[i].numel, FLOOR));
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
    check_note_worst(&ag->logits, check_rel_floor(lc, lr, n * C, FLOOR));
    double loss_ref = mx_softmax_xent(lr, y, n, C, dl_ref), loss_cpu = mx_softmax_xent(lc, y, n, C, dl_cpu);
    check_note_worst(&ag->loss, fabs(loss_cpu - loss_ref) / fabs(loss_ref));
    /* Each backward from its own dlogits: the whole step as training runs it. */
    mx_model_backward(ref, dl_ref, n);
    mx_model_backward(cpu, dl_cpu, n);
    check_note_worst(&ag->grads, compare_grads(ref, cpu, &ag->worst_grad));
    check_note_worst(&ag->buffers, compare_buffers(ref, cpu));
    mx_sgd_config sgd = {0.9, 1, 5e-4};
    mx_sgd_step(&sgd, 0.05, mx_model_params(ref), mx_model_grads(ref), v_ref, count);
    mx_sgd_step(&sgd, 0.05, mx_model_params(cpu), mx_model_grads(cpu), v_cpu, count);
    check_note_worst(&ag->params, check_rel_floor(mx_model_params(cpu), mx_model_params(ref), count, FLOOR));

    /* Eval mode from the same (reference) state. */
    CHECK_OK(mx_model_copy_state(cpu, ref));
    mx_model_set_training(ref, 0);
    mx_model_set_training(cpu, 0);
    memcpy(lr, mx_model_forward(ref, x, n), n * C * sizeof *lr);
    lc = mx_model_forward(cpu, x, n);
    kinked |= relu_flips(ref, cpu, n) != 0;
    check_note_worst(&ag->eval_logits, check_rel_floor(lc, lr, n * C, FLOOR));
    mx_softmax_xent(lr, y, n, C, dl_ref);
    mx_softmax_xent(lc, y, n, C, dl_cpu);
    mx_model_backward_input(ref, dl_ref, n, dx_ref);
    mx_model_backward_input(cpu, dl_cpu, n, dx_cpu);
    check_note_worst(&ag->eval_dx, check_rel_floor(dx_cpu, dx_ref, n * d, FLOOR));
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
            double e = check_rel_floor(again, first[B - 1], n * C, FLOOR);
            if (e > worst) worst = e;
        }
    CHECK(same);        /* a batch size's plans, made again after being replaced, give the same bits */
    CHECK(worst < 1e-5); /* and the batch sizes agree on each sample (to float32 rounding) */
    printf("  batches 1..5 in turn on three plan slots: each size repeats its bits, sizes agree to %.1e\n", worst);
    mx_model_free(m);
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
        double e = check_rel_floor(b, a, B * C, FLOOR);
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
    printf("channel block\n");
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
    printf("plan sets\n");
    test_plan_sets();
    printf("checkpoint\n");
    test_checkpoint();
    printf("mlp\n");
    test_mlp();
    test_backend_tables();
    CHECK_DONE();
}

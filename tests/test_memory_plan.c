/* The cpu backend's memory plan against the same models planned otherwise:
 * buffers packed by the times they are alive (gradients where activations
 * the backward has read were), batch norms' ReLU outputs recomputed and
 * tensors no backward reads in shared buffers, those buffers in memory
 * gradients take in the backward, the prediction weights in memory idle
 * during predictions, residual adds in place, float32 batch-norm outputs
 * recomputed into the input gradient's buffer, the first convolution's
 * output recomputed, bfloat16 convolution inputs
 * written again for the backward, mixreg's own kernels' buffers in oneDNN's
 * scratch. Each gives the bits of the model without
 * it, in less memory. Also the prediction's resnet50 stem and pooling in
 * chunks of samples that stay in cache. Two threads throughout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "cnn_test_data.h"
#include "cnn_twins.h"
#include "mixreg/layers_dnnl.h"
#include "mixreg/model.h"
#include "mixreg/rng.h"
#include "mixreg/threads.h"
#include "nn/cnn_cpu.h"
#include "nn/winograd.h"

/* Predictions against the eval forward: float32 sums in other orders. */
#define RTOL 1e-4

/* The models and max batches of the prediction weights' tests. */
static const struct {
    const char *arch;
    size_t B;
} pred_runs[2] = {{"resnet20", 96}, {"preact18", 40}};

/* A model planned for training keeps its prediction weights in buffers
 * idle during predictions (cnn_cpu_plan): resnet20 at 32x32 all its folded
 * weights in the memory plan's prediction region, which gradients share
 * (pred_cache);
 * preact18, too wide for pred_cache, in the output buffers of convolutions
 * whose batch norm the prediction folds: each convolution's own where one
 * fits (test_held_weights), the others one at a time in the shared fold
 * buffer. Predictions between steps leave the training as it was, and
 * agree with the eval forward. */
static void test_pred_weights_in_idle_memory(void)
{
    for (size_t r = 0; r < 2; r++) {
        const size_t B = pred_runs[r].B, d = 32 * 32;
        mx_model *a = make(pred_runs[r].arch, 1, 32, 32, 3, B, MX_BACKEND_CPU);
        mx_model *c = make(pred_runs[r].arch, 1, 32, 32, 3, B, MX_BACKEND_CPU);
        float *x = malloc(B * d * sizeof *x), *eval = malloc(B * 3 * sizeof *eval);
        if (a && c && x && eval) {
            const cnn_graph *g = ((const struct mx_model *)c)->impl;
            const cnn_cpu_graph *cs = cnn_cpu_of(g);
            int fold_in_tensor = 0;
            for (size_t k = 0; k < g->num_nodes; k++)
                fold_in_tensor |= g->nodes[k].op == CNN_CONV && cnn_cpu_node_of(g, k)->fold_bn >= 0 &&
                                  cs->fold == g->tensors[g->nodes[k].out].data;
            /* resnet20 predicts in chunks with its weights cached wherever
             * mixreg's Winograd kernels take the tensors' block (not in an
             * AVX2 build on an AVX-512 CPU, whose oneDNN blocks by 16): there
             * it folds one convolution's at a time too. */
            const int cached = r == 0 && mx_wino_block() == mx_dnnl_channel_block();
            CHECK(cached ? cs->pred_cache_floats > 0 && cs->pred_cache == g->pred_region
                         : cs->pred_cache_floats == 0 && cs->fold_floats > 0 && fold_in_tensor && !cs->fold_own);
            mx_model_init_params(a, 23);
            mx_model_init_params(c, 23);
            train_steps(a, 2, B, 0);
            train_steps(c, 2, B, 1);
            CHECK(same_state(a, c));
            mx_rng rng;
            mx_rng_init(&rng, 24, 0);
            random_fill(&rng, x, B * d);
            mx_model_set_training(c, 0);
            memcpy(eval, mx_model_forward(c, x, B), B * 3 * sizeof *eval);
            const double e = norm_error(mx_model_predict(c, x, B), eval, B * 3);
            CHECK(e <= RTOL);
            printf("  %s at batch %zu: the prediction weights in %s; training unchanged by predictions between "
                   "steps, logits %.1e from the eval forward\n", pred_runs[r].arch, B,
                   cached ? "the prediction region, all folded" : "convolutions' outputs", e);
        } else {
            CHECK(0);
        }
        mx_model_free(a), mx_model_free(c);
        free(x), free(eval);
    }
}

/* The fused convolutions of g (*entries), those with their prediction
 * weights kept between calls (*placed), and of those the ones inside
 * pred_cache or inside the output of a convolution that absorbs its batch
 * norm, never the fold buffer (the result); *node: a placed one that folds
 * a batch norm. */
static size_t entries_in_idle_buffers(const cnn_graph *g, size_t B, size_t *entries, size_t *placed, size_t *node)
{
    const cnn_cpu_graph *cs = cnn_cpu_of(g);
    size_t inside_count = 0;
    *entries = *placed = 0, *node = CNN_NONE;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (g->nodes[k].op != CNN_CONV || (cn->fold_bn < 0 && !cn->wino)) continue;
        ++*entries;
        const char *w = (const char *)cn->pred_w;
        if (!w) continue;
        ++*placed;
        if (cn->fold_bn >= 0) *node = k;
        int inside = cs->pred_cache && w >= (const char *)cs->pred_cache &&
                     w < (const char *)(cs->pred_cache + cs->pred_cache_floats);
        for (size_t j = 0; !inside && j < g->num_nodes; j++) {
            const cnn_tensor *t = &g->tensors[g->nodes[j].out];
            if (g->nodes[j].op != CNN_CONV || cnn_cpu_node_of(g, j)->fold_bn < 0 || t->data == cs->fold) continue;
            inside = w >= (const char *)t->data && w < (const char *)t->data + B * t->size * sizeof(float);
        }
        inside_count += inside;
    }
    return inside_count;
}

/* Held weights (mx_model_hold_weights): a model planned for training keeps
 * the prediction weights it prepared (resnet20 in pred_cache, preact18 in
 * its fused convolutions' outputs) and reuses them while the caller holds
 * them. Held predictions give the bits of unheld ones at any batch; a
 * change the caller makes while holding (against its promise) shows only
 * after the release, which proves the reuse; a training step while held
 * drops what was prepared. Holds nest. */
static void test_held_weights(void)
{
    for (size_t r = 0; r < 2; r++) {
        const size_t B = pred_runs[r].B, d = 3 * 32 * 32, out = B * 3 * sizeof(float);
        mx_model *a = make(pred_runs[r].arch, 3, 32, 32, 3, B, MX_BACKEND_CPU);
        mx_model *c = make(pred_runs[r].arch, 3, 32, 32, 3, B, MX_BACKEND_CPU);
        float *x = malloc(B * d * sizeof *x), *ref = malloc(out), *ref2 = malloc(out);
        if (!a || !c || !x || !ref || !ref2) {
            CHECK(0);
            mx_model_free(a), mx_model_free(c);
            free(x), free(ref), free(ref2);
            continue;
        }
        const cnn_graph *g = ((const struct mx_model *)c)->impl;
        size_t entries, placed, node;
        const size_t inside = entries_in_idle_buffers(g, B, &entries, &placed, &node);
        CHECK(placed > 0 && inside == placed && node != CNN_NONE);
        if (node == CNN_NONE) node = 0;
        mx_model_init_params(a, 31);
        mx_model_init_params(c, 31);
        train_steps(a, 2, B, 0);
        train_steps(c, 2, B, 0);
        mx_rng rng;
        mx_rng_init(&rng, 32, 0);
        random_fill(&rng, x, B * d);
        memcpy(ref, mx_model_predict(a, x, B), out);
        memcpy(ref2, mx_model_predict(a, x + d, B - 7), (B - 7) * 3 * sizeof(float));
        mx_model_hold_weights(c, 1);
        int same = memcmp(mx_model_predict(c, x, B), ref, out) == 0;
        same &= memcmp(mx_model_predict(c, x + d, B - 7), ref2, (B - 7) * 3 * sizeof(float)) == 0;
        same &= memcmp(mx_model_predict(c, x, B), ref, out) == 0;
        CHECK(same);
        /* Those bits came from weights kept in oneDNN's layout where a
         * oneDNN plan runs a fused convolution (re-made at batch B - 7 and
         * again at B). */
        size_t in_plan_layout = 0;
        for (size_t k = 0; k < g->num_nodes; k++)
            in_plan_layout += cnn_cpu_pred_weights_in_plan_layout(c, g, k) != 0;
        CHECK(in_plan_layout > 0);
        /* A running variance changed behind the hold, inside a nested hold
         * released again: the prepared weights stay. */
        mx_model_hold_weights(c, 1);
        const mx_buffer_info *ba, *bc;
        mx_model_buffer_tensors(a, &ba);
        mx_model_buffer_tensors(c, &bc);
        const size_t var = g->nodes[cnn_cpu_node_of(g, node)->fold_bn].buffer + 1; /* a placed entry's */
        ((float *)ba[var].data)[0] *= 4.0f;
        ((float *)bc[var].data)[0] *= 4.0f;
        mx_model_hold_weights(c, 0);
        const int reused = memcmp(mx_model_predict(c, x, B), ref, out) == 0;
        mx_model_hold_weights(c, 0);
        memcpy(ref2, mx_model_predict(a, x, B), out);
        const int changed = memcmp(ref2, ref, out) != 0; /* else the check below could not fail */
        const int released = memcmp(mx_model_predict(c, x, B), ref2, out) == 0;
        CHECK(changed && reused && released);
        /* A training step while held writes the arena and the weights. */
        mx_model_hold_weights(c, 1);
        CHECK(mx_model_predict(c, x, B) != NULL);
        train_steps(a, 1, B, 0);
        train_steps(c, 1, B, 0);
        const int stepped = same_state(a, c);
        memcpy(ref, mx_model_predict(a, x, B), out);
        const int after_step = memcmp(mx_model_predict(c, x, B), ref, out) == 0;
        mx_model_hold_weights(c, 0);
        CHECK(stepped && after_step);
        printf("  %s at batch %zu: %zu of %zu fused convolutions keep their weights, in idle buffers (%zu in "
               "oneDNN's layout); held predictions %s unheld ones at batches %zu and %zu; %s while held, %s by the "
               "release, %s by a training step\n", pred_runs[r].arch, B, placed, entries, in_plan_layout,
               same ? "give the bits of" : "differ from", B,
               B - 7, reused ? "reused" : "not reused", released ? "dropped" : "not dropped",
               after_step ? "dropped" : "not dropped");
        mx_model_free(a), mx_model_free(c);
        free(x), free(ref), free(ref2);
    }
}

/* The memory plan: on the cpu backend batch norms' ReLU outputs are
 * recomputed in the backward and share buffers, as do the tensors no
 * backward reads, so the arena holds less than every activation (the agreement
 * and determinism tests above show the gradients unchanged by it); the
 * reference backend recomputes nothing. */
static void test_memory_plan(void)
{
    static const char *const archs[] = {"resnet20", "preact18"};
    for (size_t k = 0; k < 2; k++) {
        mx_model *m = make(archs[k], 1, 28, 28, 10, 16, MX_BACKEND_CPU), *r = make(archs[k], 1, 28, 28, 10, 16, MX_BACKEND_REF);
        if (!m || !r) {
            mx_model_free(m), mx_model_free(r);
            continue;
        }
        const cnn_graph *g = ((const struct mx_model *)m)->impl, *gr = ((const struct mx_model *)r)->impl;
        size_t all = 0, shared = 0, recomputed = 0, ref_recomputed = 0, ref_shared = 0;
        for (size_t t = 1; t < g->num_tensors; t++) {
            all += 16 * g->tensors[t].size * sizeof(float);
            shared += g->tensors[t].shared >= 0;
            ref_shared += gr->tensors[t].shared >= 0;
        }
        for (size_t j = 0; j < g->num_nodes; j++) {
            recomputed += g->nodes[j].recompute_bn >= 0;
            ref_recomputed += gr->nodes[j].recompute_bn >= 0;
        }
        printf("  %-9s cpu: %zu of %zu tensors in shared buffers, %zu batch-norm outputs recomputed, arena %.1f MiB "
               "for %.1f MiB of activations; ref: %zu shared, %zu recomputed\n",
               archs[k], shared, g->num_tensors - 1, recomputed, g->arena.capacity / 1048576.0, all / 1048576.0,
               ref_shared, ref_recomputed);
        CHECK(recomputed > 0 && ref_recomputed == 0);
        CHECK(shared > ref_shared && ref_shared > 0);
        CHECK(g->arena.capacity < all);
        mx_model_free(m), mx_model_free(r);
    }
}

/* Shared activation buffers in memory gradients take in the backward
 * (cnn_memory_plan.c build_layout): training steps, with predictions between
 * them (which write the shared buffers, and on the cpu backend may keep
 * folded weights where gradients go), give the bits of the same model whose
 * shared buffers have memory of their own, in a smaller arena. */
static void test_shared_over_grads(void)
{
    static const char *const archs[] = {"resnet20", "preact18"};
    const int precisions = mx_dnnl_bf16_available() ? 2 : 1;
    for (int bf = 0; bf < precisions; bf++) {
        for (size_t k = 0; k < 2; k++) {
            const size_t B = 6;
            mx_model *a, *b;
            if (!make_twins(archs[k], bf ? MX_PRECISION_BF16 : MX_PRECISION_FP32, B, &a, &b)) continue;
            cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
            gb->shared_own_memory = 1;
            CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
            CHECK(gb->shared_over_grads == 0);
            /* preact18's pre-activations, bf16's inputs its convolutions keep copies of: forward-only */
            CHECK(ga->shared_over_grads > 0 || (!bf && k == 0));
            CHECK(ga->shared_over_grads == 0 || ga->arena.capacity < gb->arena.capacity);
            const int same = train_twins(a, b, 31, B);
            CHECK(same);
            printf("  %s %s: %zu shared buffers where gradients go, arena %.2f MiB instead of %.2f; 3 steps with "
                   "predictions between them give %s\n", archs[k], bf ? "bf16" : "fp32", ga->shared_over_grads,
                   ga->arena.capacity / 1048576.0, gb->arena.capacity / 1048576.0, same ? "the same bits" : "other bits");
            mx_model_free(a), mx_model_free(b);
        }
    }
}

/* Residual adds writing their output over an input they read last
 * (cnn_backend.add_in_place): in the training arena (bfloat16's block
 * outputs are forward-only) and in a prediction-only one, where bfloat16 NHWC
 * prediction's fused convolutions then add into their addend in place
 * instead of copying it first. Training steps with predictions between them,
 * and predictions of a prediction-only plan, give the bits of the same model
 * planned without. */
static size_t adds_in_place(const cnn_graph *g)
{
    size_t count = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        const int s = g->tensors[nd->out].shared;
        count += nd->op == CNN_ADD && s >= 0 &&
                 (g->tensors[nd->in].shared == s || g->tensors[nd->in2].shared == s);
    }
    return count;
}

static void test_adds_in_place(void)
{
    static const char *const archs[] = {"resnet20", "preact18"};
    const int precisions = mx_dnnl_bf16_available() ? 2 : 1;
    for (int bf = 0; bf < precisions; bf++) {
        for (size_t k = 0; k < 2; k++) {
            const size_t B = 6, d = 3 * 16 * 16, C = 3;
            mx_model *a, *b;
            if (!make_twins(archs[k], bf ? MX_PRECISION_BF16 : MX_PRECISION_FP32, B, &a, &b)) continue;
            cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
            gb->no_adds_in_place = 1;
            CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
            const size_t train_a = adds_in_place(ga);
            CHECK(adds_in_place(gb) == 0);
            CHECK(train_a > 0 || !bf); /* float32 keeps its block outputs for the backward */
            int same = train_twins(a, b, 51, B);
            CHECK_OK(mx_model_plan(a, B, MX_MODEL_PREDICT));
            CHECK_OK(mx_model_plan(b, B, MX_MODEL_PREDICT));
            const size_t predict_a = adds_in_place(ga);
            /* resnet20 float32 predicts its adds in fused convolutions' post-ops, reading the addend apart */
            CHECK((predict_a > 0 || (!bf && k == 0)) && adds_in_place(gb) == 0);
            mx_rng rng;
            mx_rng_init(&rng, 52, 0);
            float *x = malloc(B * d * sizeof *x), *la = malloc(B * C * sizeof *la);
            random_fill(&rng, x, B * d);
            const float *pa = mx_model_predict(a, x, B);
            if (pa) memcpy(la, pa, B * C * sizeof *la);
            const float *pb = mx_model_predict(b, x, B);
            CHECK(pa && pb);
            if (pa && pb) same = same && memcmp(la, pb, B * C * sizeof *la) == 0;
            CHECK(same);
            printf("  %s %s: %zu residual adds in place in training, %zu in prediction; steps and predictions give "
                   "%s\n", archs[k], bf ? "bf16" : "fp32", train_a, predict_a, same ? "the same bits" : "other bits");
            free(x), free(la);
            mx_model_free(a), mx_model_free(b);
        }
    }
}

static size_t recomputed_in_dx(const cnn_graph *g)
{
    size_t count = 0;
    for (size_t k = 0; k < g->num_nodes; k++) count += g->nodes[k].recompute_bn >= 0 && g->nodes[k].recompute_in_dx;
    return count;
}

/* Batch-norm outputs recomputed where their convolution's backward writes
 * its input gradient (cnn_node.recompute_in_dx, float32): the weights'
 * gradient reads them there first, the batch norm's backward takes its
 * ReLU's mask from its input, and the buffers they share in the forward may
 * go where gradients do. Training steps with predictions between them, and a
 * backward after an eval forward (the Jacobian's), give the bits of the same
 * model recomputing them into their own buffers, in a smaller arena. */
static void test_recompute_in_dx(void)
{
    static const char *const archs[] = {"resnet20", "preact18"};
    static const size_t layouts[3] = {8, 16, 16 | CNN_NHWC};
    for (size_t run = 0; run < 6; run++) {
        const size_t k = run % 2, B = 6, d = 3 * 16 * 16, C = 3;
        set_block(layouts[run / 2]);
        mx_model *a, *b;
        if (!make_twins(archs[k], MX_PRECISION_FP32, B, &a, &b)) continue;
        cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
        gb->no_recompute_in_dx = 1;
        CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
        const size_t in_dx = recomputed_in_dx(ga);
        CHECK(in_dx > 0 && recomputed_in_dx(gb) == 0);
        /* resnet20's recomputed outputs find idle memory either way. */
        CHECK(k == 0 ? ga->arena.capacity <= gb->arena.capacity : ga->arena.capacity < gb->arena.capacity);
        int same = train_twins(a, b, 61, B);
        mx_rng rng;
        mx_rng_init(&rng, 62, 0);
        float *x = malloc(B * d * sizeof *x), *dl = malloc(B * C * sizeof *dl);
        random_fill(&rng, x, B * d);
        random_fill(&rng, dl, B * C);
        mx_model *m[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            mx_model_set_training(m[i], 0);
            CHECK(mx_model_forward(m[i], x, B) != NULL);
            mx_model_backward(m[i], dl, B);
            mx_model_set_training(m[i], 1);
        }
        same = same && same_state(a, b);
        CHECK(same);
        printf("  %s fp32, %s: %zu batch-norm outputs recomputed into input-gradient buffers, arena %.2f MiB "
               "instead of %.2f; steps and an eval-mode backward give %s\n", archs[k], layout_name(g_block), in_dx,
               ga->arena.capacity / 1048576.0, gb->arena.capacity / 1048576.0, same ? "the same bits" : "other bits");
        free(x), free(dl);
        mx_model_free(a), mx_model_free(b);
    }
    set_block(0);
}

/* The number of nodes before whose backward a convolution's output is recomputed. */
static size_t convs_recomputed(const cnn_graph *g)
{
    size_t count = 0;
    for (size_t k = 0; k < g->num_nodes; k++) count += g->nodes[k].recompute_conv >= 0;
    return count;
}

/* The first convolution's output recomputed in the backward, not kept
 * (cnn_memory_plan.c plan_conv_recompute): training steps with predictions
 * between them, and a backward after an eval forward with the input's
 * gradient (the Jacobian's), give the bits of the same model keeping that
 * output, in a smaller arena. */
static void test_conv_recomputed(void)
{
    /* preact18 in each layout, the others in one each. */
    static const struct {
        const char *arch;
        size_t layout;
    } runs[5] = {{"preact18", 8}, {"preact18", 16}, {"preact18", 16 | CNN_NHWC}, {"resnet20", 8}, {"wrn-10-1", 16}};
    for (size_t run = 0; run < 5; run++) {
        const size_t B = 6, d = 3 * 16 * 16, C = 3;
        const char *arch = runs[run].arch;
        set_block(runs[run].layout);
        mx_model *a, *b;
        if (!make_twins(arch, MX_PRECISION_FP32, B, &a, &b)) continue;
        cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
        gb->no_recompute_conv = 1;
        CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
        CHECK(convs_recomputed(ga) == 1 && convs_recomputed(gb) == 0);
        CHECK(ga->tensors[ga->nodes[0].out].shared >= 0 && gb->tensors[gb->nodes[0].out].shared < 0);
        CHECK(ga->arena.capacity < gb->arena.capacity);
        int same = train_twins(a, b, 63, B);
        mx_rng rng;
        mx_rng_init(&rng, 64, 0);
        float *x = malloc(B * d * sizeof *x), *dl = malloc(B * C * sizeof *dl), *dx[2];
        random_fill(&rng, x, B * d);
        random_fill(&rng, dl, B * C);
        mx_model *m[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            dx[i] = malloc(B * d * sizeof *dx[i]);
            mx_model_set_training(m[i], 0);
            CHECK(mx_model_forward(m[i], x, B) != NULL);
            mx_model_backward_input(m[i], dl, B, dx[i]);
            mx_model_set_training(m[i], 1);
        }
        same = same && same_state(a, b) && memcmp(dx[0], dx[1], B * d * sizeof(float)) == 0;
        CHECK(same);
        printf("  %s, %s: the first convolution's output recomputed, arena %.2f MiB instead of %.2f; steps and "
               "an eval-mode backward to the input give %s\n", arch, layout_name(g_block),
               ga->arena.capacity / 1048576.0, gb->arena.capacity / 1048576.0, same ? "the same bits" : "other bits");
        free(x), free(dl), free(dx[0]), free(dx[1]);
        mx_model_free(a), mx_model_free(b);
    }
    set_block(0);
}

/* bfloat16 convolution inputs not kept across the step (cnn_cpu_flow.c): a
 * convolution right after a batch norm's ReLU reads that output from its
 * plan's room, written there again from the batch norm's input before its
 * backward, and a second convolution reading a tensor reads the first's copy.
 * Training steps with predictions between them give the bits of the same
 * model in which each convolution keeps a copy of its own. */
static void test_bf16_inputs_restaged(void)
{
    if (!mx_dnnl_bf16_available()) return; /* test_bf16 says so */
    static const char *const archs[] = {"resnet20", "preact18"};
    for (size_t k = 0; k < 2; k++) {
        const size_t B = 6;
        mx_model *a, *b;
        if (!make_twins(archs[k], MX_PRECISION_BF16, B, &a, &b)) continue;
        cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
        gb->keep_conv_inputs = 1;
        CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
        size_t restaged = 0, copies_a = 0, copies_b = 0, bytes_a = 0, bytes_b = 0;
        for (size_t j = 0; j < ga->num_nodes; j++) {
            const mx_dnnl_conv2d_plan *pa = cnn_cpu_of(ga)->plans[0].node[j].conv;
            const mx_dnnl_conv2d_plan *pb = cnn_cpu_of(gb)->plans[0].node[j].conv;
            restaged += cnn_cpu_conv_input_restaged(ga, j) && pa && mx_dnnl_conv2d_x_room(pa);
            CHECK(!cnn_cpu_conv_input_restaged(gb, j));
            if (cnn_cpu_node_of(ga, j)->x_bf16) copies_a++, bytes_a += mx_dnnl_conv2d_kept_x_bytes(pa);
            if (cnn_cpu_node_of(gb, j)->x_bf16) copies_b++, bytes_b += mx_dnnl_conv2d_kept_x_bytes(pb);
        }
        /* Where oneDNN's kernels take x in the tensors' layout (NHWC, with
         * AMX): elsewhere each keeps the copy its plan reorders. */
        CHECK(restaged + copies_a <= copies_b && bytes_a <= bytes_b);
        CHECK(!mx_dnnl_bf16_prefers_nhwc() || (restaged > 0 && copies_a + restaged < copies_b && bytes_a < bytes_b));
        const int same = train_twins(a, b, 41, B);
        CHECK(same);
        printf("  %s bf16: %zu convolution inputs written again for the backward, %zu copies kept instead of %zu "
               "(%zu bytes instead of %zu at batch %zu); 3 steps with predictions between them give %s\n", archs[k],
               restaged, copies_a, copies_b, bytes_a, bytes_b, B, same ? "the same bits" : "other bits");
        mx_model_free(a), mx_model_free(b);
    }
}

/* mixreg's own convolution kernels take their buffers from the oneDNN
 * context's scratch (cnn_cpu_wino_u), which moves when it grows: a model
 * whose scratch is moved and filled with NaNs between its steps and
 * predictions (each step's last batch is a new size, so plans are made and
 * grow it there too) ends with the bits of its twin, and the Winograd and
 * narrow kernels did run from it. */
static void test_kernel_scratch_moves(void)
{
    static const size_t layouts[2] = {8, 16};
    for (size_t run = 0; run < 2; run++) {
        const size_t B = 6;
        set_block(layouts[run]);
        mx_model *a, *b;
        if (!make_twins("resnet20", MX_PRECISION_FP32, B, &a, &b)) continue;
        cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
        size_t own_kernels = 0;
        for (size_t k = 0; k < ga->num_nodes; k++) {
            const cnn_cpu_node *cn = cnn_cpu_node_of(ga, k);
            own_kernels += cn->wino || cn->train_wino || cn->narrow || cn->narrow_blocked;
        }
        CHECK(own_kernels > 0 && cnn_cpu_of(ga)->kernel_scratch_bytes > 0);
        CHECK(mx_dnnl_context_scratch_bytes(cnn_cpu_of(ga)->dnnl) >= cnn_cpu_of(ga)->kernel_scratch_bytes);
        mx_model_init_params(a, 71);
        mx_model_init_params(b, 71);
        size_t moves = 0;
        for (int step = 0; step < 3; step++) {
            train_steps(a, 1, B, 1);
            mx_dnnl_context *ctx = cnn_cpu_of(gb)->dnnl;
            const void *before = mx_dnnl_context_scratch(ctx);
            CHECK_OK(mx_dnnl_context_reserve(ctx, 2 * mx_dnnl_context_scratch_bytes(ctx)));
            memset(mx_dnnl_context_scratch(ctx), 0xff, mx_dnnl_context_scratch_bytes(ctx));
            moves += mx_dnnl_context_scratch(ctx) != before;
            train_steps(b, 1, B, 1);
        }
        const int same = same_state(a, b);
        CHECK(same && moves == 3);
        printf("  resnet20 fp32, %s: %zu layers on mixreg's own kernels, %zu bytes of their buffers in oneDNN's "
               "scratch; moved 3 times, %s\n", layout_name(g_block), own_kernels,
               cnn_cpu_of(ga)->kernel_scratch_bytes, same ? "the same bits" : "other bits");
        mx_model_free(a), mx_model_free(b);
    }
    set_block(0);
}

/* resnet50's stem and max pooling, predicted two samples at a time
 * (cnn_cpu_predict.c pooled_in_chunks: at 128x128 its output is 1 MiB a
 * sample, 10 MiB at batch 10): the pooled activations and the logits as
 * with the whole batch at once, and the logits near the eval forward's. */
static void test_stem_pooled_in_chunks(void)
{
    const size_t B = 10, c = 3, side = 128, classes = 10, d = c * side * side;
    mx_model *m = make("resnet50", c, side, side, classes, B, MX_BACKEND_CPU);
    float *x = malloc(B * d * sizeof *x), *eval = malloc(B * classes * sizeof *eval),
          *chunked = malloc(B * classes * sizeof *chunked);
    if (!m || !x || !eval || !chunked) {
        CHECK(0);
        mx_model_free(m);
        free(x), free(eval), free(chunked);
        return;
    }
    mx_model_init_params(m, 41);
    mx_rng rng;
    mx_rng_init(&rng, 42, 0);
    random_fill(&rng, x, B * d);
    mx_model_set_training(m, 0);
    memcpy(eval, mx_model_forward(m, x, B), B * classes * sizeof *eval);
    cnn_graph *g = ((struct mx_model *)m)->impl;
    size_t stem = 0;
    while (g->nodes[stem].op != CNN_CONV) stem++;
    cnn_cpu_node *cn = cnn_cpu_node_of(g, stem);
    const cnn_tensor *pooled = NULL;
    for (size_t k = stem + 1; k < g->num_nodes && !pooled; k++)
        if (g->nodes[k].op == CNN_MAXPOOL) pooled = &g->tensors[g->nodes[k].out];
    const size_t pooled_floats = pooled ? B * pooled->size : 0;
    float *pooled_chunked = malloc((pooled_floats + 1) * sizeof(float));
    memcpy(chunked, mx_model_predict(m, x, B), B * classes * sizeof *chunked);
    const int ran_chunked = cn->pool_chunk != NULL;
    if (pooled && pooled_chunked) memcpy(pooled_chunked, pooled->data, pooled_floats * sizeof(float));
    cn->pool_chunk_failed = 1; /* the whole batch at once */
    const float *whole = mx_model_predict(m, x, B);
    const double e_logits = norm_error(chunked, whole, B * classes), e_eval = norm_error(chunked, eval, B * classes);
    const double e_pooled = pooled && pooled_chunked ? norm_error(pooled_chunked, pooled->data, pooled_floats) : 1.0;
    CHECK(ran_chunked && pooled && pooled_chunked);
    CHECK(e_pooled <= 1e-6 && e_logits <= 1e-5 && e_eval <= RTOL);
    printf("  resnet50 at %zux%zu, batch %zu: stem and pooling %s; pooled activations %.1e and logits %.1e from the "
           "whole batch's, %.1e from the eval forward\n", side, side, B,
           ran_chunked ? "in chunks of 2" : "NOT in chunks", e_pooled, e_logits, e_eval);
    mx_model_free(m);
    free(x), free(eval), free(chunked), free(pooled_chunked);
}

/* Buffers packed by the times they are alive (cnn_memory_plan.c
 * build_layout, mem_pack.c): gradients go where activations the backward has
 * read for the last time were. Training steps with predictions between them
 * give the bits of the same model with every buffer in memory of its own,
 * in a smaller arena: max pooling's arg-max (lenet5), batch norms and
 * residual adds (resnet20, preact18). */
static void test_packed_memory(void)
{
    static const char *const archs[] = {"lenet5", "resnet20", "preact18"};
    const int precisions = mx_dnnl_bf16_available() ? 2 : 1;
    for (int bf = 0; bf < precisions; bf++) {
        for (size_t k = bf ? 1 : 0; k < 3; k++) {
            const size_t B = 6;
            mx_model *a, *b;
            if (!make_twins(archs[k], bf ? MX_PRECISION_BF16 : MX_PRECISION_FP32, B, &a, &b)) continue;
            cnn_graph *ga = ((struct mx_model *)a)->impl, *gb = ((struct mx_model *)b)->impl;
            gb->no_packing = 1;
            CHECK_OK(mx_model_plan(b, B, MX_MODEL_TRAIN));
            CHECK(!gb->backward_reuses);
            CHECK(ga->arena.capacity < gb->arena.capacity);
            const int same = train_twins(a, b, 71, B);
            CHECK(same);
            printf("  %s %s: arena %.2f MiB packed (gradients %s activations' memory), %.2f with every buffer its "
                   "own; 3 steps with predictions between them give %s\n", archs[k], bf ? "bf16" : "fp32",
                   ga->arena.capacity / 1048576.0, ga->backward_reuses ? "in" : "beside",
                   gb->arena.capacity / 1048576.0, same ? "the same bits" : "other bits");
            mx_model_free(a), mx_model_free(b);
        }
    }
}

/* mx_model_backward_sgd against mx_model_backward then mx_sgd_step over the
 * whole array: the same parameters and velocity, bit for bit, over steps in
 * both modes (batch norm's running statistics move too), with each layer
 * stepped from a buffer of the largest layer's size and the model's
 * gradient array never written. The mlp takes the fallback: backward, then
 * the whole step. */
static void test_backward_sgd(void)
{
    static const char *const archs[] = {"mlp", "lenet5", "resnet20", "preact18"};
    for (size_t k = 0; k < 4; k++) {
        const size_t B = 5, d = 3 * 16 * 16, C = 3;
        mx_model *a, *b;
        if (!make_twins(archs[k], MX_PRECISION_FP32, B, &a, &b)) continue;
        const size_t count = mx_model_param_count(a);
        float *va = calloc(count, sizeof *va), *vb = calloc(count, sizeof *vb), *x = malloc(B * d * sizeof *x);
        float *dl = malloc(B * C * sizeof *dl);
        mx_model_init_params(a, 81);
        mx_model_init_params(b, 81);
        const mx_sgd_config sgd = {0.9, k % 2, 5e-4};
        mx_rng rng;
        mx_rng_init(&rng, 82, 0);
        for (int step = 0; step < 3; step++) {
            random_fill(&rng, x, B * d);
            random_fill(&rng, dl, B * C);
            for (int i = 0; i < 2; i++) {
                mx_model *m = i ? b : a;
                mx_model_set_training(m, step != 1);
                mx_model_forward(m, x, B - (size_t)step);
                if (i) {
                    mx_model_backward_sgd(m, dl, B - (size_t)step, &sgd, 0.05, vb);
                } else {
                    mx_model_backward(m, dl, B - (size_t)step);
                    mx_sgd_step(&sgd, 0.05, mx_model_params(m), mx_model_grads(m), va, count);
                }
            }
        }
        const cnn_graph *g = k ? ((struct mx_model *)b)->impl : NULL;
        int untouched = 1;
        for (size_t i = 0; k && i < count; i++) untouched &= mx_model_grads(b)[i] == 0.0f;
        const int same = memcmp(mx_model_params(a), mx_model_params(b), count * sizeof(float)) == 0 &&
                         memcmp(va, vb, count * sizeof(float)) == 0 && same_buffers(a, b);
        CHECK(same);
        CHECK(!k || (untouched && g->layer_grads_floats > 0 && g->layer_grads_floats < count));
        printf("  %s: 3 steps give %s; %s\n", archs[k], same ? "the same bits" : "OTHER bits",
               !k ? "the whole step after the backward" : untouched ? "the gradient array never written"
                                                                    : "the gradient array WRITTEN");
        mx_model_free(a), mx_model_free(b);
        free(va), free(vb), free(x), free(dl);
    }
}

/* A second backward of one forward would read activations that gradients
 * have overwritten: it aborts (mx_model_backward). In a child process, run
 * before this one starts any thread (a forked child of a threaded OpenMP
 * process may not use OpenMP). */
static void test_second_backward_aborts(void)
{
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(2);
        mx_set_threads(1);
        const size_t B = 2, d = 3 * 16 * 16, C = 3;
        mx_model *m = make("resnet20", 3, 16, 16, C, B, MX_BACKEND_CPU);
        float x[2 * 3 * 16 * 16] = {0}, dl[2 * 3] = {1, 0, 0, 0, 1, 0};
        if (!m || d * B > sizeof x / sizeof x[0]) _exit(2);
        mx_model_forward(m, x, B);
        mx_model_backward(m, dl, B);
        mx_model_forward(m, x, B);
        mx_model_backward(m, dl, B); /* one backward per forward: fine */
        mx_model_backward(m, dl, B); /* aborts */
        _exit(0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    printf("  a second backward of one forward: %s\n",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT ? "aborts" : "DOES NOT abort");
}

int main(void)
{
    test_second_backward_aborts();
    mx_set_threads(2);
    printf("memory plan\n");
    test_memory_plan();
    test_pred_weights_in_idle_memory();
    test_held_weights();
    test_stem_pooled_in_chunks();
    test_shared_over_grads();
    test_packed_memory();
    test_backward_sgd();
    test_bf16_inputs_restaged();
    test_adds_in_place();
    test_recompute_in_dx();
    test_conv_recomputed();
    test_kernel_scratch_moves();
    CHECK_DONE();
}

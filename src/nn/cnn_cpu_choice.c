/* The "cpu" backend's choice of kernels for each convolution, made once
 * per graph at prepare (cnn_cpu_plan_fusion), and the buffers they need:
 *  - training: oneDNN's direct or Winograd kernels (winograd_suits,
 *    cnn_cpu_choose_conv_algorithm), mixreg's own Winograd kernels
 *    (winograd_training_suits: per-tile up to 64 channels, 128 on AVX2,
 *    mx_wino_tiles_best; batch-wide GEMM above) or narrow kernels for the
 *    first layers (narrow_suits);
 *  - prediction: a convolution absorbs the batch norm, residual add and
 *    ReLU after it (the fusions), and in networks no wider than 64 channels
 *    its 3x3 stride-1 layers run mixreg's per-tile Winograd kernel
 *    (winograd_inference_suits); on AVX2 so do a wider network's layers of
 *    up to 128 channels (mx_wino_tiles_best), and the wider ones its GEMM
 *    kernel;
 *  - the sizes of those kernels' buffers in the oneDNN context's scratch
 *    (cnn_cpu_wino_u) and of the folded weights (cnn_cpu_plan places them).
 * cnn_cpu_plan.c makes the oneDNN plans these choices call for. */
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>

#include "nn/cnn_cpu.h"
#include "nn/conv_narrow.h"
#include "nn/winograd.h"

/* Whether a convolution runs oneDNN's Winograd kernels (all three passes):
 * float32 3x3 stride-1 convolutions between nChw16c tensors with at least 64
 * channels in and out (oneDNN 2.x has them for AVX-512 alone; elsewhere it
 * runs the direct kernel). Measured here with bench/conv_bench (plans on
 * nChw16c buffers as the engine runs them, batch 128, 2 threads, best of 10;
 * forward + both backward passes, ms, direct -> Winograd):
 *   16@28 3.32 -> 4.59   16@32 5.10 -> 8.38   32@14 3.10 -> 3.66   32@16 4.06 -> 3.99
 *   64@7  3.07 -> 2.53   64@8  3.97 -> 2.52   64@32 70.0 -> 47.9   128@16 65.8 -> 35.5
 *   256@8 65.3 -> 26.8
 * Below 64 channels the transforms are memory-bound and lose. The rule is a
 * pure function of the shape, so the choice (and the rounding) repeats from
 * run to run. */
static int winograd_suits(const cnn_graph *g, const cnn_node *nd)
{
    const mx_conv2d_desc *d = &nd->conv;
    return g->model->spec.precision == MX_PRECISION_FP32 && d->kernel_h == 3 && d->kernel_w == 3 &&
           d->stride_h == 1 && d->stride_w == 1 && d->in_channels >= 64 && d->out_channels >= 64 &&
           g->tensors[nd->in].blocked && g->tensors[nd->out].blocked && !(g->tensors[nd->in].blocked & CNN_NHWC);
}

/* Backward weights stays direct above 256 output channels: oneDNN's
 * Winograd pass keeps per-thread transformed weight gradients, which at
 * preact18's 512 channels took the plans' scratch from 88 to 161 MiB (peak
 * RSS +36 MiB) to make the step 6-12% faster (183 against 163-173 img/s). */
#define WINOGRAD_BWD_WEIGHTS_MAX_CHANNELS 256

void cnn_cpu_choose_conv_algorithm(const cnn_graph *g, const cnn_node *nd, mx_dnnl_conv2d_options *opt)
{
    if (!winograd_suits(g, nd)) return;
    opt->fwd_algorithm = opt->bwd_data_algorithm = MX_DNNL_CONV_WINOGRAD;
    if (nd->conv.out_channels <= WINOGRAD_BWD_WEIGHTS_MAX_CHANNELS) opt->bwd_weights_algorithm = MX_DNNL_CONV_WINOGRAD;
}

/* The widest convolution's channel count, in or out. */
static size_t widest_conv(const cnn_graph *g)
{
    size_t most = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->op != CNN_CONV) continue;
        if (nd->conv.in_channels > most) most = nd->conv.in_channels;
        if (nd->conv.out_channels > most) most = nd->conv.out_channels;
    }
    return most;
}

/* Whether prediction runs convolution nd on mixreg's Winograd kernel
 * (winograd.h) instead of oneDNN: float32 3x3 stride-1 padding-1 layers
 * between tensors in its block (mx_wino_block: nChw16c on AVX-512, nChw8c on
 * AVX2), in networks no wider than 64 channels (the CIFAR
 * ResNets), which prediction then runs in chunks of 32 samples (cnn_cpu_predict.c).
 * Measured here with bench/conv_bench at batch 32, 2 threads, forward ms
 * (this kernel with its weight transform / oneDNN direct / oneDNN Winograd):
 * 16@28 0.14 / 0.23 / 0.20, 32@14 0.14 / 0.23 / 0.22, 64@7 0.17 / 0.23 / 0.18,
 * 16@32 0.17 / 0.37 / 0.48, 32@16 0.14 / 0.30 / 0.22, 64@8 0.17 / 0.30 / 0.18.
 * Wider networks predict whole batches on AVX-512, without this kernel
 * (their 3x3 layers on the GEMM one, winograd_gemm_inference_suits): on
 * preact18 the chunks and this kernel on its 64-channel layers took the
 * evaluation from 766 to 640-660 img/s (oneDNN's Winograd on 128-512
 * channels wanted the large batch). On AVX2 oneDNN has no Winograd kernels and its direct ones
 * run batch 32 as fast per image as 128, so a wider network's layers of up
 * to 64 channels (128 since: mx_wino_tiles_best) take this kernel too. Measured on AVX2 (2-core EPYC,
 * nChw8c, batch 32, forward ms, this kernel / oneDNN direct): 16@32 0.54 /
 * 1.21, 32@16 0.42 / 0.78, 64@8 0.56 / 0.83, 64@32 6.61 / 12.01, 128@16
 * 11.42 / 12.85, 256@8 30.6 / 13.6 (the weights, streamed once per few
 * tiles, dominate); preact18's evaluation 176 -> 186-196 img/s with its
 * 64-channel layers on it, 188-190 with the 128-channel ones too. */
static int winograd_inference_suits(const cnn_graph *g, const cnn_node *nd, size_t widest, int out)
{
    const mx_conv2d_desc *d = &nd->conv;
    const int narrow = mx_wino_tiles_best(d);
    return mx_wino_available() && g->model->spec.precision == MX_PRECISION_FP32 && mx_wino_suits(d) &&
           (widest <= 64 || (narrow && mx_wino_block() == 8)) && g->tensors[nd->in].blocked == mx_wino_block() &&
           g->tensors[out].blocked == mx_wino_block();
}

/* Which of mixreg's Winograd kernels convolution nd's training passes run
 * (forward, eval-mode forward, input gradient: the input gradient of a 3x3
 * stride-1 padding-1 convolution is one too, mx_wino_transposed; weights'
 * gradient), the weights transformed at each call, instead of oneDNN's
 * direct and Winograd kernels: float32 3x3 stride-1 padding-1 layers
 * between tensors in the build's block (mx_wino_block: nChw8c on AVX2,
 * nChw16c on AVX-512); the per-tile kernels (winograd.c, winograd_dw.c)
 * up to 64 channels in and out (128 on AVX2: mx_wino_tiles_best), the
 * batch-wide GEMM ones (winograd_gemm.c)
 * above. Measured on AVX2 (2-core EPYC, nChw8c, batch 128,
 * `bench/conv_bench 2 128 4 cifar|preact18|wide mxwino,mxwino-gemm,blocked-8c`;
 * forward + backward ms, per-tile / GEMM / oneDNN direct):
 *   16@32 7.8 / - / 12.2, 32@16 5.0 / - / 9.7, 64@8 5.3 / - / 9.9,
 *   64@32 82.0 / 82.8 / 159.4, 128@16 75.8 / 62.1 / 155.3,
 *   256@8 167.6 / 60.2 / 163.3, 512@4 - / 104.3 / 197.4,
 *   256@14 - / 217.9 / 469.8, 512@7 - / 252.5 / 524.1.
 * (Since, the GEMM kernels' weight transforms read and write in row order:
 * at batch 32 on another such EPYC, alternated, 512@4 62.3 -> 32.5 ms and
 * 512@7 104.8 -> 76.5; MX_WINO_GEMM_MIN_TILES has where they now win.)
 * On AVX-512 (a 2-core Xeon with AMX, nChw16c, batch 128, alternated
 * runs) oneDNN's direct kernels run the small layers at the SGEMM peak,
 * yet these kernels do fewer multiplications: resnet20's step went from
 * 951-966 to 1,115-1,154 img/s and preact18's (the GEMM ones on its 64-512
 * channel layers, in place of oneDNN's Winograd) from 131.9 to 152-159,
 * for 70 MiB more peak RSS (the GEMM kernels' scratch). On Zen 4 the
 * per-tile forward alone had changed nothing measurable. BENCHMARKS.md has
 * the steps. */
/* Whether prediction runs convolution nd (writing tensor out) on the
 * batch-wide GEMM Winograd kernels (winograd_gemm.c) at batches they are
 * worth it (mx_wino_gemm_worth; oneDNN's plan otherwise): float32 3x3
 * stride-1 padding-1 layers between tensors in the kernels' block that
 * winograd_inference_suits leaves to oneDNN.
 *  - AVX2 (nChw8c), where oneDNN has no Winograd kernels: at batch 32 (the
 *    prediction chunk), bench/conv_bench, forward ms, GEMM / oneDNN direct:
 *    256@14 18.5 / 38.8, 512@7 28.7 / 44.9, 512@4 15.4 / 16.7 (32 tiles:
 *    not worth it).
 *  - AVX-512 (nChw16c), in place of oneDNN's F(4x4, 3x3) kernel, whose
 *    scratchpad for preact18's 64-channel layers at batch 128 is 60 MiB
 *    (this kernel works through the tiles in chunks): evaluation as fast,
 *    peak RSS 14 MiB lower (2-core Xeon, alternated, `mixreg bench`:
 *    preact18 batch 128 480-486 against 482-489 img/s, 598 -> 584 MiB;
 *    resnet50 at 224, batch 32, 41.5-43.0 against 41.4-42.1 img/s,
 *    2,976 -> 2,962 MiB). */
static int winograd_gemm_inference_suits(const cnn_graph *g, const cnn_node *nd, int out)
{
    const size_t wb = mx_wino_block();
    return wb && g->model->spec.precision == MX_PRECISION_FP32 && mx_wino_gemm_suits(&nd->conv) &&
           g->tensors[nd->in].blocked == wb && g->tensors[out].blocked == wb;
}

/* Whether convolution nd runs conv_narrow.h's kernels (forward, weights'
 * gradient): float32 layers of few input channels between NCHW tensors,
 * the first layers oneDNN pads to its channel block. lenet5 on
 * Fashion-MNIST, batch 128, 2 threads (ONEDNN_VERBOSE): its 1 -> 6 channel
 * 5x5 layer took 0.59 ms forward and 2.43 ms weights' gradient, plus 0.74
 * ms of reorders, of a 7.7 ms training step; BENCHMARKS.md has the step
 * after. */
static int narrow_suits(const cnn_graph *g, const cnn_node *nd)
{
    return g->model->spec.precision == MX_PRECISION_FP32 && !g->tensors[nd->in].blocked &&
           !g->tensors[nd->out].blocked && mx_conv_narrow_suits(&nd->conv);
}

/* Whether convolution nd's forward and weights' gradient run
 * conv_narrow.h's blocked kernels: float32, an NCHW input of few channels, a
 * blocked output (nChw8c or nChw16c). lenet5's second layer (6 -> 16, 5x5,
 * 14x14), batch 128, 2 threads: on AVX2 oneDNN's forward took 0.63 ms, its
 * weights' gradient 0.64 ms and the reorder of x for it 0.11 ms; on
 * AVX-512 0.20, 0.53 (its AVX2 kernel) and 0.07 (ONEDNN_VERBOSE).
 * BENCHMARKS.md has the steps with these kernels. The input's gradient
 * stays with oneDNN. */
static int narrow_blocked_suits(const cnn_graph *g, const cnn_node *nd)
{
    return g->model->spec.precision == MX_PRECISION_FP32 && !g->tensors[nd->in].blocked &&
           g->tensors[nd->out].blocked && mx_conv_narrow_blocked_suits(&nd->conv, g->tensors[nd->out].blocked);
}

static int winograd_training_suits(const cnn_graph *g, const cnn_node *nd)
{
    const mx_conv2d_desc *d = &nd->conv;
    const size_t wb = mx_wino_block();
    if (!wb || g->model->spec.precision != MX_PRECISION_FP32 || g->tensors[nd->in].blocked != wb ||
        g->tensors[nd->out].blocked != wb)
        return CNN_WINO_NONE;
    if (mx_wino_suits(d) && mx_wino_tiles_best(d)) return CNN_WINO_TILES;
    const mx_conv2d_desc t = mx_wino_transposed(d);
    return mx_wino_gemm_suits(d) && mx_wino_gemm_suits(&t) ? CNN_WINO_GEMM : CNN_WINO_NONE;
}

/* Whether a prediction's convolution can take the residual add after it
 * into a tensor of this layout: as a binary post-op on oneDNN's own block
 * (mx_dnnl_fused_add_available), or in a bfloat16 model's NHWC as the sum
 * post-op of bfloat16 prediction (cnn_cpu_predict.c predict_nhwc; cnn_cpu_plan_fusion
 * undoes it where that prediction does not run). */
static int fused_add_suits(const cnn_graph *g, size_t layout)
{
    if (layout & CNN_NHWC) return g->model->spec.precision == MX_PRECISION_BF16;
    return mx_dnnl_fused_add_available(layout);
}

/* Which nodes the predict hook fuses (see cnn_cpu_node): a convolution without its
 * own ReLU whose output only the next node, a batch norm, reads; then, if
 * that batch norm has no ReLU and only the next node, a residual add, reads
 * its output, that add too, when its output is blocked (the binary add
 * post-op reads the other input in the primitive's layout, so that block
 * must be oneDNN's kernels' own: mx_dnnl_fused_add_available) and the
 * convolution does not run oneDNN's Winograd kernels (they take no binary
 * post-op: oneDNN would fall back to its direct kernel, slower than Winograd
 * and a separate add together; mixreg's own Winograd kernel takes it). Measured on
 * resnet20 eval at batch 128 (2 threads, best of 30, three alternations):
 * folding the batch norms took the forward from 20.6-22.3 to 18.1-19.4 ms;
 * the add as a binary post-op then to 18.0-20.2 (a sum post-op on y, which
 * needs the other input copied into y first, lost: 19.1-24.5). */
mx_status cnn_cpu_plan_fusion(cnn_graph *g)
{
    int *readers = calloc(g->num_tensors, sizeof *readers);
    if (!readers) return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    for (size_t k = 0; k < g->num_nodes; k++) {
        readers[g->nodes[k].in]++;
        if (g->nodes[k].in2 >= 0) readers[g->nodes[k].in2]++;
    }
    cnn_cpu_graph *cs = cnn_cpu_of(g);
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        cn->fold_bn = cn->fold_add = cn->sum_in = -1;
        cn->fused = cn->wino = cn->train_wino = cn->narrow = cn->narrow_blocked = cn->y_bf16 = cn->dx_bf16 = 0;
        cn->bf16_io = 0;
        cn->pred_out = nd->out;
        cn->pred_relu = nd->relu;
    }
    size_t folded = 0;
    const size_t widest = widest_conv(g);
    for (size_t k = 0; k + 1 < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k], *bn = &g->nodes[k + 1];
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (nd->op != CNN_CONV || nd->relu || bn->op != CNN_BN || bn->in != nd->out || readers[nd->out] != 1) continue;
        cn->fold_bn = (int)k + 1;
        cn->pred_out = bn->out;
        cn->pred_relu = bn->relu;
        cnn_cpu_node_of(g, k + 1)->fused = 1;
        size_t need = g->model->tensors[nd->weight].numel + nd->conv.out_channels;
        if (need > folded) folded = need;
        if (k + 2 >= g->num_nodes) continue;
        const cnn_node *add = &g->nodes[k + 2];
        /* oneDNN's Winograd kernels take no binary post-op, nor do its direct
         * ones outside their own block (nChw16c on AVX2); mixreg's own
         * Winograd kernel takes the add. */
        const int own_wino = winograd_inference_suits(g, nd, widest, add->out);
        if (bn->relu || add->op != CNN_ADD || readers[bn->out] != 1 || !g->tensors[add->out].blocked ||
            (winograd_suits(g, nd) && !own_wino) ||
            (!own_wino && !fused_add_suits(g, g->tensors[add->out].blocked)))
            continue;
        if (add->in != bn->out && add->in2 != bn->out) continue;
        cn->fold_add = (int)k + 2;
        cn->sum_in = add->in == bn->out ? add->in2 : add->in;
        cn->pred_out = add->out;
        cn->pred_relu = add->relu;
        cnn_cpu_node_of(g, k + 2)->fused = 1;
    }
    free(readers);
    size_t wino_floats = 0, gemm_floats = 0, sums_floats = 0, narrow_floats = 0;
    const int threads = omp_get_max_threads();
    int tiles_kernel = 0;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (nd->op != CNN_CONV) continue;
        cn->wino = winograd_inference_suits(g, nd, widest, cn->pred_out)          ? CNN_WINO_TILES
                   : winograd_gemm_inference_suits(g, nd, cn->pred_out) ? CNN_WINO_GEMM
                                                                         : CNN_WINO_NONE;
        cn->train_wino = winograd_training_suits(g, nd);
        cn->narrow = narrow_suits(g, nd);
        if (cn->narrow && mx_conv_narrow_scratch_floats(&nd->conv, threads) > narrow_floats)
            narrow_floats = mx_conv_narrow_scratch_floats(&nd->conv, threads);
        cn->narrow_blocked = narrow_blocked_suits(g, nd);
        if (cn->narrow_blocked && mx_conv_narrow_blocked_scratch_floats(&nd->conv, threads) > narrow_floats)
            narrow_floats = mx_conv_narrow_blocked_scratch_floats(&nd->conv, threads);
        tiles_kernel |= cn->wino == CNN_WINO_TILES || cn->train_wino == CNN_WINO_TILES;
        /* Each from the scratch's start: the per-tile kernels' transformed
         * weights (cnn_cpu_wino_u), the GEMM kernels' chunks and blocks of
         * transformed weights (cnn_cpu_wino_gemm; a prediction's held
         * weights lie in their entry), either's weights' gradient sums
         * (cnn_cpu_wino_sums). */
        const int tiles = cn->wino == CNN_WINO_TILES || cn->train_wino == CNN_WINO_TILES;
        if (tiles && mx_wino_weight_floats(&nd->conv) > wino_floats) wino_floats = mx_wino_weight_floats(&nd->conv);
        size_t gemm = 0, sums = 0;
        if (cn->wino == CNN_WINO_GEMM) {
            gemm = mx_wino_gemm_scratch_floats(&nd->conv, MX_WINO_GEMM_FROM_W);
            if (mx_wino_gemm_scratch_floats(&nd->conv, MX_WINO_GEMM_HELD_U) > gemm)
                gemm = mx_wino_gemm_scratch_floats(&nd->conv, MX_WINO_GEMM_HELD_U);
        }
        if (cn->train_wino == CNN_WINO_TILES) sums = mx_wino_dw_scratch_floats(&nd->conv, threads);
        if (cn->train_wino == CNN_WINO_GEMM) {
            const mx_conv2d_desc t = mx_wino_transposed(&nd->conv);
            const size_t forward = mx_wino_gemm_scratch_floats(&nd->conv, MX_WINO_GEMM_FROM_W);
            const size_t dx = mx_wino_gemm_scratch_floats(&t, MX_WINO_GEMM_FROM_W);
            if (forward > gemm) gemm = forward;
            if (dx > gemm) gemm = dx;
            sums = mx_wino_gemm_scratch_floats(&nd->conv, MX_WINO_GEMM_DW);
        }
        if (gemm > gemm_floats) gemm_floats = gemm;
        if (sums > sums_floats) sums_floats = sums;
    }
    cs->fold_floats = folded; /* placed by cnn_cpu_plan */
    /* In the oneDNN context's scratch, made in cnn_cpu_prepare. */
    cs->kernel_scratch_bytes = wino_floats * sizeof(float);
    if (gemm_floats * sizeof(float) > cs->kernel_scratch_bytes) cs->kernel_scratch_bytes = gemm_floats * sizeof(float);
    if (sums_floats * sizeof(float) > cs->kernel_scratch_bytes) cs->kernel_scratch_bytes = sums_floats * sizeof(float);
    if (narrow_floats * sizeof(float) > cs->kernel_scratch_bytes) cs->kernel_scratch_bytes = narrow_floats * sizeof(float);
    cs->scratch_threads = threads;
    cs->pred_chunked = tiles_kernel && widest <= 64; /* cnn_cpu_predict.c says why only these */
    cs->pred_nhwc = cnn_cpu_nhwc_suits(g);
    /* An add fused into NHWC counted on bfloat16 prediction's sum post-op
     * (fused_add_suits): without it, the add stays a node of its own. */
    for (size_t k = 0; !cs->pred_nhwc && k < g->num_nodes; k++) {
        cnn_cpu_node *cn = cnn_cpu_node_of(g, k);
        if (cn->fold_add < 0 || !(g->tensors[g->nodes[cn->fold_add].out].blocked & CNN_NHWC)) continue;
        cnn_cpu_node_of(g, (size_t)cn->fold_add)->fused = 0;
        cn->fold_add = cn->sum_in = -1;
        cn->pred_out = g->nodes[cn->fold_bn].out;
        cn->pred_relu = g->nodes[cn->fold_bn].relu;
    }
    cnn_cpu_mark_bf16_flow(g);
    /* pred_cache: every fused convolution's prediction weights (cnn_cpu_pred_weights.c) */
    const size_t cache = cnn_cpu_pred_cache_floats(g);
    cs->pred_cache_floats = cs->pred_chunked && cache * sizeof(float) <= CNN_PRED_CACHE_BYTES ? cache : 0;
    g->pred_region_bytes = cs->pred_cache_floats * sizeof(float); /* a training plan's, in its arena */
    return MX_OK; /* placed by cnn_cpu_plan, once the arena is made */
}

size_t cnn_cpu_first_writer(const cnn_graph *g, size_t k)
{
    /* A fused chain is a convolution, its batch norm and maybe the add after it (cnn_cpu_plan_fusion). */
    for (size_t j = k >= 2 ? k - 2 : 0; j < k; j++)
        if (g->nodes[j].op == CNN_CONV && cnn_cpu_node_of(g, j)->pred_out == g->nodes[k].out) return j;
    /* The forward's batch norm writes the add after it (cnn_cpu_bn_add_fused). */
    if (k > 0 && g->nodes[k].op == CNN_ADD && cnn_cpu_bn_add_fused(g, k - 1)) return k - 1;
    return k;
}

int cnn_cpu_pred_keeps_output(const cnn_graph *g, size_t k)
{
    /* A convolution that absorbs its batch norm writes that norm's output
     * (cnn_cpu_plan_fusion): its own holds prediction weights
     * (cnn_cpu_place_pred_entries) or the fold buffer. */
    return g->nodes[k].op == CNN_CONV && cnn_cpu_node_of(g, k)->fold_bn >= 0;
}

/* The add's own kernels and the batch norm's that writes it go element by
 * element, as does bfloat16 NHWC prediction's sum post-op, which then need
 * not copy the addend into the output first (25 ms of resnet50-bf16's 245 ms
 * a batch of 32): there the input must be that addend. Not the float32
 * fused forms (oneDNN's binary post-op, the Winograd kernel's add), nor an
 * input read by a node between the add's first writer and the add (the
 * fused convolution's own input). */
int cnn_cpu_add_in_place(const cnn_graph *g, size_t k, int u)
{
    const cnn_node *nd = &g->nodes[k];
    if (nd->op != CNN_ADD || (nd->in != u && nd->in2 != u)) return 0;
    const size_t start = cnn_cpu_first_writer(g, k);
    for (size_t j = start; j < k; j++)
        if (g->nodes[j].in == u || g->nodes[j].in2 == u) return 0;
    if (!cnn_cpu_node_of(g, k)->fused) return 1;
    const cnn_cpu_node *writer = cnn_cpu_node_of(g, start);
    return g->nodes[start].op == CNN_CONV && writer->fold_add == (int)k && cnn_cpu_of(g)->pred_nhwc &&
           writer->sum_in == u;
}

int cnn_cpu_predicts_wino(const cnn_graph *g, size_t k, size_t n)
{
    const int kind = cnn_cpu_node_of(g, k)->wino;
    return kind == CNN_WINO_TILES || (kind == CNN_WINO_GEMM && mx_wino_gemm_worth(&g->nodes[k].conv, n));
}

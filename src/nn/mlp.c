/* Multi-layer perceptron (and, with no hidden layer, logistic regression):
 * Linear -> ReLU -> ... -> Linear, every matrix product through oneDNN's sgemm
 * (gemm below says why not OpenBLAS), the elementwise passes threaded. A
 * forward over the planned batch runs oneDNN inner products instead, which
 * add the bias and apply the ReLU inside the product, on blocks still in
 * cache: 3-5% less time per layer than the product and a pass after it, and
 * the same values to the bit (the same sgemm kernel underneath).
 * Prediction (mlp_predict) splits the batch's rows among the threads
 * instead, each taking its rows through every layer on a one-thread sgemm:
 * the team meets once, not around every layer, where a tenth of the
 * evaluation went to libgomp's barriers (perf); 784-512-512-10 at batch
 * 128 on 2 AVX2 cores, alternated: 110-114k -> 118-124k images/s. The
 * hidden layers' outputs stay transposed there (mlp_predict says why). The
 * logits agree with the forward's to float rounding, not to the bit.
 * Parameter names follow PyTorch's nn.Sequential(Flatten, Linear, ReLU, ...),
 * so layer l's tensors are "<1+2l>.weight" [out, in] and "<1+2l>.bias" [out]. */
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/layers_dnnl.h"
#include "mixreg/rng.h"
#include "nn/model_internal.h"

typedef struct {
    size_t num_layers;
    size_t width[MX_MAX_HIDDEN + 2];  /* width[0] = input size, width[l+1] = layer l output */
    float *act[MX_MAX_HIDDEN + 1];    /* layer outputs (after ReLU for hidden layers) */
    float *delta[2];                  /* ping-pong buffers for d loss / d pre-activation */
    const float *input;               /* the last forward's input, read by backward */
    mx_dnnl_context *dnnl;            /* for the plans below; made when first planned */
    mx_dnnl_linear_plan *fwd[MX_MAX_HIDDEN + 1]; /* each layer's forward for batches of plan_batch */
    size_t plan_batch;
} mlp_impl;

/* c [m, n] = op(a) op(b) (row-major; 'T' transposes) on oneDNN's sgemm,
 * which threads with the OpenMP team the rest of mixreg uses. OpenBLAS's
 * own threads, handed these 128-row products, yielded their cores to one
 * another: a fifth of an MLP training step went to sched_yield (perf). */
/* Elementwise passes over fewer values than this stay on one thread. */
#define MLP_PARALLEL_MIN 16384

static void gemm(char ta, char tb, size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                 size_t ldb, float *c, size_t ldc)
{
    (void)dnnl_sgemm(ta, tb, (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, 1.0f, a, (dnnl_dim_t)lda, b,
                     (dnnl_dim_t)ldb, 0.0f, c, (dnnl_dim_t)ldc);
}

static const float *layer_weight(const mx_model *m, size_t l) { return m->params + m->tensors[2 * l].offset; }
static const float *layer_bias(const mx_model *m, size_t l) { return m->params + m->tensors[2 * l + 1].offset; }

static void mlp_init_params(mx_model *m, uint64_t seed)
{
    mlp_impl *impl = m->impl;
    mx_rng rng;
    mx_rng_init(&rng, seed, MX_STREAM_INIT);
    /* nn.Linear's default: kaiming_uniform(a = sqrt(5)) for the weight and
     * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias: both bounds 1/sqrt(fan_in). */
    for (size_t l = 0; l < impl->num_layers; l++) {
        double bound = 1.0 / sqrt((double)impl->width[l]);
        for (size_t k = 0; k < 2; k++) {
            const mx_param_info *t = &m->tensors[2 * l + k];
            float *p = m->params + t->offset;
            for (size_t i = 0; i < t->numel; i++) p[i] = (float)((2.0 * mx_rng_uniform(&rng) - 1.0) * bound);
        }
    }
}

/* out[i, :] = relu?(out[i, :] + bias) over an n x width block. */
static void add_bias_activate(float *out, const float *bias, size_t n, size_t width, int relu)
{
#pragma omp parallel for schedule(static) if (n * width >= MLP_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float *row = out + i * width;
        if (relu) {
            for (size_t j = 0; j < width; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (size_t j = 0; j < width; j++) row[j] += bias[j];
        }
    }
}

static const float *mlp_forward(mx_model *m, const float *x, size_t n)
{
    mlp_impl *impl = m->impl;
    impl->input = x;
    const float *in = x;
    for (size_t l = 0; l < impl->num_layers; l++) {
        size_t fan_in = impl->width[l], fan_out = impl->width[l + 1];
        float *out = impl->act[l];
        if (n != impl->plan_batch ||
            mx_dnnl_linear_forward(impl->fwd[l], n, in, layer_weight(m, l), layer_bias(m, l), out) != MX_OK) {
            gemm('N', 'T', n, fan_out, fan_in, in, fan_in, layer_weight(m, l), fan_in, out, fan_out);
            add_bias_activate(out, layer_bias(m, l), n, fan_out, l + 1 < impl->num_layers);
        }
        in = out;
    }
    return impl->act[impl->num_layers - 1];
}

/* Each column summed over the rows in order, whatever the thread count. */
static void column_sums(const float *a, size_t n, size_t width, float *sums)
{
    memset(sums, 0, width * sizeof *sums);
#pragma omp parallel if (n * width >= MLP_PARALLEL_MIN)
    {
        const size_t th = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        const size_t j0 = width * th / nth, j1 = width * (th + 1) / nth;
        for (size_t i = 0; i < n; i++)
            for (size_t j = j0; j < j1; j++) sums[j] += a[i * width + j];
    }
}

static void mlp_backward(mx_model *m, const float *dlogits, size_t n, float *dx)
{
    mlp_impl *impl = m->impl;
    const float *delta = dlogits;
    for (size_t l = impl->num_layers; l-- > 0;) {
        size_t fan_in = impl->width[l], fan_out = impl->width[l + 1];
        const float *in = l ? impl->act[l - 1] : impl->input;
        float *dw = m->grads + m->tensors[2 * l].offset;
        float *db = m->grads + m->tensors[2 * l + 1].offset;
        gemm('T', 'N', fan_out, fan_in, n, delta, fan_out, in, fan_in, dw, fan_in);
        column_sums(delta, n, fan_out, db);
        if (l == 0) {
            if (dx)
                gemm('N', 'N', n, fan_in, fan_out, delta, fan_out, layer_weight(m, 0), fan_in, dx, fan_in);
            break;
        }
        float *dprev = impl->delta[l & 1];
        gemm('N', 'N', n, fan_in, fan_out, delta, fan_out, layer_weight(m, l), fan_in, dprev, fan_in);
        /* ReLU backward: the stored output is zero exactly where the unit was off. */
#pragma omp parallel for simd schedule(static) if (n * fan_in >= MLP_PARALLEL_MIN)
        for (size_t i = 0; i < n * fan_in; i++)
            if (in[i] <= 0.0f) dprev[i] = 0.0f;
        delta = dprev;
    }
}

/* out[o, :] = relu(out[o, :] + bias[o]) over a width x n block: a hidden
 * layer's outputs as prediction keeps them, one row per unit. */
static void add_bias_relu_units(float *out, const float *bias, size_t width, size_t n)
{
    for (size_t o = 0; o < width; o++) {
        float *row = out + o * n;
        const float b = bias[o];
        for (size_t i = 0; i < n; i++) {
            float v = row[i] + b;
            row[i] = v > 0.0f ? v : 0.0f;
        }
    }
}

/* Prediction: each thread takes its share of the rows through every layer
 * (the header says why). Between layers a thread keeps its rows' outputs
 * transposed, one row per unit (width x rows): each product is then
 * weights x activations, the weights' rows along sgemm's long dimension,
 * and oneDNN's one-thread sgemm ran 96 GFLOP/s on 512 x 64 x 512 that way
 * against 87 for the rows' 64 x 512 x 512 (2 AVX2 cores; the whole
 * 784-512-512-10 prediction 126-129k -> 133-136k images/s in a bench of the
 * two). The last layer's product reads them transposed and writes the
 * logits as rows. The bias and ReLU go on while the block is in cache. */
static const float *mlp_predict(mx_model *m, const float *x, size_t n)
{
    mlp_impl *impl = m->impl;
    const size_t last = impl->num_layers - 1;
#pragma omp parallel
    {
        const size_t th = (size_t)omp_get_thread_num(), nth = (size_t)omp_get_num_threads();
        const size_t r0 = n * th / nth, rows = n * (th + 1) / nth - r0;
        const float *in = x + r0 * impl->width[0]; /* rows x width[0]; after layer 0, width[l] x rows */
        for (size_t l = 0; rows && l < impl->num_layers; l++) {
            const size_t fan_in = impl->width[l], fan_out = impl->width[l + 1];
            float *out = impl->act[l] + r0 * fan_out;
            if (l == last) {
                gemm(l ? 'T' : 'N', 'T', rows, fan_out, fan_in, in, l ? rows : fan_in, layer_weight(m, l), fan_in,
                     out, fan_out);
                /* Inside this team its parallel loop runs on the calling thread alone. */
                add_bias_activate(out, layer_bias(m, l), rows, fan_out, 0);
            } else {
                gemm('N', l ? 'N' : 'T', fan_out, rows, fan_in, layer_weight(m, l), fan_in, in, l ? rows : fan_in, out,
                     rows);
                add_bias_relu_units(out, layer_bias(m, l), fan_out, rows);
            }
            in = out;
        }
    }
    return impl->act[last];
}

static void free_activations(mlp_impl *impl)
{
    for (size_t l = 0; l < impl->num_layers; l++) mx_dnnl_linear_plan_free(impl->fwd[l]), impl->fwd[l] = NULL;
    impl->plan_batch = 0;
    for (size_t l = 0; l < impl->num_layers; l++) free(impl->act[l]), impl->act[l] = NULL;
    free(impl->delta[0]), free(impl->delta[1]);
    impl->delta[0] = impl->delta[1] = NULL;
}

static void mlp_destroy(mx_model *m)
{
    mlp_impl *impl = m->impl;
    if (!impl) return;
    free_activations(impl);
    mx_dnnl_context_free(impl->dnnl);
    free(impl);
}

/* The widest hidden layer (1 without one): the backward's delta rows. */
static size_t widest_hidden(const mlp_impl *impl)
{
    size_t widest = 1;
    for (size_t l = 0; l + 1 < impl->num_layers; l++)
        if (impl->width[l + 1] > widest) widest = impl->width[l + 1];
    return widest;
}

/* Every layer's output, and (training) two delta buffers; tiny next to a CNN's. */
static size_t mlp_plan_bytes(const mx_model *m, size_t batch, int predict_only)
{
    const mlp_impl *impl = m->impl;
    size_t floats = predict_only ? 0 : 2 * widest_hidden(impl);
    for (size_t l = 0; l < impl->num_layers; l++) floats += impl->width[l + 1];
    return floats > SIZE_MAX / sizeof(float) / batch ? SIZE_MAX : batch * floats * sizeof(float);
}

static mx_status mlp_plan(mx_model *m)
{
    mlp_impl *impl = m->impl;
    free_activations(impl);
    if (mlp_plan_bytes(m, m->max_batch, m->predict_only) == SIZE_MAX)
        return mx_error_set(MX_ERR_NOMEM, "MLP activations too large for batch %zu", m->max_batch);
    for (size_t l = 0; l < impl->num_layers; l++)
        if (!(impl->act[l] = malloc(m->max_batch * impl->width[l + 1] * sizeof(float)))) {
            free_activations(impl);
            return mx_error_set(MX_ERR_NOMEM, "out of memory for activations");
        }
    for (size_t k = 0; !m->predict_only && k < 2; k++)
        if (!(impl->delta[k] = malloc(m->max_batch * widest_hidden(impl) * sizeof(float)))) {
            free_activations(impl);
            return mx_error_set(MX_ERR_NOMEM, "out of memory for gradients");
        }
    mx_status st = impl->dnnl ? MX_OK : mx_dnnl_context_create(&impl->dnnl);
    for (size_t l = 0; st == MX_OK && l < impl->num_layers; l++) {
        const unsigned relu = l + 1 < impl->num_layers ? MX_DNNL_LINEAR_RELU : 0u;
        st = mx_dnnl_linear_plan_create(impl->dnnl, m->max_batch, impl->width[l], impl->width[l + 1],
                                        MX_DNNL_LINEAR_BIAS | MX_DNNL_LINEAR_INFERENCE | relu, &impl->fwd[l]);
    }
    if (st != MX_OK) {
        free_activations(impl);
        return st;
    }
    impl->plan_batch = m->max_batch;
    return MX_OK;
}

static const mx_model_ops mlp_ops = {mlp_init_params, mlp_forward, mlp_predict,    mlp_backward, mlp_destroy,
                                     NULL,            mlp_plan,    mlp_plan_bytes, NULL,         NULL,
                                     NULL};

mx_status mx_mlp_create(mx_model *m)
{
    mlp_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return mx_error_set(MX_ERR_NOMEM, "out of memory creating the MLP");
    m->impl = impl;
    m->ops = &mlp_ops;
    impl->num_layers = m->spec.num_hidden + 1;
    impl->width[0] = mx_model_input_size(m);
    for (size_t l = 0; l < m->spec.num_hidden; l++) impl->width[l + 1] = m->spec.hidden[l];
    impl->width[impl->num_layers] = m->spec.num_classes;

    for (size_t l = 0; l < impl->num_layers; l++) {
        char name[64];
        size_t wshape[2] = {impl->width[l + 1], impl->width[l]};
        snprintf(name, sizeof name, "%zu.weight", 1 + 2 * l);
        mx_model_add_tensor(m, name, 2, wshape);
        snprintf(name, sizeof name, "%zu.bias", 1 + 2 * l);
        mx_model_add_tensor(m, name, 1, &wshape[0]);
    }
    return mx_model_alloc_params(m);
}

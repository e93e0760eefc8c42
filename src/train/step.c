#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"
#include "mixreg/step.h"

mx_status mx_stepper_init(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                          const mx_sgd_config *sgd)
{
    return mx_stepper_init_shared(s, model, nz, mixup, sgd, mx_model_max_batch(model));
}

mx_status mx_stepper_init_shared(mx_stepper *s, mx_model *model, const mx_normalizer *nz, const mx_mixup_config *mixup,
                                 const mx_sgd_config *sgd, size_t global_batch)
{
    memset(s, 0, sizeof *s);
    s->model = model;
    s->nz = nz;
    s->mixup = *mixup;
    s->cutmix = mx_cutmix_config_default();
    s->sgd = *sgd;
    s->batch = mx_model_max_batch(model);
    s->global_batch = global_batch > s->batch ? global_batch : s->batch;
    s->dim = mx_model_input_size(model);
    s->classes = mx_model_get_spec(model)->num_classes;
    /* Measure, allocate once, then hand out: the step itself never allocates. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) mx_arena_measure(&s->arena);
        else if (mx_arena_commit(&s->arena) != MX_OK) return MX_ERR_NOMEM;
        size_t b = s->batch;
        s->x = mx_arena_alloc(&s->arena, b * s->dim * sizeof(float));
        s->x_mix = mx_arena_alloc(&s->arena, b * s->dim * sizeof(float));
        s->y_mix = mx_arena_alloc(&s->arena, b * s->classes * sizeof(float));
        s->dlogits = mx_arena_alloc(&s->arena, b * s->classes * sizeof(float));
        s->velocity = mx_arena_alloc(&s->arena, mx_model_param_count(model) * sizeof(float));
        s->labels = mx_arena_alloc(&s->arena, b * sizeof(int32_t));
        size_t g = s->global_batch;
        s->mix_ws.partner = mx_arena_alloc(&s->arena, g * sizeof(uint32_t));
        s->mix_ws.lambda = mx_arena_alloc(&s->arena, g * sizeof(double));
        s->mix_ws.box = mx_arena_alloc(&s->arena, g * sizeof(mx_box));
        s->mix_ws.kind = mx_arena_alloc(&s->arena, g * sizeof(uint8_t));
        if (g > b) { /* only a share of the batch: room for partner rows from the others' */
            s->rows = mx_arena_alloc(&s->arena, 2 * b * s->dim * sizeof(float));
            s->row_labels = mx_arena_alloc(&s->arena, 2 * b * sizeof(int32_t));
            s->slot = mx_arena_alloc(&s->arena, g * sizeof(uint32_t));
            s->load_idx = mx_arena_alloc(&s->arena, b * sizeof(uint32_t));
        }
    }
    return MX_OK;
}

void mx_stepper_free(mx_stepper *s)
{
    mx_arena_free(&s->arena);
    memset(s, 0, sizeof *s);
}

void mx_stepper_stop_mixing(mx_stepper *s)
{
    s->mixup.alpha = 0.0;
    s->cutmix.alpha = 0.0;
    s->cutmix.minmax_lo = s->cutmix.minmax_hi = 0.0;
}

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static double batch_accuracy(const float *logits, const float *targets, size_t n, size_t classes)
{
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) correct += argmax(logits + i * classes, classes) == argmax(targets + i * classes, classes);
    return (double)correct / (double)n;
}

double mx_stepper_step(mx_stepper *s, const mx_dataset *ds, const uint32_t *idx, size_t n, mx_rng *mix_rng, double lr)
{
    /* A streamed sample that fails to decode (the message is set) ends the
     * step before any update, as a non-finite loss does. */
    if (mx_dataset_gather(ds, s->nz, idx, n, s->x, s->labels) != MX_OK) return NAN;
    return mx_stepper_step_batch(s, s->x, s->labels, n, mix_rng, lr);
}

double mx_stepper_step_batch(mx_stepper *s, const float *x, const int32_t *labels, size_t n, mx_rng *mix_rng, double lr)
{
    const mx_model_spec *spec = mx_model_get_spec(s->model);
    mx_cutmix_batch(&s->mixup, &s->cutmix, mix_rng, x, labels, n, spec->in_channels, spec->in_height,
                    spec->in_width, s->classes, s->x_mix, s->y_mix, &s->mix_ws);
    mx_model_set_training(s->model, 1);
    const float *logits = mx_model_forward(s->model, s->x_mix, n);
    double loss = mx_softmax_xent(logits, s->y_mix, n, s->classes, s->dlogits);
    s->last_accuracy = batch_accuracy(logits, s->y_mix, n, s->classes);
    if (!isfinite(loss)) return loss;
    mx_model_backward_sgd(s->model, s->dlogits, n, &s->sgd, lr, s->velocity);
    return loss;
}

static size_t count_correct(const float *logits, const float *targets, size_t n, size_t classes)
{
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) correct += argmax(logits + i * classes, classes) == argmax(targets + i * classes, classes);
    return correct;
}

/* This process's rows and, after them, the partner rows from other shares
 * (each loaded once), with slot[] mapping batch rows to them. */
static mx_status gather_partners(mx_stepper *s, const mx_step_share *sh)
{
    const size_t dim = s->dim;
    for (size_t i = 0; i < sh->total; i++) s->slot[i] = UINT32_MAX;
    for (size_t k = 0; k < sh->n; k++) s->slot[sh->first + k] = (uint32_t)k;
    memcpy(s->rows, sh->x, sh->n * dim * sizeof(float));
    memcpy(s->row_labels, sh->labels, sh->n * sizeof(int32_t));
    size_t loads = 0;
    for (size_t k = 0; k < sh->n; k++) {
        uint32_t j = s->mix_ws.partner[sh->first + k];
        if (s->slot[j] != UINT32_MAX) continue;
        s->slot[j] = (uint32_t)(sh->n + loads);
        s->load_idx[loads++] = sh->indices[j];
    }
    if (!loads) return MX_OK;
    return sh->fill(sh->fill_ctx, s->load_idx, loads, sh->epoch, s->rows + sh->n * dim, s->row_labels + sh->n);
}

mx_status mx_stepper_step_share(mx_stepper *s, const mx_step_share *sh, int failed, int stop_request, mx_rng *mix_rng,
                                double lr, mx_step_result *out)
{
    const mx_model_spec *spec = mx_model_get_spec(s->model);
    const int whole = sh->n == sh->total && sh->first == 0;
    memset(out, 0, sizeof *out);
    if (!failed && (sh->total > s->global_batch || sh->n > s->batch || sh->first + sh->n > sh->total || (!whole && !s->rows)))
        failed = mx_error_set(MX_ERR_ARG, "step: a share of %zu rows at %zu of a batch of %zu does not fit", sh->n,
                              sh->first, sh->total) != MX_OK;
    /* The whole batch's plan: the same draws on every process. */
    if (!failed)
        mx_cutmix_plan(&s->mixup, &s->cutmix, mix_rng, sh->total, spec->in_height, spec->in_width, &s->mix_ws);
    const float *x_in = sh->x;
    const int32_t *labels = sh->labels;
    const uint32_t *slot = NULL;
    size_t first = sh->first;
    if (!failed && !whole) {
        failed = gather_partners(s, sh) != MX_OK;
        x_in = s->rows, labels = s->row_labels, slot = s->slot;
    }
    if (whole) first = 0;
    /* Agree before any work that exchanges data: did a share fail, was a stop asked for? */
    int flags[2] = {failed ? mx_dist_rank() + 1 : 0, stop_request != 0};
    mx_status st = mx_dist_allreduce_max_int(flags, 2);
    if (st != MX_OK) return st;
    out->stop = flags[1];
    if (flags[0]) {
        if (failed) return MX_ERR_IO; /* this process's own message stands */
        return mx_error_set(MX_ERR_IO, "process %d of the job could not load its share of the batch (its error is "
                            "printed there)", flags[0] - 1);
    }
    const size_t n = sh->n;
    double sums[2] = {0, 0}; /* this process's share of the mean loss, its correct predictions */
    if (n) {
        mx_cutmix_apply(&s->mixup, &s->mix_ws, first, n, x_in, labels, slot, spec->in_channels, spec->in_height,
                        spec->in_width, s->classes, s->x_mix, s->y_mix);
        mx_model_set_training(s->model, 1);
        const float *logits = mx_model_forward(s->model, s->x_mix, n);
        sums[0] = mx_softmax_xent_share(logits, s->y_mix, n, sh->total, s->classes, s->dlogits);
        sums[1] = (double)count_correct(logits, s->y_mix, n, s->classes);
    } else {
        mx_model_bn_sync_idle(s->model, 0);
    }
    st = mx_dist_allreduce_sum_double(sums, 2);
    if (st != MX_OK) return st;
    out->loss = sums[0];
    out->accuracy = sums[1] / (double)sh->total;
    s->last_accuracy = out->accuracy;
    if (!isfinite(out->loss)) return MX_OK;
    float *grads = mx_model_grads(s->model);
    const size_t count = mx_model_param_count(s->model);
    if (mx_dist_size() == 1 && n) {
        /* Nothing to sum over processes: each layer stepped as its
         * gradients come, none of them kept (the same bits). */
        mx_model_backward_sgd(s->model, s->dlogits, n, &s->sgd, lr, s->velocity);
        return MX_OK;
    }
    if (n) {
        mx_model_backward(s->model, s->dlogits, n);
    } else {
        mx_model_bn_sync_idle(s->model, 1);
        memset(grads, 0, count * sizeof(float));
    }
    /* The one exchange of gradients: NCCL or another transport would take
     * over here for device memory. */
    st = mx_dist_allreduce_sum_float(grads, count);
    if (st != MX_OK) return st;
    mx_sgd_step(&s->sgd, lr, mx_model_params(s->model), grads, s->velocity, count);
    return MX_OK;
}

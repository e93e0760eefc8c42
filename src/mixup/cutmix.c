/* CutMix and the CutMix/Mixup switch on one batch, following timm's
 * Mixup class (timm/data/mixup.py): rand_bbox, cutmix_bbox_and_lam with
 * correct_lam, _params_per_batch / _params_per_elem. Decisions first (all
 * random draws, in a fixed order), then the rows are written one by one;
 * nothing is allocated. */
#include <math.h>
#include <string.h>

#include "mixreg/cutmix.h"
#include "mixreg/theta.h"
#include "mixup/blend.h"

mx_cutmix_config mx_cutmix_config_default(void)
{
    mx_cutmix_config cfg = {.alpha = 0.0, .switch_prob = 0.5, .prob = 1.0, .correct_lambda = 1};
    return cfg;
}

mx_status mx_cutmix_config_validate(const mx_cutmix_config *cut, const mx_mixup_config *mix)
{
    mx_status st = mx_mixup_config_validate(mix);
    if (st != MX_OK) return st;
    if (!(cut->alpha >= 0.0) || !(cut->alpha <= MX_MAX_ALPHA))
        return mx_error_set(MX_ERR_ARG, "--cutmix-alpha must be a number in [0, 1e6] (got %g)", cut->alpha);
    if (!(cut->switch_prob >= 0.0) || !(cut->switch_prob <= 1.0))
        return mx_error_set(MX_ERR_ARG, "--cutmix-switch-prob must be in [0, 1] (got %g)", cut->switch_prob);
    if (!(cut->prob >= 0.0) || !(cut->prob <= 1.0))
        return mx_error_set(MX_ERR_ARG, "--mix-prob must be in [0, 1] (got %g)", cut->prob);
    int minmax_off = cut->minmax_lo == 0.0 && cut->minmax_hi == 0.0;
    if (!minmax_off && !(cut->minmax_lo >= 0.0 && cut->minmax_lo < cut->minmax_hi && cut->minmax_hi <= 1.0))
        return mx_error_set(MX_ERR_ARG, "--cutmix-minmax must be MIN,MAX with 0 <= MIN < MAX <= 1 (got %g,%g)",
                            cut->minmax_lo, cut->minmax_hi);
    return MX_OK;
}

int mx_cutmix_on(const mx_cutmix_config *cut) { return cut->alpha > 0.0 || cut->minmax_hi > 0.0; }

/* ---- boxes ---- */

static uint32_t clip(long long v, size_t hi) { return v < 0 ? 0 : (uint32_t)((size_t)v > hi ? hi : (size_t)v); }

mx_box mx_cutmix_box_at(double lambda, size_t height, size_t width, size_t cy, size_t cx)
{
    if (!(lambda >= 0.0)) lambda = 0.0; /* NaN too */
    if (lambda > 1.0) lambda = 1.0;
    double ratio = sqrt(1.0 - lambda);
    long long half_h = (long long)((double)height * ratio) / 2, half_w = (long long)((double)width * ratio) / 2;
    mx_box b;
    b.y0 = clip((long long)cy - half_h, height);
    b.y1 = clip((long long)cy + half_h, height);
    b.x0 = clip((long long)cx - half_w, width);
    b.x1 = clip((long long)cx + half_w, width);
    return b;
}

mx_box mx_cutmix_rand_box(mx_rng *rng, double lambda, size_t height, size_t width)
{
    size_t cy = mx_rng_below(rng, (uint32_t)height);
    size_t cx = mx_rng_below(rng, (uint32_t)width);
    return mx_cutmix_box_at(lambda, height, width, cy, cx);
}

/* One side: uniform in [floor(lo size), floor(hi size)), or that lower end
 * when the range holds no integer (numpy's randint would refuse it). */
static size_t minmax_side(mx_rng *rng, double lo, double hi, size_t size)
{
    size_t low = (size_t)((double)size * lo), high = (size_t)((double)size * hi);
    if (high > size) high = size;
    if (low >= size) low = size ? size - 1 : 0; /* lo < 1, so only by rounding */
    return high > low ? low + mx_rng_below(rng, (uint32_t)(high - low)) : low;
}

mx_box mx_cutmix_rand_box_minmax(mx_rng *rng, double lo, double hi, size_t height, size_t width)
{
    size_t cut_h = minmax_side(rng, lo, hi, height), cut_w = minmax_side(rng, lo, hi, width);
    /* The corner: numpy's randint(0, size - cut), so size - cut choices (cut < size). */
    size_t y0 = height > cut_h ? mx_rng_below(rng, (uint32_t)(height - cut_h)) : 0;
    size_t x0 = width > cut_w ? mx_rng_below(rng, (uint32_t)(width - cut_w)) : 0;
    mx_box b = {(uint32_t)y0, (uint32_t)(y0 + cut_h), (uint32_t)x0, (uint32_t)(x0 + cut_w)};
    return b;
}

double mx_cutmix_box_lambda(mx_box box, size_t height, size_t width)
{
    double area = (double)(box.y1 - box.y0) * (double)(box.x1 - box.x0);
    return 1.0 - area / ((double)height * (double)width);
}


/* ---- decisions ---- */

typedef struct {
    uint8_t kind;
    double lambda;
    mx_box box;
} decision;

static const mx_box no_box = {0, 0, 0, 0};

/* One batch, pair or row: [prob draw] [switch draw] lambda [box centre]. */
static decision decide(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, size_t height,
                       size_t width)
{
    decision d = {MX_MIXED_NONE, 1.0, no_box};
    int mix_on = mix->alpha > 0.0, cut_on = mx_cutmix_on(cut);
    if (!mix_on && !cut_on) return d;
    if (cut->prob < 1.0 && !(mx_rng_uniform(rng) < cut->prob)) return d;
    int use_cut = cut_on && (!mix_on || mx_rng_uniform(rng) < cut->switch_prob);
    if (!use_cut) {
        double lam = mx_rng_beta(rng, mix->alpha, mix->alpha);
        if (mix->theta_form && lam < 0.5) lam = 1.0 - lam;
        d.kind = MX_MIXED_MIXUP;
        d.lambda = lam;
        return d;
    }
    d.kind = MX_MIXED_CUTMIX;
    if (cut->minmax_hi > 0.0) {
        /* The box's sides are drawn, not lambda: lambda is its area share. */
        d.box = mx_cutmix_rand_box_minmax(rng, cut->minmax_lo, cut->minmax_hi, height, width);
        d.lambda = mx_cutmix_box_lambda(d.box, height, width);
        return d;
    }
    double lam = mx_rng_beta(rng, cut->alpha, cut->alpha);
    d.box = mx_cutmix_rand_box(rng, lam, height, width);
    d.lambda = cut->correct_lambda ? mx_cutmix_box_lambda(d.box, height, width) : lam;
    return d;
}

static void record(mx_cutmix_workspace *ws, size_t i, uint32_t j, decision d)
{
    ws->partner[i] = d.kind == MX_MIXED_NONE ? (uint32_t)i : j;
    ws->lambda[i] = d.lambda;
    ws->box[i] = d.box;
    ws->kind[i] = d.kind;
}

static void decide_all(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, size_t n,
                       size_t height, size_t width, mx_cutmix_workspace *ws)
{
    /* The drawn partners go to ws->partner; record() then keeps them only for mixed rows. */
    mx_mixup_choose_partners(mix, rng, ws->partner, n);
    switch (mix->mode) {
    case MX_MIX_ELEM:
        for (size_t i = 0; i < n; i++) record(ws, i, ws->partner[i], decide(mix, cut, rng, height, width));
        break;
    case MX_MIX_PAIR: {
        /* A pair is decided at its first member and copied to the second. */
        for (size_t i = 0; i < n; i++) {
            uint32_t j = ws->partner[i];
            if (j == i) {
                decision whole = {MX_MIXED_NONE, 1.0, no_box};
                record(ws, i, j, whole);
            } else if (j < i && (ws->kind[j] == MX_MIXED_NONE ? ws->partner[j] == j : ws->partner[j] == i)) {
                /* The first member j was decided already: a NONE pair left partner[j] = j. */
                decision same = {ws->kind[j], ws->lambda[j], ws->box[j]};
                record(ws, i, j, same);
            } else {
                record(ws, i, j, decide(mix, cut, rng, height, width));
            }
        }
        break;
    }
    case MX_MIX_BATCH:
    default: {
        decision d = decide(mix, cut, rng, height, width);
        for (size_t i = 0; i < n; i++) record(ws, i, ws->partner[i], d);
        break;
    }
    }
}

/* ---- rows ---- */

static void paste_box(float *restrict out, const float *restrict other, mx_box b, size_t channels, size_t height,
                      size_t width)
{
    if (b.y1 <= b.y0 || b.x1 <= b.x0) return;
    size_t run = (size_t)(b.x1 - b.x0) * sizeof(float);
    for (size_t c = 0; c < channels; c++)
        for (size_t y = b.y0; y < b.y1; y++) {
            size_t at = (c * height + y) * width + b.x0;
            memcpy(out + at, other + at, run);
        }
}

void mx_cutmix_plan(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, size_t n, size_t height,
                    size_t width, mx_cutmix_workspace *ws)
{
    if (!mx_cutmix_on(cut) && (!(mix->alpha > 0.0) || cut->prob >= 1.0)) {
        /* Plain Mixup (or none): its draws, exactly. */
        mx_mixup_workspace mws = {ws->partner, ws->lambda};
        mx_mixup_plan(mix, rng, n, &mws);
        uint8_t kind = mix->alpha > 0.0 ? MX_MIXED_MIXUP : MX_MIXED_NONE;
        for (size_t i = 0; i < n; i++) {
            ws->box[i] = no_box;
            ws->kind[i] = kind;
        }
        return;
    }
    decide_all(mix, cut, rng, n, height, width, ws);
}

void mx_cutmix_apply(const mx_mixup_config *mix, const mx_cutmix_workspace *ws, size_t first, size_t count,
                     const float *x_in, const int32_t *labels, const uint32_t *slot, size_t channels, size_t height,
                     size_t width, size_t num_classes, float *x_out, float *y_out)
{
    const size_t dim = channels * height * width;
    for (size_t k = 0; k < count; k++) {
        const size_t i = first + k, j = ws->partner[i];
        const size_t own_row = slot ? slot[i] : i, other_row = slot ? slot[j] : j;
        double lam = ws->lambda[i];
        uint8_t kind = ws->kind[i];
        const float *own = x_in + own_row * dim, *other = x_in + other_row * dim;
        float *out = x_out + k * dim;
        if (kind == MX_MIXED_MIXUP && mix->mix_inputs) {
            mx_blend_row(out, own, other, (float)lam, dim);
        } else {
            memcpy(out, own, dim * sizeof(float));
            if (kind == MX_MIXED_CUTMIX && mix->mix_inputs) paste_box(out, other, ws->box[i], channels, height, width);
        }
        int mix_row_labels = kind != MX_MIXED_NONE && mix->mix_labels;
        mx_blend_targets(y_out + k * num_classes, num_classes, mix->label_smoothing, labels[own_row],
                         mix_row_labels ? labels[other_row] : labels[own_row], mix_row_labels ? lam : 1.0);
    }
}

void mx_cutmix_batch(const mx_mixup_config *mix, const mx_cutmix_config *cut, mx_rng *rng, const float *x_in,
                     const int32_t *labels, size_t n, size_t channels, size_t height, size_t width,
                     size_t num_classes, float *x_out, float *y_out, mx_cutmix_workspace *ws)
{
    mx_cutmix_plan(mix, cut, rng, n, height, width, ws);
    mx_cutmix_apply(mix, ws, 0, n, x_in, labels, NULL, channels, height, width, num_classes, x_out, y_out);
}

/* Mixup on one batch: choose partners, draw the mixing weights, then blend
 * inputs and (smoothed one-hot) targets row by row. Runs once per training
 * step, so it allocates nothing and keeps the inner loops plain. */
#include <string.h>

#include "mixreg/mixup.h"
#include "mixreg/theta.h"
#include "mixup/blend.h"

mx_mixup_config mx_mixup_config_default(void)
{
    mx_mixup_config cfg = {
        .alpha = 1.0,
        .mode = MX_MIX_BATCH,
        .partner = MX_PARTNER_PERM,
        .theta_form = 0,
        .label_smoothing = 0.0,
        .mix_inputs = 1,
        .mix_labels = 1,
    };
    return cfg;
}

mx_status mx_mixup_config_validate(const mx_mixup_config *cfg)
{
    if (!(cfg->alpha >= 0.0) || !(cfg->alpha <= MX_MAX_ALPHA))
        return mx_error_set(MX_ERR_ARG, "--mixup-alpha must be a number in [0, 1e6] (got %g)", cfg->alpha);
    if (!(cfg->label_smoothing >= 0.0) || !(cfg->label_smoothing < 1.0))
        return mx_error_set(MX_ERR_ARG, "--label-smoothing must be in [0, 1) (got %g)", cfg->label_smoothing);
    if ((unsigned)cfg->mode > MX_MIX_ELEM)
        return mx_error_set(MX_ERR_ARG, "--mixup-mode: unknown value %d", (int)cfg->mode);
    if ((unsigned)cfg->partner > MX_PARTNER_ROLL)
        return mx_error_set(MX_ERR_ARG, "--mixup-partner: unknown value %d", (int)cfg->partner);
    if (cfg->mode == MX_MIX_PAIR && cfg->partner == MX_PARTNER_ROLL)
        return mx_error_set(MX_ERR_ARG,
                            "--mixup-mode pair needs a pairing partner (perm or flip); roll does not pair samples");
    return MX_OK;
}


/* Relabels the involution q by the transposition (a b): q <- (a b) q (a b).
 * The entries holding the values a and b sit at q(a) and q(b), moved by the
 * position swap to (a b)(q(a)) and (a b)(q(b)). */
static void conjugate_by_swap(uint32_t *q, uint32_t a, uint32_t b)
{
    if (a == b) return;
    uint32_t qa = q[a], qb = q[b];
    uint32_t holds_a = qa == a ? b : (qa == b ? a : qa);
    uint32_t holds_b = qb == a ? b : (qb == b ? a : qb);
    q[a] = qb;
    q[b] = qa;
    q[holds_a] = b;
    q[holds_b] = a;
}

/* Pair mode with the perm partner: a uniformly random perfect matching (one
 * sample left unmatched when n is odd). Conjugating the fixed matching
 * (0 1)(2 3)... by a uniform permutation gives a uniform matching; applying
 * the Fisher-Yates transpositions one by one does that in place. */
static void random_matching(mx_rng *rng, uint32_t *partner, size_t n)
{
    for (size_t i = 0; i < n; i++) partner[i] = (uint32_t)(i ^ 1);
    if (n % 2 == 1) partner[n - 1] = (uint32_t)(n - 1);
    for (size_t i = n; i > 1; i--) conjugate_by_swap(partner, (uint32_t)(i - 1), mx_rng_below(rng, (uint32_t)i));
}

void mx_mixup_choose_partners(const mx_mixup_config *cfg, mx_rng *rng, uint32_t *partner, size_t n)
{
    switch (cfg->partner) {
    case MX_PARTNER_FLIP:
        for (size_t i = 0; i < n; i++) partner[i] = (uint32_t)(n - 1 - i);
        break;
    case MX_PARTNER_ROLL:
        for (size_t i = 0; i < n; i++) partner[i] = (uint32_t)((i + n - 1) % n);
        break;
    case MX_PARTNER_PERM:
    default:
        if (cfg->mode == MX_MIX_PAIR)
            random_matching(rng, partner, n);
        else
            mx_rng_permutation(rng, partner, n);
        break;
    }
}

/* Drawn and folded in double: a small alpha puts many draws within 2^-24
 * of 1, which float would round to exactly 1 (an unmixed row). The input
 * blend converts to float itself; the targets are blended in double. */
static double draw_lambda(const mx_mixup_config *cfg, mx_rng *rng)
{
    double lam = mx_rng_beta(rng, cfg->alpha, cfg->alpha);
    if (cfg->theta_form && lam < 0.5) lam = 1.0 - lam;
    return lam;
}

static void choose_lambdas(const mx_mixup_config *cfg, mx_rng *rng, const uint32_t *partner, double *lambda, size_t n)
{
    switch (cfg->mode) {
    case MX_MIX_ELEM:
        for (size_t i = 0; i < n; i++) lambda[i] = draw_lambda(cfg, rng);
        break;
    case MX_MIX_PAIR:
        /* One draw per pair, shared by both members (each weighted toward
         * itself); an unmatched sample keeps itself whole. Written for any
         * partner map so an unvalidated config still leaves no entry unset. */
        for (size_t i = 0; i < n; i++) {
            uint32_t j = partner[i];
            if (j == i)
                lambda[i] = 1.0;
            else if (j < i && partner[j] == i)
                lambda[i] = lambda[j];
            else
                lambda[i] = draw_lambda(cfg, rng);
        }
        break;
    case MX_MIX_BATCH:
    default: {
        double lam = draw_lambda(cfg, rng);
        for (size_t i = 0; i < n; i++) lambda[i] = lam;
        break;
    }
    }
}

void mx_mixup_plan(const mx_mixup_config *cfg, mx_rng *rng, size_t n, mx_mixup_workspace *ws)
{
    if (cfg->alpha > 0.0) {
        mx_mixup_choose_partners(cfg, rng, ws->partner, n);
        choose_lambdas(cfg, rng, ws->partner, ws->lambda, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            ws->partner[i] = (uint32_t)i;
            ws->lambda[i] = 1.0;
        }
    }
}

void mx_mixup_batch(const mx_mixup_config *cfg, mx_rng *rng, const float *x_in, const int32_t *labels, size_t n,
                    size_t dim, size_t num_classes, float *x_out, float *y_out, mx_mixup_workspace *ws)
{
    int mixing = cfg->alpha > 0.0;
    mx_mixup_plan(cfg, rng, n, ws);
    for (size_t i = 0; i < n; i++) {
        size_t j = ws->partner[i];
        double lam = ws->lambda[i];
        const float *own = x_in + i * dim;
        if (mixing && cfg->mix_inputs)
            mx_blend_row(x_out + i * dim, own, x_in + j * dim, (float)lam, dim);
        else
            memcpy(x_out + i * dim, own, dim * sizeof(float));
        int mix_row_labels = mixing && cfg->mix_labels;
        mx_blend_targets(y_out + i * num_classes, num_classes, cfg->label_smoothing, labels[i],
                         mix_row_labels ? labels[j] : labels[i], mix_row_labels ? lam : 1.0);
    }
}

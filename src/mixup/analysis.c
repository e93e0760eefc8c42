/* The regularisation analysis (mixreg/analysis.h): input-Jacobians by C
 * vector-Jacobian products, spectral norms by power iteration, and the
 * Taylor-expansion terms of method.md section 3. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/analysis.h"
#include "mixreg/checked.h"
#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/rng.h"

#define MX_STREAM_ANALYSIS 7 /* the power iteration's start vector */

/* malloc of a x b x c elements of `elem` bytes, NULL when the size overflows
 * (the class count and input size come from a checkpoint). */
static void *alloc3(size_t a, size_t b, size_t c, size_t elem)
{
    const size_t dims[4] = {a, b, c, elem};
    size_t bytes;
    return mx_size_product(dims, 4, &bytes) ? malloc(bytes ? bytes : 1) : NULL;
}


mx_status mx_input_jacobian(mx_model *model, const float *x, size_t n, float *jac, float *logits)
{
    const size_t C = mx_model_get_spec(model)->num_classes, d = mx_model_input_size(model);
    if (n == 0 || n > mx_model_max_batch(model))
        return mx_error_set(MX_ERR_ARG, "input Jacobian: %zu samples for a model planned for %zu", n,
                            mx_model_max_batch(model));
    float *dlogits = calloc(n * C, sizeof *dlogits);
    float *dx = malloc(n * d * sizeof *dx);
    if (!dlogits || !dx) {
        free(dlogits);
        free(dx);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for the input Jacobian");
    }
    mx_model_set_training(model, 0);  /* batch norm on its running statistics: a per-sample function */
    /* Row c of every sample's Jacobian is the vector-Jacobian product with
     * e_c. Each backward needs a forward of its own (mx_model_backward):
     * in eval mode they give the same logits. */
    for (size_t c = 0; c < C; c++) {
        const float *out = mx_model_forward(model, x, n);
        if (logits && c == 0) memcpy(logits, out, n * C * sizeof *logits);
        for (size_t i = 0; i < n; i++) {
            if (c) dlogits[i * C + c - 1] = 0.0f;
            dlogits[i * C + c] = 1.0f;
        }
        mx_model_backward_input(model, dlogits, n, dx);
        for (size_t i = 0; i < n; i++) memcpy(jac + (i * C + c) * d, dx + i * d, d * sizeof *jac);
    }
    free(dlogits);
    free(dx);
    return MX_OK;
}

/* The nonzero eigenvalues of a^T a (cols x cols) and a a^T (rows x rows) are
 * the same, and power iteration on a a^T from w is power iteration on a^T a
 * from a^T w (the iterates map by a^T), so the iteration runs on the smaller
 * Gram matrix, formed once in double from the explicit matrix. */
double mx_spectral_norm(const float *a, size_t rows, size_t cols, size_t max_iter, double tol, uint64_t seed,
                        size_t *iters)
{
    if (iters) *iters = 0;
    if (!rows || !cols) return 0.0;
    int transpose = cols < rows;  /* 1: Gram matrix a^T a (cols x cols); 0: a a^T (rows x rows) */
    size_t m = transpose ? cols : rows, len = transpose ? rows : cols;
    double *g = alloc3(m, m, 1, sizeof *g), *v = malloc(m * sizeof *v), *w = malloc(m * sizeof *w);
    if (!g || !v || !w) {
        free(g);
        free(v);
        free(w);
        return NAN;
    }
    for (size_t p = 0; p < m; p++)
        for (size_t q = p; q < m; q++) {
            double s = 0;
            for (size_t k = 0; k < len; k++) {
                double ap = transpose ? a[k * cols + p] : a[p * cols + k];
                double aq = transpose ? a[k * cols + q] : a[q * cols + k];
                s += ap * aq;
            }
            g[p * m + q] = g[q * m + p] = s;
        }
    mx_rng rng;
    mx_rng_init(&rng, seed, MX_STREAM_ANALYSIS);
    double norm = 0;
    for (size_t p = 0; p < m; p++) {
        v[p] = mx_rng_normal(&rng);
        norm += v[p] * v[p];
    }
    norm = sqrt(norm);
    for (size_t p = 0; p < m; p++) v[p] /= norm;
    double est = 0, prev = 0;
    size_t it = 0;
    while (it < max_iter) {
        it++;
        /* w = G v; the Rayleigh quotient v^T G v (||v|| = 1) estimates ||a||_2^2 from below. */
        est = 0;
        norm = 0;
        for (size_t p = 0; p < m; p++) {
            double s = 0;
            for (size_t q = 0; q < m; q++) s += g[p * m + q] * v[q];
            w[p] = s;
            est += s * v[p];
            norm += s * s;
        }
        if (norm == 0) {
            est = 0;
            break;
        }
        norm = sqrt(norm);
        for (size_t p = 0; p < m; p++) v[p] = w[p] / norm;
        if (it > 1 && fabs(est - prev) <= tol * est) break;
        prev = est;
    }
    free(g);
    free(v);
    free(w);
    if (iters) *iters = it;
    return sqrt(est > 0 ? est : 0);
}

/* Softmax (double) of one row of logits, and H = diag(S) - S S^T (C x C). */
static void softmax_and_h(const float *h, size_t C, double *s, double *hm)
{
    double mx = h[0], z = 0;
    for (size_t c = 1; c < C; c++)
        if (h[c] > mx) mx = h[c];
    for (size_t c = 0; c < C; c++) z += (s[c] = exp((double)h[c] - mx));
    for (size_t c = 0; c < C; c++) s[c] /= z;
    if (!hm) return;
    for (size_t a = 0; a < C; a++)
        for (size_t b = 0; b < C; b++) hm[a * C + b] = (a == b ? s[a] : 0.0) - s[a] * s[b];
}

typedef struct {
    size_t C, d, b;
    float *jac, *logits;     /* at x: b x C x d, b x C */
    float *xt, *jt, *ht;     /* x~, the Jacobian and logits there */
    float *js;               /* J~ Sigma_xx, b x C x d */
    double *s, *hm, *ju, *row;
} workspace;

static void workspace_free(workspace *w)
{
    free(w->jac);
    free(w->logits);
    free(w->xt);
    free(w->jt);
    free(w->ht);
    free(w->js);
    free(w->s);
    free(w->hm);
    free(w->ju);
    free(w->row);
}

static mx_status workspace_alloc(workspace *w, size_t C, size_t d, size_t b, int at_xt, int gamma_part)
{
    memset(w, 0, sizeof *w);
    w->C = C, w->d = d, w->b = b;
    w->jac = alloc3(b, C, d, sizeof(float));
    w->logits = alloc3(b, C, 1, sizeof(float));
    w->s = alloc3(C, 1, 1, sizeof(double));
    w->hm = alloc3(C, C, 1, sizeof(double));
    w->ju = alloc3(C, 1, 1, sizeof(double));
    w->row = alloc3(d, 1, 1, sizeof(double));
    int ok = w->jac && w->logits && w->s && w->hm && w->ju && w->row;
    if (at_xt) {
        w->xt = alloc3(b, d, 1, sizeof(float));
        w->jt = alloc3(b, C, d, sizeof(float));
        w->ht = alloc3(b, C, 1, sizeof(float));
        ok = ok && w->xt && w->jt && w->ht;
    }
    if (gamma_part) {
        w->js = alloc3(b, C, d, sizeof(float));
        ok = ok && w->js;
    }
    if (!ok) {
        workspace_free(w);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for the analysis (batch of %zu)", b);
    }
    return MX_OK;
}

size_t mx_analysis_bytes_per_sample(size_t num_classes, size_t input_size)
{
    const size_t C = num_classes, d = input_size;
    if (C && d > SIZE_MAX / sizeof(float) / 8 / C) return SIZE_MAX;
    /* jac, jt, js (C d each); xt and mx_input_jacobian's dx (d each); logits, ht, dlogits (C each). */
    return (3 * C * d + 2 * d + 3 * C) * sizeof(float);
}

/* Smoothness, confidence and entropy of one batch of Jacobians and logits. */
/* One sample's estimates, kept per sample and summed in sample order at the
 * end, so that samples computed by several ranks (each its shard, gathered
 * on rank 0) add up to the very sums one process makes. All doubles: the
 * records travel as raw words. */
typedef struct {
    double fro, sfro, lip, conf, ent, iters;
} smooth_sample;

typedef struct {
    smooth_sample plain, rescaled;
    double jac_s, jac_g, cross_s, cross_g;  /* the Taylor terms' sigma^2 and gamma^2 parts */
} sample_record;

/* Smoothness, confidence and entropy of one batch of Jacobians and logits,
 * into the batch's records (out[i] for sample i of the batch). */
static void measure_smoothness(workspace *w, const float *jac, const float *logits, const mx_analysis_config *cfg,
                               size_t max_iter, double tol, size_t count, sample_record *rec, int rescaled)
{
    const size_t C = w->C, d = w->d;
    for (size_t i = 0; i < count; i++) {
        const float *J = jac + i * C * d;
        double fro = 0;
        for (size_t t = 0; t < C * d; t++) fro += (double)J[t] * J[t];
        fro = sqrt(fro);
        softmax_and_h(logits + i * C, C, w->s, w->hm);
        /* ||H J||_F: row a of H J is sum_b H[a][b] J[b, :]. */
        double sfro = 0;
        for (size_t a = 0; a < C; a++) {
            for (size_t k = 0; k < d; k++) w->row[k] = 0;
            for (size_t b = 0; b < C; b++) {
                double hab = w->hm[a * C + b];
                const float *jb = J + b * d;
                for (size_t k = 0; k < d; k++) w->row[k] += hab * jb[k];
            }
            for (size_t k = 0; k < d; k++) sfro += w->row[k] * w->row[k];
        }
        sfro = sqrt(sfro);
        size_t iters;
        double lip = mx_spectral_norm(J, C, d, max_iter, tol, cfg->seed, &iters);
        double conf = 0, ent = 0;
        for (size_t c = 0; c < C; c++) {
            if (w->s[c] > conf) conf = w->s[c];
            if (w->s[c] > 0) ent -= w->s[c] * log(w->s[c]);
        }
        smooth_sample *out = rescaled ? &rec[i].rescaled : &rec[i].plain;
        *out = (smooth_sample){fro, sfro, lip, conf, ent, (double)iters};
    }
}

/* The sums and maxima over samples, in sample order. */
static void smoothness_add(mx_smoothness *out, const smooth_sample *r)
{
    out->jacobian_fro_mean += r->fro;
    out->softmax_jacobian_fro_mean += r->sfro;
    out->lipschitz_mean += r->lip;
    out->confidence_mean += r->conf;
    out->entropy_mean += r->ent;
    if (r->fro > out->jacobian_fro_max) out->jacobian_fro_max = r->fro;
    if (r->sfro > out->softmax_jacobian_fro_max) out->softmax_jacobian_fro_max = r->sfro;
    if (r->lip > out->lipschitz_max) out->lipschitz_max = r->lip;
    if ((size_t)r->iters > out->power_iters_max) out->power_iters_max = (size_t)r->iters;
}

static void smoothness_finish(mx_smoothness *s, double n)
{
    s->jacobian_fro_mean /= n;
    s->softmax_jacobian_fro_mean /= n;
    s->lipschitz_mean /= n;
    s->confidence_mean /= n;
    s->entropy_mean /= n;
}

/* The Taylor terms of one batch, with w->jt, w->ht (and w->js) filled at x~. */
static void measure_terms(workspace *w, const mx_analysis_config *cfg, const float *x, const int32_t *labels,
                          size_t count, sample_record *rec)
{
    const size_t C = w->C, d = w->d;
    const double s2 = cfg->sigma2, g2 = cfg->gamma2;
    for (size_t i = 0; i < count; i++) {
        const float *J = w->jt + i * C * d, *xi = x + i * d;
        softmax_and_h(w->ht + i * C, C, w->s, w->hm);
        /* J u with u = x - x_bar. */
        for (size_t a = 0; a < C; a++) {
            double s = 0;
            const float *ja = J + a * d;
            for (size_t k = 0; k < d; k++) s += (double)ja[k] * ((double)xi[k] - cfg->x_bar[k]);
            w->ju[a] = s;
        }
        double quad = 0, vju = 0;
        for (size_t a = 0; a < C; a++) {
            for (size_t b = 0; b < C; b++) quad += w->hm[a * C + b] * w->ju[a] * w->ju[b];
            double v = (labels[i] == (int32_t)a ? 1.0 : 0.0) - cfg->y_bar[a];
            vju += v * w->ju[a];
        }
        double jac_s = 0.5 * s2 * quad, cross_s = -s2 * vju, jac_g = 0, cross_g = 0;
        if (g2 != 0) {
            /* <H, J Sigma_xx J^T> with J Sigma_xx precomputed in w->js. */
            const float *js = w->js + i * C * d;
            double trace = 0;
            for (size_t a = 0; a < C; a++)
                for (size_t b = 0; b < C; b++) {
                    double m = 0;
                    const float *ra = js + a * d, *rb = J + b * d;
                    for (size_t k = 0; k < d; k++) m += (double)ra[k] * rb[k];
                    trace += w->hm[a * C + b] * m;
                }
            double inner = 0;
            for (size_t t = 0; t < C * d; t++) inner += (double)cfg->moments->sigma_yx[t] * J[t];
            jac_g = 0.5 * g2 * trace;
            cross_g = -g2 * inner;
        }
        rec[i].jac_s = jac_s, rec[i].jac_g = jac_g, rec[i].cross_s = cross_s, rec[i].cross_g = cross_g;
    }
}

mx_status mx_analyze(mx_model *model, const float *x, const int32_t *labels, size_t n, const mx_analysis_config *cfg,
                     mx_analysis *out)
{
    memset(out, 0, sizeof *out);
    const size_t C = mx_model_get_spec(model)->num_classes, d = mx_model_input_size(model);
    if (n == 0) return mx_error_set(MX_ERR_ARG, "analysis: no samples");
    if (!(cfg->sigma2 >= 0) || !(cfg->gamma2 >= 0) || !(cfg->theta_bar > 0 && cfg->theta_bar <= 1))
        return mx_error_set(MX_ERR_ARG, "analysis: bad theta statistics (theta_bar %g, sigma^2 %g, gamma^2 %g)",
                            cfg->theta_bar, cfg->sigma2, cfg->gamma2);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= C)
            return mx_error_set(MX_ERR_ARG, "analysis: label %d of sample %zu is out of range", labels[i], i);
    const int terms = cfg->sigma2 != 0 || cfg->gamma2 != 0, gamma_part = cfg->gamma2 != 0;
    const int shrink = cfg->theta_bar != 1.0, at_xt = terms || shrink;
    if (at_xt && (!cfg->x_bar || !cfg->y_bar))
        return mx_error_set(MX_ERR_ARG, "analysis: the rescaled prediction and the Taylor terms need x_bar and y_bar");
    if (gamma_part && (!cfg->moments || cfg->moments->input_size != d || cfg->moments->num_classes != C))
        return mx_error_set(MX_ERR_ARG, "analysis: the Taylor terms need training moments for %zu inputs and %zu classes",
                            d, C);
    size_t batch = mx_model_max_batch(model);
    if (cfg->batch && cfg->batch < batch) batch = cfg->batch;
    if (batch > n) batch = n;
    const size_t max_iter = cfg->power_max_iter ? cfg->power_max_iter : 1000;
    const double tol = cfg->power_tol > 0 ? cfg->power_tol : 1e-12;

    /* This rank's shard of whole batches (all of them in one process), its
     * records gathered in sample order on rank 0, which sums them. */
    size_t start, count_here;
    mx_eval_shard(n, batch, mx_dist_rank(), mx_dist_size(), &start, &count_here);
    const int root = mx_dist_is_root();
    sample_record *rec = calloc(count_here + 1, sizeof *rec);
    sample_record *all = root ? calloc(n, sizeof *all) : NULL;
    workspace w;
    mx_status st = rec && (all || !root) ? workspace_alloc(&w, C, d, batch, at_xt, gamma_part)
                                         : mx_error_set(MX_ERR_NOMEM, "out of memory for the analysis of %zu samples", n);
    int have_workspace = st == MX_OK;
    for (size_t i0 = start; i0 < start + count_here && st == MX_OK; i0 += batch) {
        size_t count = start + count_here - i0 < batch ? start + count_here - i0 : batch;
        const float *xb = x + i0 * d;
        sample_record *rb = rec + (i0 - start);
        st = mx_input_jacobian(model, xb, count, w.jac, w.logits);
        if (st != MX_OK) break;
        measure_smoothness(&w, w.jac, w.logits, cfg, max_iter, tol, count, rb, 0);
        if (!at_xt) continue;
        const float theta = (float)cfg->theta_bar;
        for (size_t i = 0; i < count; i++)
            for (size_t k = 0; k < d; k++) w.xt[i * d + k] = cfg->x_bar[k] + theta * (xb[i * d + k] - cfg->x_bar[k]);
        st = mx_input_jacobian(model, w.xt, count, w.jt, w.ht);
        if (st != MX_OK) break;
        if (terms) {
            if (gamma_part) /* every sample's J~ Sigma_xx in one product ((count C) x d times d x d) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(count * C), (int)d, (int)d, 1.0f, w.jt,
                            (int)d, cfg->moments->sigma_xx, (int)d, 0.0f, w.js, (int)d);
            measure_terms(&w, cfg, xb, labels + i0, count, rb);
        }
        /* The rescaled prediction: logits y_bar + (f(x~) - y_bar) / theta_bar, Jacobian J(x~).
         * (After measure_terms, which reads the unrescaled f(x~).) */
        for (size_t i = 0; i < count; i++)
            for (size_t c = 0; c < C; c++)
                w.ht[i * C + c] = cfg->y_bar[c] + (w.ht[i * C + c] - cfg->y_bar[c]) / theta;
        measure_smoothness(&w, w.jt, w.ht, cfg, max_iter, tol, count, rb, 1);
    }
    if (have_workspace) workspace_free(&w);
    st = mx_eval_agree(st);
    if (st == MX_OK) st = mx_eval_gather_records(rec, count_here, sizeof *rec, all, n);
    for (size_t i = 0; st == MX_OK && root && i < n; i++) {
        smoothness_add(&out->plain, &all[i].plain);
        if (at_xt) smoothness_add(&out->rescaled, &all[i].rescaled);
        out->jacobian_term_sigma2 += all[i].jac_s;
        out->jacobian_term_gamma2 += all[i].jac_g;
        out->cross_term_sigma2 += all[i].cross_s;
        out->cross_term_gamma2 += all[i].cross_g;
    }
    free(rec);
    free(all);
    if (st == MX_OK) st = mx_dist_broadcast(out, sizeof *out);  /* every rank gets rank 0's sums */
    if (st != MX_OK) return st;
    const double dn = (double)n;
    out->samples = n;
    smoothness_finish(&out->plain, dn);
    if (at_xt) smoothness_finish(&out->rescaled, dn);
    else out->rescaled = out->plain;
    out->jacobian_term_sigma2 /= dn;
    out->jacobian_term_gamma2 /= dn;
    out->cross_term_sigma2 /= dn;
    out->cross_term_gamma2 /= dn;
    out->jacobian_term = out->jacobian_term_sigma2 + out->jacobian_term_gamma2;
    out->cross_term = out->cross_term_sigma2 + out->cross_term_gamma2;
    out->theta_bar = cfg->theta_bar;
    out->sigma2 = cfg->sigma2;
    out->gamma2 = cfg->gamma2;
    if (!isfinite(out->plain.jacobian_fro_mean) || !isfinite(out->plain.lipschitz_mean) ||
        !isfinite(out->plain.entropy_mean) || !isfinite(out->rescaled.jacobian_fro_mean) ||
        !isfinite(out->rescaled.lipschitz_mean) || !isfinite(out->jacobian_term) || !isfinite(out->cross_term))
        return mx_error_set(MX_ERR_NUMERIC, "analysis: a non-finite estimate (NaN or infinite weights?)");
    return MX_OK;
}

/* The regularisation analysis (mixreg/analysis.h) against closed forms:
 * a linear model's Jacobian is its weight matrix, power iteration finds the
 * largest singular value, the Taylor terms of a tiny linear case match a hand
 * computation, an MLP's Jacobian matches finite differences, and the training
 * moments match a direct computation. */
#include <string.h>

#include "check.h"
#include "mixreg/analysis.h"
#include "mixreg/rescale.h"
#include "mixreg/rng.h"

/* A logistic regression f(x) = W x + b on inputs of d = 1 x 1 x d, C classes. */
static mx_model *make_logreg(size_t d, size_t C, const float *W, const float *b, size_t max_batch)
{
    mx_model_spec spec = {.arch = "logreg", .in_channels = 1, .in_height = 1, .in_width = d, .num_classes = C};
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, max_batch, &m));
    if (!m) return NULL;
    const mx_param_info *t;
    CHECK(mx_model_param_tensors(m, &t) == 2);
    CHECK(!strcmp(t[0].name, "1.weight") && !strcmp(t[1].name, "1.bias"));
    memcpy(mx_model_params(m) + t[0].offset, W, C * d * sizeof(float));
    memcpy(mx_model_params(m) + t[1].offset, b, C * sizeof(float));
    return m;
}

/* ||H(h) W||_F for logits h, computed from the definitions in double. */
static double softmax_jacobian_fro(const float *h, const float *W, size_t C, size_t d)
{
    double S[8], z = 0, fro = 0;
    for (size_t c = 0; c < C; c++) z += (S[c] = exp(h[c]));
    for (size_t c = 0; c < C; c++) S[c] /= z;
    for (size_t a = 0; a < C; a++)
        for (size_t k = 0; k < d; k++) {
            /* (H W)[a][k] = S_a W[a][k] - S_a sum_b S_b W[b][k] */
            double v = S[a] * W[a * d + k];
            for (size_t b = 0; b < C; b++) v -= S[a] * S[b] * W[b * d + k];
            fro += v * v;
        }
    return sqrt(fro);
}

static void test_logreg_jacobian_is_w(void)
{
    /* W is 3 x 2: W^T W = [[10, -1], [-1, 9]], eigenvalues (19 +- sqrt(5)) / 2, so
     * ||W||_2 = sqrt((19 + sqrt 5) / 2) and ||W||_F = sqrt(19). */
    const float W[6] = {1, 2, 3, -1, 0, 2}, b[3] = {0.5f, -1, 0.2f};
    const size_t n = 5;
    mx_model *m = make_logreg(2, 3, W, b, 4);  /* max batch 4 < n: two batches */
    if (!m) return;
    float x[10] = {0, 0, 1, -1, 0.5f, 2, -3, 1, 0.25f, 0.75f};
    int32_t labels[5] = {0, 1, 2, 1, 0};

    float jac[4 * 3 * 2], logits[4 * 3];
    CHECK_OK(mx_input_jacobian(m, x, 4, jac, logits));
    int exact = 1;
    for (size_t i = 0; i < 4; i++)
        for (size_t t = 0; t < 6; t++) exact &= jac[i * 6 + t] == W[t];
    CHECK(exact);
    CHECK_NEAR(logits[3 * 1 + 0], 1 * 1 + 2 * -1 + 0.5, 1e-6);  /* sample 1, class 0 */
    CHECK(mx_input_jacobian(m, x, 5, jac, logits) == MX_ERR_ARG);  /* above the max batch */

    mx_analysis_config cfg = {.theta_bar = 1, .seed = 7};
    mx_analysis r;
    CHECK_OK(mx_analyze(m, x, labels, n, &cfg, &r));
    const double fro = sqrt(19.0), spec = sqrt((19 + sqrt(5.0)) / 2);
    CHECK(r.samples == n);
    CHECK_NEAR(r.plain.jacobian_fro_mean, fro, 1e-6);
    CHECK_NEAR(r.plain.jacobian_fro_max, fro, 1e-6);
    CHECK_NEAR(r.plain.lipschitz_mean, spec, 1e-6);
    CHECK_NEAR(r.plain.lipschitz_max, spec, 1e-6);
    CHECK(r.plain.power_iters_max > 1 && r.plain.power_iters_max < 1000);
    /* ERM: no perturbation, both terms exactly 0. */
    CHECK(r.jacobian_term == 0 && r.cross_term == 0);
    CHECK(r.sigma2 == 0 && r.gamma2 == 0 && r.theta_bar == 1);

    /* Softmax Jacobian, confidence and entropy from the definitions. */
    double sfro_sum = 0, sfro_max = 0, conf_sum = 0, ent_sum = 0;
    for (size_t i = 0; i < n; i++) {
        float h[3];
        double S[3], z = 0, conf = 0, ent = 0;
        for (size_t c = 0; c < 3; c++) h[c] = W[c * 2] * x[2 * i] + W[c * 2 + 1] * x[2 * i + 1] + b[c];
        double s = softmax_jacobian_fro(h, W, 3, 2);
        sfro_sum += s;
        if (s > sfro_max) sfro_max = s;
        for (size_t c = 0; c < 3; c++) z += (S[c] = exp(h[c]));
        for (size_t c = 0; c < 3; c++) {
            S[c] /= z;
            if (S[c] > conf) conf = S[c];
            ent -= S[c] * log(S[c]);
        }
        conf_sum += conf;
        ent_sum += ent;
    }
    CHECK_NEAR(r.plain.softmax_jacobian_fro_mean, sfro_sum / n, 1e-6);
    CHECK_NEAR(r.plain.softmax_jacobian_fro_max, sfro_max, 1e-6);
    CHECK_NEAR(r.plain.confidence_mean, conf_sum / n, 1e-6);
    CHECK_NEAR(r.plain.entropy_mean, ent_sum / n, 1e-6);
    CHECK(r.plain.softmax_jacobian_fro_max < r.plain.jacobian_fro_max);  /* ||H|| < 1 */

    /* ERM statistics: the rescaled prediction is the plain one. */
    CHECK(memcmp(&r.rescaled, &r.plain, sizeof r.plain) == 0);

    /* Same answers with a batch of 1 (the batching does not matter). */
    mx_analysis r1;
    cfg.batch = 1;
    CHECK_OK(mx_analyze(m, x, labels, n, &cfg, &r1));
    CHECK_NEAR(r1.plain.softmax_jacobian_fro_mean, r.plain.softmax_jacobian_fro_mean, 1e-9);
    CHECK_NEAR(r1.plain.entropy_mean, r.plain.entropy_mean, 1e-9);

    /* The rescaled prediction of a linear model: its Jacobian is still W, its
     * logits those of mx_predict_logits (mixreg/rescale.h). */
    const float x_bar[2] = {0.5f, -0.25f}, y_bar[3] = {0.2f, 0.3f, 0.5f};
    mx_analysis_config rcfg = {.theta_bar = 0.75, .x_bar = x_bar, .y_bar = y_bar, .seed = 7};
    mx_analysis rr;
    CHECK_OK(mx_analyze(m, x, labels, n, &rcfg, &rr));
    CHECK_NEAR(rr.rescaled.jacobian_fro_mean, fro, 1e-6);
    CHECK_NEAR(rr.rescaled.lipschitz_max, spec, 1e-6);
    CHECK(memcmp(&rr.plain, &r.plain, sizeof r.plain) == 0);
    CHECK(rr.jacobian_term == 0 && rr.cross_term == 0);
    {
        mx_rescale_stats rs;
        CHECK_OK(mx_rescale_stats_alloc(&rs, 2, 3));
        rs.theta_bar = 0.75;
        memcpy(rs.x_bar, x_bar, sizeof x_bar);
        memcpy(rs.y_bar, y_bar, sizeof y_bar);
        float scratch[4 * 2], hl[4 * 3];
        double conf_r = 0, sfro_r = 0;
        for (size_t i0 = 0; i0 < n; i0 += 4) {
            size_t cnt = n - i0 < 4 ? n - i0 : 4;
            mx_predict_logits(m, &rs, x + 2 * i0, cnt, scratch, hl);
            for (size_t i = 0; i < cnt; i++) {
                double z = 0, mx = 0;
                for (size_t c = 0; c < 3; c++) z += exp(hl[i * 3 + c]);
                for (size_t c = 0; c < 3; c++) mx = fmax(mx, exp(hl[i * 3 + c]) / z);
                conf_r += mx;
                sfro_r += softmax_jacobian_fro(hl + i * 3, W, 3, 2);
            }
        }
        CHECK_NEAR(rr.rescaled.confidence_mean, conf_r / n, 1e-6);
        CHECK_NEAR(rr.rescaled.softmax_jacobian_fro_mean, sfro_r / n, 1e-6);
        CHECK(fabs(rr.rescaled.confidence_mean - rr.plain.confidence_mean) > 1e-3);
        mx_rescale_stats_free(&rs);
    }
    rcfg.y_bar = NULL;
    CHECK(mx_analyze(m, x, labels, n, &rcfg, &rr) == MX_ERR_ARG);

    /* Bad input. */
    int32_t bad[5] = {0, 1, 3, 1, 0};
    CHECK(mx_analyze(m, x, bad, n, &cfg, &r1) == MX_ERR_ARG);
    CHECK(mx_analyze(m, x, labels, 0, &cfg, &r1) == MX_ERR_ARG);
    cfg.sigma2 = 0.1;  /* terms asked for without x_bar, y_bar, moments */
    CHECK(mx_analyze(m, x, labels, n, &cfg, &r1) == MX_ERR_ARG);
    mx_model_free(m);

    /* A 2 x 2 W: ||W||_2^2 = (F + sqrt(F^2 - 4 det^2)) / 2 with F = ||W||_F^2.
     * W = [[2, 1], [-1, 3]]: F = 15, det = 7, ||W||_2^2 = (15 + sqrt(29)) / 2. */
    const float W2[4] = {2, 1, -1, 3}, b2[2] = {0, 0};
    m = make_logreg(2, 2, W2, b2, 8);
    if (!m) return;
    CHECK(mx_analyze(m, x, labels, 2, &cfg, &r1) == MX_ERR_ARG);  /* still no statistics */
    cfg.sigma2 = 0;
    int32_t lab2[2] = {0, 1};
    CHECK_OK(mx_analyze(m, x, lab2, 2, &cfg, &r1));
    CHECK_NEAR(r1.plain.lipschitz_mean, sqrt((15 + sqrt(29.0)) / 2), 1e-6);
    CHECK_NEAR(r1.plain.jacobian_fro_mean, sqrt(15.0), 1e-6);
    mx_model_free(m);
}

static void test_power_iteration(void)
{
    /* A diagonal J (4 x 6): singular values |diagonal|, the largest 3, with a
     * close second (2.9) so convergence takes many iterations. */
    float J[4 * 6] = {0};
    const float diag[4] = {1, -2.9f, 3, 0.5f};
    for (size_t i = 0; i < 4; i++) J[i * 6 + i + 1] = diag[i];
    size_t iters;
    CHECK_NEAR(mx_spectral_norm(J, 4, 6, 1000, 1e-12, 1, &iters), 3.0, 1e-6);
    CHECK(iters > 20 && iters < 1000);
    /* One iteration is only a lower bound: the Rayleigh quotient of a random vector. */
    double one = mx_spectral_norm(J, 4, 6, 1, 1e-12, 1, &iters);
    CHECK(iters == 1 && one < 2.999 && one > 0.5);
    /* The estimate never exceeds the truth and improves with iterations. */
    double prev = 0;
    int monotone = 1;
    for (size_t k = 1; k <= 64; k *= 2) {
        double e = mx_spectral_norm(J, 4, 6, k, 0, 1, NULL);
        monotone &= e >= prev - 1e-12 && e <= 3.0 + 1e-9;
        prev = e;
    }
    CHECK(monotone);
    /* The transposed (6 x 4) matrix has the same singular values. */
    float Jt[6 * 4];
    for (size_t i = 0; i < 4; i++)
        for (size_t k = 0; k < 6; k++) Jt[k * 4 + i] = J[i * 6 + k];
    CHECK_NEAR(mx_spectral_norm(Jt, 6, 4, 1000, 1e-12, 2, NULL), 3.0, 1e-6);
    /* A zero matrix has norm 0; a 1 x 1 matrix its absolute value. */
    float zero[6] = {0};
    CHECK(mx_spectral_norm(zero, 2, 3, 100, 1e-12, 1, NULL) == 0.0);
    float single = -4.5f;
    CHECK_NEAR(mx_spectral_norm(&single, 1, 1, 100, 1e-12, 1, NULL), 4.5, 1e-12);
    /* Equal top singular values (a repeated eigenvalue) converge at once. */
    float eq[4] = {2, 0, 0, -2};
    CHECK_NEAR(mx_spectral_norm(eq, 2, 2, 100, 1e-12, 3, NULL), 2.0, 1e-12);
}

/* The Taylor terms on a tiny linear case, by hand.
 *
 * f(x) = W x with W = [[1, 2], [0, -1]] (C = d = 2, b = 0), so J = W everywhere.
 * Statistics: theta_bar = 3/4, sigma^2 = 1/48, gamma^2 = 1/12 (alpha = 1),
 * x_bar = (1, 0), y_bar = (1/2, 1/2), Sigma_xx = [[2, 1/2], [1/2, 1]],
 * Sigma_yx = [[0.1, 0.2], [-0.1, -0.2]].
 * Sample x = (2, 1), label 0: u = x - x_bar = (1, 1), v = y - y_bar = (1/2, -1/2).
 * x~ = x_bar + 3/4 u = (1.75, 0.75), h = W x~ = (3.25, -0.75), h_0 - h_1 = 4,
 * so S = (s, 1 - s) with s = 1 / (1 + e^-4) and H = s (1 - s) [[1, -1], [-1, 1]];
 * then J^T H J = s (1 - s) w w^T with w = W_0 - W_1 = (1, 3).
 *   Jacobian term = 1/2 s(1-s) [sigma^2 (w.u)^2 + gamma^2 w^T Sigma_xx w]
 *                 = 1/2 s(1-s) [16/48 + 14/12] = 3/4 s(1-s);
 *     sigma^2 part s(1-s)/6, gamma^2 part 7 s(1-s)/12.
 *   Cross term = -sigma^2 v^T W u - gamma^2 <Sigma_yx, W>
 *              = -(1/48) (1/2 * 3 - 1/2 * -1) - (1/12) (0.1 + 0.4 + 0 + 0.2)
 *              = -1/24 - 7/120 = -1/10.
 * The same x with label 1 flips v, so its cross term's sigma^2 part is +1/24.
 * Evaluating at x instead of x~ would give h_0 - h_1 = 5: a different s. */
static void test_taylor_terms_linear(void)
{
    const float W[4] = {1, 2, 0, -1}, b[2] = {0, 0};
    mx_model *m = make_logreg(2, 2, W, b, 4);
    if (!m) return;
    mx_data_moments mo;
    CHECK_OK(mx_data_moments_alloc(&mo, 2, 2));
    const float sxx[4] = {2, 0.5f, 0.5f, 1}, syx[4] = {0.1f, 0.2f, -0.1f, -0.2f};
    memcpy(mo.sigma_xx, sxx, sizeof sxx);
    memcpy(mo.sigma_yx, syx, sizeof syx);
    const float x_bar[2] = {1, 0}, y_bar[2] = {0.5f, 0.5f};
    mx_analysis_config cfg = {.theta_bar = 0.75, .sigma2 = 1.0 / 48, .gamma2 = 1.0 / 12, .x_bar = x_bar,
                              .y_bar = y_bar, .moments = &mo, .seed = 1};
    const double s = 1 / (1 + exp(-4.0)), q = s * (1 - s);
    float x[4] = {2, 1, 2, 1};
    int32_t labels[2] = {0, 1};
    mx_analysis r;
    CHECK_OK(mx_analyze(m, x, labels, 1, &cfg, &r));
    CHECK_NEAR(r.jacobian_term, 0.75 * q, 1e-7);
    CHECK_NEAR(r.jacobian_term_sigma2, q / 6, 1e-7);
    CHECK_NEAR(r.jacobian_term_gamma2, 7 * q / 12, 1e-7);
    CHECK_NEAR(r.cross_term, -0.1, 1e-7);
    CHECK_NEAR(r.cross_term_sigma2, -1.0 / 24, 1e-8);
    CHECK_NEAR(r.cross_term_gamma2, -7.0 / 120, 1e-7);
    CHECK(r.theta_bar == 0.75 && r.sigma2 == 1.0 / 48 && r.gamma2 == 1.0 / 12);
    /* Both samples: the sigma^2 parts of the cross term cancel. */
    CHECK_OK(mx_analyze(m, x, labels, 2, &cfg, &r));
    CHECK_NEAR(r.jacobian_term, 0.75 * q, 1e-7);
    CHECK_NEAR(r.cross_term_sigma2, 0, 1e-8);
    CHECK_NEAR(r.cross_term, -7.0 / 120, 1e-7);
    /* Only sigma^2 (no moments needed): the gamma^2 parts vanish. */
    cfg.gamma2 = 0;
    cfg.moments = NULL;
    CHECK_OK(mx_analyze(m, x, labels, 1, &cfg, &r));
    CHECK_NEAR(r.jacobian_term, q / 6, 1e-7);
    CHECK_NEAR(r.cross_term, -1.0 / 24, 1e-8);
    CHECK(r.jacobian_term_gamma2 == 0 && r.cross_term_gamma2 == 0);
    /* Moments of the wrong shape are refused. */
    mx_data_moments small;
    CHECK_OK(mx_data_moments_alloc(&small, 3, 2));
    cfg.gamma2 = 1.0 / 12;
    cfg.moments = &small;
    CHECK(mx_analyze(m, x, labels, 1, &cfg, &r) == MX_ERR_ARG);
    mx_data_moments_free(&small);
    mx_data_moments_free(&mo);
    mx_model_free(m);
}

/* An MLP: the Jacobian rows against central finite differences of the forward
 * pass, and the Taylor terms against the formulas with explicit d x d matrices. */
static void test_mlp_jacobian(void)
{
    enum { D = 6, C = 4, N = 3 };
    mx_model_spec spec = {.arch = "mlp", .in_channels = 1, .in_height = 2, .in_width = 3, .num_classes = C,
                          .num_hidden = 2, .hidden = {8, 5}};
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, 8, &m));
    if (!m) return;
    mx_model_init_params(m, 3);
    /* Larger weights than the default initialisation, for Jacobian entries of order 1. */
    float *params = mx_model_params(m);
    for (size_t t = 0; t < mx_model_param_count(m); t++) params[t] *= 3.0f;
    mx_rng rng;
    mx_rng_init(&rng, 11, 99);
    float x[N * D], jac[N * C * D], logits[N * C];
    for (size_t t = 0; t < N * D; t++) x[t] = (float)mx_rng_normal(&rng);
    CHECK_OK(mx_input_jacobian(m, x, N, jac, logits));

    const float eps = 1e-3f;
    double worst = 0, scale = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < D; k++) {
            float xp[D], xm[D], fp[C], fm[C];
            memcpy(xp, x + i * D, sizeof xp);
            memcpy(xm, x + i * D, sizeof xm);
            xp[k] += eps;
            xm[k] -= eps;
            memcpy(fp, mx_model_forward(m, xp, 1), sizeof fp);
            memcpy(fm, mx_model_forward(m, xm, 1), sizeof fm);
            for (size_t c = 0; c < C; c++) {
                double fd = ((double)fp[c] - fm[c]) / (2.0 * eps);
                double an = jac[(i * C + c) * D + k];
                if (fabs(fd - an) > worst) worst = fabs(fd - an);
                if (fabs(an) > scale) scale = fabs(an);
            }
        }
    printf("MLP Jacobian vs central differences: worst error %.2e (largest entry %.3f)\n", worst, scale);
    CHECK(scale > 0.05);
    CHECK(worst < 1e-3);

    /* One sample at a time gives the same Jacobian as the batch. */
    float one[C * D];
    CHECK_OK(mx_input_jacobian(m, x + 2 * D, 1, one, NULL));
    double diff = 0;
    for (size_t t = 0; t < C * D; t++) diff = fmax(diff, fabs(one[t] - jac[2 * C * D + t]));
    CHECK(diff < 1e-6);

    /* The Taylor terms with explicit E[delta delta^T] and E[eps delta^T]. */
    mx_data_moments mo;
    CHECK_OK(mx_data_moments_alloc(&mo, D, C));
    float x_bar[D], y_bar[C] = {0.1f, 0.2f, 0.3f, 0.4f};
    for (size_t k = 0; k < D; k++) x_bar[k] = (float)(0.3 * mx_rng_normal(&rng));
    {
        /* Sigma_xx = A A^T / D, positive semi-definite; Sigma_yx arbitrary with zero column sums. */
        double A[D][D];
        for (size_t p = 0; p < D; p++)
            for (size_t q = 0; q < D; q++) A[p][q] = mx_rng_normal(&rng);
        for (size_t p = 0; p < D; p++)
            for (size_t q = 0; q < D; q++) {
                double v = 0;
                for (size_t t = 0; t < D; t++) v += A[p][t] * A[q][t];
                mo.sigma_xx[p * D + q] = (float)(v / D);
            }
        for (size_t k = 0; k < D; k++) {
            double col = 0;
            for (size_t c = 0; c + 1 < C; c++) col += (mo.sigma_yx[c * D + k] = (float)(0.2 * mx_rng_normal(&rng)));
            mo.sigma_yx[(C - 1) * D + k] = (float)-col;
        }
    }
    const double theta = 0.6875, s2 = 0.01484, g2 = 0.1125;  /* alpha = 2 */
    int32_t labels[N] = {2, 0, 3};
    mx_analysis_config cfg = {.theta_bar = theta, .sigma2 = s2, .gamma2 = g2, .x_bar = x_bar, .y_bar = y_bar,
                              .moments = &mo, .batch = 2, .seed = 5};
    mx_analysis r;
    CHECK_OK(mx_analyze(m, x, labels, N, &cfg, &r));

    float xt[N * D], jt[N * C * D], ht[N * C];
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < D; k++) xt[i * D + k] = x_bar[k] + (float)theta * (x[i * D + k] - x_bar[k]);
    CHECK_OK(mx_input_jacobian(m, xt, N, jt, ht));
    double jac_sum = 0, cross_sum = 0;
    for (size_t i = 0; i < N; i++) {
        const float *J = jt + i * C * D;
        double S[C], z = 0, Hm[C][C], E[D][D], K[D][D], u[D], v[C];
        for (size_t c = 0; c < C; c++) z += (S[c] = exp(ht[i * C + c]));
        for (size_t c = 0; c < C; c++) S[c] /= z;
        for (size_t a = 0; a < C; a++)
            for (size_t b = 0; b < C; b++) Hm[a][b] = (a == b) * S[a] - S[a] * S[b];
        for (size_t k = 0; k < D; k++) u[k] = (double)x[i * D + k] - x_bar[k];
        for (size_t c = 0; c < C; c++) v[c] = (labels[i] == (int32_t)c) - (double)y_bar[c];
        /* E[delta delta^T] and K = J^T H J, both d x d; the term is 1/2 <E, K>. */
        double t1 = 0, t2 = 0;
        for (size_t p = 0; p < D; p++)
            for (size_t q = 0; q < D; q++) {
                E[p][q] = s2 * u[p] * u[q] + g2 * mo.sigma_xx[p * D + q];
                K[p][q] = 0;
                for (size_t a = 0; a < C; a++)
                    for (size_t b = 0; b < C; b++) K[p][q] += J[a * D + p] * Hm[a][b] * J[b * D + q];
                t1 += 0.5 * E[p][q] * K[p][q];
            }
        /* -<E[eps delta^T], J> with E[eps delta^T] = s2 v u^T + g2 Sigma_yx (C x d). */
        for (size_t c = 0; c < C; c++)
            for (size_t k = 0; k < D; k++) t2 -= (s2 * v[c] * u[k] + g2 * mo.sigma_yx[c * D + k]) * J[c * D + k];
        jac_sum += t1;
        cross_sum += t2;
    }
    CHECK(fabs(r.jacobian_term) > 1e-4 && fabs(r.cross_term) > 1e-4);  /* the check has teeth */
    CHECK_NEAR(r.jacobian_term, jac_sum / N, 1e-6 * fmax(1, fabs(jac_sum)));
    CHECK_NEAR(r.cross_term, cross_sum / N, 1e-6 * fmax(1, fabs(cross_sum)));
    CHECK(r.jacobian_term >= 0);  /* H and E[delta delta^T] are positive semi-definite */
    /* Lipschitz bounds for a C x d Jacobian of rank <= C: ||J||_F / sqrt(C) <= ||J||_2 <= ||J||_F. */
    CHECK(r.plain.lipschitz_max <= r.plain.jacobian_fro_max * (1 + 1e-9));
    CHECK(r.plain.lipschitz_mean >= r.plain.jacobian_fro_mean / sqrt((double)C) - 1e-9);
    CHECK(r.plain.lipschitz_max >= r.plain.lipschitz_mean && r.plain.lipschitz_mean > 0);
    /* Deterministic. */
    mx_analysis r2;
    CHECK_OK(mx_analyze(m, x, labels, N, &cfg, &r2));
    CHECK(memcmp(&r, &r2, sizeof r) == 0);
    mx_data_moments_free(&mo);
    mx_model_free(m);
}

static void test_moments_by_hand(void)
{
    /* Normalisation (b / 255 - 0.5) / 0.5 maps bytes 0, 255 to -1, 1.
     * x = (-1, -1), (1, 1), (1, 1), (1, -1) with labels 0, 1, 1, 0:
     * x_mean = (1/2, 0); centred (-3/2, -1), (1/2, 1), (1/2, 1), (1/2, -1);
     * Sigma_xx = [[3/4, 1/2], [1/2, 1]]; y_mean = (1/2, 1/2);
     * Sigma_yx row 1 = (1/4) sum (y_i1 - 1/2)(x_i - x_mean) = (1/4, 1/2), row 0 = -row 1;
     * Sigma_yy = [[1/4, -1/4], [-1/4, 1/4]]. */
    uint8_t pixels[8] = {0, 0, 255, 255, 255, 255, 255, 0};
    int32_t labels[4] = {0, 1, 1, 0};
    mx_dataset ds = {.n = 4, .channels = 1, .height = 1, .width = 2, .num_classes = 2, .pixels = pixels,
                     .labels = labels};
    mx_normalizer nz;
    float mean = 0.5f, std = 0.5f;
    CHECK_OK(mx_normalizer_init(&nz, 1, &mean, &std));
    mx_data_moments m;
    CHECK_OK(mx_data_moments_alloc(&m, 2, 2));
    CHECK_OK(mx_data_moments_compute(&m, &ds, &nz));
    CHECK(m.n == 4);
    CHECK_NEAR(m.x_mean[0], 0.5, 1e-7);
    CHECK_NEAR(m.x_mean[1], 0, 1e-7);
    const double sxx[4] = {0.75, 0.5, 0.5, 1}, syx[4] = {-0.25, -0.5, 0.25, 0.5}, syy[4] = {0.25, -0.25, -0.25, 0.25};
    for (size_t t = 0; t < 4; t++) {
        CHECK_NEAR(m.sigma_xx[t], sxx[t], 1e-6);
        CHECK_NEAR(m.sigma_yx[t], syx[t], 1e-6);
        CHECK_NEAR(m.sigma_yy[t], syy[t], 1e-7);
    }
    CHECK_NEAR(m.y_mean[0], 0.5, 1e-7);
    /* A label beyond the moments' classes, or the wrong input size, is refused. */
    labels[3] = 2;
    ds.num_classes = 3;
    CHECK(mx_data_moments_compute(&m, &ds, &nz) == MX_ERR_ARG);
    mx_data_moments_free(&m);
    CHECK_OK(mx_data_moments_alloc(&m, 3, 3));
    CHECK(mx_data_moments_compute(&m, &ds, &nz) == MX_ERR_ARG);
    mx_data_moments_free(&m);
}

static void test_moments_random(void)
{
    /* 2 channels of 2 x 3 (d = 12), 3 classes, 700 samples (chunks of 256 and a
     * partial one), against a direct double computation on the gathered inputs. */
    enum { N = 700, D = 12, C = 3 };
    mx_rng rng;
    mx_rng_init(&rng, 5, 42);
    uint8_t *pixels = malloc(N * D);
    int32_t labels[N];
    for (size_t t = 0; t < N * D; t++) pixels[t] = (uint8_t)mx_rng_below(&rng, 256);
    for (size_t i = 0; i < N; i++) {
        labels[i] = (int32_t)mx_rng_below(&rng, C);
        for (size_t k = 0; k < D; k++)  /* correlate inputs with the label and with each other */
            if (k % 4 == (size_t)labels[i]) pixels[i * D + k] = (uint8_t)(pixels[i * D + k] / 2 + 120);
        pixels[i * D + 5] = (uint8_t)(255 - pixels[i * D + 4] / 2);
    }
    mx_dataset ds = {.n = N, .channels = 2, .height = 2, .width = 3, .num_classes = C, .pixels = pixels,
                     .labels = labels};
    float mean[2], std[2];
    mx_dataset_channel_stats(&ds, mean, std);
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, 2, mean, std));
    float *x = malloc(N * D * sizeof(float));
    uint32_t idx[N];
    int32_t y[N];
    for (size_t i = 0; i < N; i++) idx[i] = (uint32_t)i;
    mx_dataset_gather(&ds, &nz, idx, N, x, y);
    double xm[D] = {0}, ym[C] = {0};
    for (size_t i = 0; i < N; i++) {
        ym[y[i]] += 1.0 / N;
        for (size_t k = 0; k < D; k++) xm[k] += x[i * D + k] / (double)N;
    }
    mx_data_moments m;
    CHECK_OK(mx_data_moments_alloc(&m, D, C));
    CHECK_OK(mx_data_moments_compute(&m, &ds, &nz));
    double worst_xx = 0, worst_yx = 0, worst_mean = 0;
    for (size_t p = 0; p < D; p++) {
        worst_mean = fmax(worst_mean, fabs(m.x_mean[p] - xm[p]));
        for (size_t q = 0; q < D; q++) {
            double v = 0;
            for (size_t i = 0; i < N; i++) v += (x[i * D + p] - xm[p]) * (x[i * D + q] - xm[q]);
            worst_xx = fmax(worst_xx, fabs(m.sigma_xx[p * D + q] - v / N));
        }
        for (size_t c = 0; c < C; c++) {
            double v = 0;
            for (size_t i = 0; i < N; i++) v += ((y[i] == (int32_t)c) - ym[c]) * (x[i * D + p] - xm[p]);
            worst_yx = fmax(worst_yx, fabs(m.sigma_yx[c * D + p] - v / N));
        }
    }
    printf("moments vs direct: worst |diff| mean %.1e, Sigma_xx %.1e, Sigma_yx %.1e\n", worst_mean, worst_xx, worst_yx);
    CHECK(worst_mean < 1e-5 && worst_xx < 1e-5 && worst_yx < 1e-5);
    CHECK(fabs(m.sigma_xx[4 * D + 5]) > 0.1);  /* the planted correlation is there */
    CHECK(fabs(m.sigma_yx[0 * D + 0]) > 0.05);
    mx_data_moments_free(&m);
    free(x);
    free(pixels);
}

int main(void)
{
    test_logreg_jacobian_is_w();
    test_power_iteration();
    test_taylor_terms_linear();
    test_mlp_jacobian();
    test_moments_by_hand();
    test_moments_random();
    CHECK_DONE();
}

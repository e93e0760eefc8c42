/* The regularisation analysis of method.md sections 2-3: how smooth a trained
 * model is around the test data, and the size of the two second-order terms
 * the Mixup perturbation adds to the loss.
 *
 * Per sample x (normalised, the network's input space) with logits h = f(x),
 * S = softmax(h), H(h) = diag(S) - S S^T and the input-Jacobian J = df/dx
 * (C x d, computed exactly: C vector-Jacobian products through the model,
 * one per class, each batched over the samples):
 *   - ||J||_F and ||H(h) J||_F (the Jacobian of the softmax output);
 *   - the local Lipschitz constant ||J||_2 (largest singular value), by power
 *     iteration on J^T J with the explicit J;
 *   - confidence max_c S_c and predictive entropy -sum_c S_c log S_c.
 * These four are measured at the plain input x, and for the rescaled
 * prediction (its Jacobian is J at x~, below).
 *
 * The Taylor-expansion terms are evaluated where the paper expands the loss:
 * at the shrunk input x~ = x_bar + theta_bar (x - x_bar), with h = f(x~) and
 * J = df/dx at x~ (not at x). With u = x - x_bar, v = y - y_bar (y one-hot):
 *   jacobian_term = 1/2 <E[delta delta^T], J^T H(h) J>
 *                 = sigma^2/2 (J u)^T H (J u)            (the sigma^2 part)
 *                 + gamma^2/2 <H, J Sigma_xx J^T>         (the gamma^2 part)
 *   cross_term    = -<E[eps delta^T], J>
 *                 = -sigma^2 v^T J u                      (the sigma^2 part)
 *                 - gamma^2 <Sigma_yx, J>                 (the gamma^2 part)
 * with sigma^2 = Var(theta), gamma^2 = E[(1 - theta)^2] (mixreg/theta.h),
 * x_bar, y_bar, theta_bar the model's rescale statistics and Sigma_xx (d x d),
 * Sigma_yx (C x d) the training covariances in the network's input space
 * (mx_data_moments). The Hessian-of-f term is left out, as in the paper's
 * experiments. For ERM (alpha = 0) sigma^2 = gamma^2 = 0 and both terms are 0. */
#ifndef MIXREG_ANALYSIS_H
#define MIXREG_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/model.h"

/* First and second moments of the training data, inputs normalised, labels one-hot. */
typedef struct {
    size_t input_size;     /* d */
    size_t num_classes;    /* C */
    size_t n;              /* samples they were computed from */
    float *x_mean;         /* d */
    float *y_mean;         /* C: class frequencies */
    float *sigma_xx;       /* d x d, row-major, symmetric: (1/n) sum (x_i - x_mean)(x_i - x_mean)^T */
    float *sigma_yx;       /* C x d: (1/n) sum (y_i - y_mean)(x_i - x_mean)^T */
    float *sigma_yy;       /* C x C: diag(y_mean) - y_mean y_mean^T */
} mx_data_moments;

/* Zero-filled moments for d inputs and C classes (to fill by hand, or by compute). */
mx_status mx_data_moments_alloc(mx_data_moments *m, size_t input_size, size_t num_classes);
void mx_data_moments_free(mx_data_moments *m);

/* One pass over `train`, normalised with nz. The byte products are summed
 * exactly (float products of integers below 2^24 in chunks of 256 samples,
 * added up in double) and mapped through the normaliser at the end, so the
 * result does not depend on the thread count. m must be allocated for the
 * data's input size and at least its number of classes. */
mx_status mx_data_moments_compute(mx_data_moments *m, const mx_dataset *train, const mx_normalizer *nz);

/* The input-Jacobian of the logits at n inputs x (n x d, n <= the model's
 * max batch): jac is n x C x d (jac[(i C + c) d + k] = d f_c / d x_k at sample
 * i); logits (n x C) is written when not NULL. Runs one forward and C
 * backward passes; overwrites the model's parameter gradients. */
mx_status mx_input_jacobian(mx_model *model, const float *x, size_t n, float *jac, float *logits);

/* Largest singular value of the rows x cols matrix a (row-major) by power
 * iteration on a^T a from a start vector drawn from `seed` (run on the smaller
 * of a^T a and a a^T, formed once in double: the same nonzero eigenvalues, and
 * iterating a a^T from w is iterating a^T a from a^T w). The estimate is the
 * Rayleigh quotient, a lower bound; it stops when that changes by at most tol
 * relatively, or after max_iter iterations. *iters (if not NULL) gets the
 * iterations used. 0 for a zero matrix, NaN if out of memory. */
double mx_spectral_norm(const float *a, size_t rows, size_t cols, size_t max_iter, double tol, uint64_t seed,
                        size_t *iters);

typedef struct {
    double theta_bar;            /* the shrinkage of x~ (1 = none) */
    double sigma2, gamma2;       /* Var(theta), E[(1 - theta)^2] */
    /* The model's rescale statistics; may be NULL when theta_bar = 1 and sigma2 = gamma2 = 0. */
    const float *x_bar;          /* d: the mean training input */
    const float *y_bar;          /* C: the class frequencies */
    const mx_data_moments *moments;  /* Sigma_xx, Sigma_yx; may be NULL when sigma2 = gamma2 = 0 */
    size_t batch;                /* samples per Jacobian batch (0: the model's max batch) */
    size_t power_max_iter;       /* 0: 1000 */
    double power_tol;            /* 0: 1e-12 */
    uint64_t seed;               /* for the power iteration's start vector */
} mx_analysis_config;

/* Smoothness and confidence of one predictor over the samples. */
typedef struct {
    double jacobian_fro_mean, jacobian_fro_max;                 /* ||J||_F */
    double softmax_jacobian_fro_mean, softmax_jacobian_fro_max; /* ||H(h) J||_F */
    double lipschitz_mean, lipschitz_max;                       /* ||J||_2 */
    size_t power_iters_max;      /* the most power iterations one sample needed */
    double confidence_mean, entropy_mean;
} mx_smoothness;

typedef struct {
    size_t samples;
    mx_smoothness plain;         /* f at the test inputs x */
    /* The paper's rescaled prediction h(x) = y_bar + (f(x~) - y_bar) / theta_bar
     * (mixreg/rescale.h): its Jacobian is theta_bar J(x~) / theta_bar = J(x~),
     * the Jacobian at the point the Taylor terms use. Equal to plain when
     * theta_bar = 1 (ERM). */
    mx_smoothness rescaled;
    double jacobian_term, cross_term;                       /* means over the samples */
    double jacobian_term_sigma2, jacobian_term_gamma2;      /* their two parts */
    double cross_term_sigma2, cross_term_gamma2;
    double theta_bar, sigma2, gamma2;
} mx_analysis;

/* Every estimate above over n samples x (n x d, normalised) with labels in
 * [0, C). Deterministic for a given config. */
/* Bytes mx_analyze keeps per sample of a batch besides the model's buffers
 * (the Jacobians at x and x~ and J~ Sigma_xx, C x d each, the shrunk inputs,
 * the input gradient), at most: with the model's MX_MODEL_TRAIN plan
 * (mx_model_fit_batch) it bounds a batch's memory. */
size_t mx_analysis_bytes_per_sample(size_t num_classes, size_t input_size);

mx_status mx_analyze(mx_model *model, const float *x, const int32_t *labels, size_t n, const mx_analysis_config *cfg,
                     mx_analysis *out);

#endif

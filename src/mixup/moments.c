/* Training-set moments for the regularisation analysis (mixreg/analysis.h):
 * mean input, class frequencies, Sigma_xx, Sigma_yx and Sigma_yy in the
 * network's input space. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/analysis.h"

/* Products of bytes summed over this many samples stay below 2^24
 * (255^2 * 256 = 16646400), so a float accumulation of them is exact. */
#define MOMENTS_CHUNK 256

mx_status mx_data_moments_alloc(mx_data_moments *m, size_t input_size, size_t num_classes)
{
    memset(m, 0, sizeof *m);
    if (!input_size || !num_classes) return mx_error_set(MX_ERR_ARG, "data moments need inputs and classes");
    m->input_size = input_size;
    m->num_classes = num_classes;
    m->x_mean = calloc(input_size, sizeof(float));
    m->y_mean = calloc(num_classes, sizeof(float));
    m->sigma_xx = calloc(input_size * input_size, sizeof(float));
    m->sigma_yx = calloc(num_classes * input_size, sizeof(float));
    m->sigma_yy = calloc(num_classes * num_classes, sizeof(float));
    if (!m->x_mean || !m->y_mean || !m->sigma_xx || !m->sigma_yx || !m->sigma_yy) {
        mx_data_moments_free(m);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for a %zu x %zu input covariance", input_size, input_size);
    }
    return MX_OK;
}

void mx_data_moments_free(mx_data_moments *m)
{
    free(m->x_mean);
    free(m->y_mean);
    free(m->sigma_xx);
    free(m->sigma_yx);
    free(m->sigma_yy);
    m->x_mean = m->y_mean = m->sigma_xx = m->sigma_yx = m->sigma_yy = NULL;
}

/* acc (d x d, upper triangle) += the byte Gram matrix of samples [i0, i0 + rows). */
static mx_status add_gram_chunk(const mx_dataset *ds, size_t i0, size_t rows, size_t d, uint8_t *scratch, float *chunk,
                                float *gram, double *acc)
{
    for (size_t r = 0; r < rows; r++) {
        const uint8_t *px;
        mx_status st = mx_dataset_sample(ds, i0 + r, scratch, &px);
        if (st != MX_OK) return st;
        for (size_t t = 0; t < d; t++) chunk[r * d + t] = (float)px[t];
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0f, chunk, (int)d, 0.0f, gram, (int)d);
    for (size_t k = 0; k < d; k++)
        for (size_t l = k; l < d; l++) acc[k * d + l] += gram[k * d + l];
    return MX_OK;
}

mx_status mx_data_moments_compute(mx_data_moments *m, const mx_dataset *train, const mx_normalizer *nz)
{
    size_t d = train->channels * train->height * train->width, C = m->num_classes, n = train->n;
    if (d != m->input_size || train->num_classes > C)
        return mx_error_set(MX_ERR_ARG, "data moments: the data (%zu inputs, %zu classes) does not fit (%zu, %zu)", d,
                            train->num_classes, m->input_size, C);
    if (n == 0) return mx_error_set(MX_ERR_ARG, "data moments need a non-empty training set");
    if (nz->channels != train->channels)
        return mx_error_set(MX_ERR_ARG, "data moments: the normaliser has %zu channels, the data %zu", nz->channels,
                            train->channels);
    for (size_t i = 0; i < n; i++)
        if (train->labels[i] < 0 || (size_t)train->labels[i] >= C)
            return mx_error_set(MX_ERR_ARG, "data moments: label %d of sample %zu is out of range", train->labels[i], i);

    uint64_t *byte_sum = calloc(d, sizeof *byte_sum);
    uint64_t *class_sum = calloc(C * d, sizeof *class_sum);
    uint64_t *class_count = calloc(C, sizeof *class_count);
    double *acc = calloc(d * d, sizeof *acc);
    float *chunk = malloc(MOMENTS_CHUNK * d * sizeof *chunk);
    float *gram = malloc(d * d * sizeof *gram);
    uint8_t *scratch = malloc(d);  /* a streamed sample's pixels */
    mx_status st = MX_OK;
    if (!byte_sum || !class_sum || !class_count || !acc || !chunk || !gram || !scratch) {
        st = mx_error_set(MX_ERR_NOMEM, "out of memory for the input covariance");
        goto done;
    }
    /* Exact integer first moments, overall and per class. */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *px;
        if ((st = mx_dataset_sample(train, i, scratch, &px)) != MX_OK) goto done;
        uint64_t *cs = class_sum + (size_t)train->labels[i] * d;
        class_count[train->labels[i]]++;
        for (size_t k = 0; k < d; k++) {
            byte_sum[k] += px[k];
            cs[k] += px[k];
        }
    }
    for (size_t i0 = 0; i0 < n; i0 += MOMENTS_CHUNK) {
        size_t rows = n - i0 < MOMENTS_CHUNK ? n - i0 : MOMENTS_CHUNK;
        if ((st = add_gram_chunk(train, i0, rows, d, scratch, chunk, gram, acc)) != MX_OK) goto done;
    }

    /* Map bytes b to the input space: x = (b / 255 - mean_c) / std_c = b * scale_c + shift_c,
     * so covariances scale by scale_c(k) scale_c(l). */
    size_t plane = train->height * train->width;
    const double dn = (double)n;
    for (size_t k = 0; k < d; k++) {
        size_t ck = k / plane;
        double mean_k = (double)byte_sum[k] / dn;
        double scale_k = 1.0 / (255.0 * nz->std[ck]);
        m->x_mean[k] = (float)((mean_k / 255.0 - nz->mean[ck]) / nz->std[ck]);
        for (size_t l = k; l < d; l++) {
            size_t cl = l / plane;
            double mean_l = (double)byte_sum[l] / dn;
            double cov = acc[k * d + l] / dn - mean_k * mean_l;
            float v = (float)(cov * scale_k / (255.0 * nz->std[cl]));
            m->sigma_xx[k * d + l] = v;
            m->sigma_xx[l * d + k] = v;
        }
        for (size_t c = 0; c < C; c++) {
            /* (1/n) sum_i (y_ic - ybar_c)(b_ik - bbar_k) = (1/n) sum_{i in c} b_ik - ybar_c bbar_k */
            double ybar = (double)class_count[c] / dn;
            double cov = (double)class_sum[c * d + k] / dn - ybar * mean_k;
            m->sigma_yx[c * d + k] = (float)(cov * scale_k);
        }
    }
    for (size_t a = 0; a < C; a++) {
        double ya = (double)class_count[a] / dn;
        m->y_mean[a] = (float)ya;
        for (size_t b = 0; b < C; b++) {
            double yb = (double)class_count[b] / dn;
            m->sigma_yy[a * C + b] = (float)((a == b ? ya : 0.0) - ya * yb);
        }
    }
    m->n = n;
done:
    free(byte_sum);
    free(class_sum);
    free(class_count);
    free(acc);
    free(chunk);
    free(gram);
    free(scratch);
    return st;
}

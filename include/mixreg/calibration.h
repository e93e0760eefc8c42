/* Post-hoc calibration by temperature scaling (Guo et al. 2017; method.md
 * section 6): one T > 0 for all classes, predictions softmax(logits / T).
 * T > 1 softens an over-confident model, T < 1 sharpens an under-confident
 * one; the arg-max, hence the accuracy, does not change. */
#ifndef MIXREG_CALIBRATION_H
#define MIXREG_CALIBRATION_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/error.h"

#define MX_TEMPERATURE_MIN 0.05
#define MX_TEMPERATURE_MAX 20.0

/* Mean NLL of softmax(logits / temperature) over n samples (logits n x
 * num_classes, row-major), computed in double from the log-softmax.
 * MX_ERR_ARG for n = 0, num_classes = 0, temperature not finite and > 0, or a
 * label outside [0, num_classes); MX_ERR_NUMERIC for a non-finite logit. */
mx_status mx_temperature_nll(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                             double temperature, double *nll);

/* The T in [MX_TEMPERATURE_MIN, MX_TEMPERATURE_MAX] minimising the mean NLL
 * of softmax(logits / T): that NLL is convex in beta = 1/T, so a safeguarded
 * Newton iteration on beta's derivative (bisection in log T whenever a step
 * leaves the bracket) finds it to ~1e-12 relative, deterministically. When
 * the optimum lies outside the range (e.g. every sample right with a margin,
 * where sharper is always better) the nearest end is returned; when the NLL
 * does not depend on T (all logits of each row equal) T = 1. Errors as for
 * mx_temperature_nll; *temperature is left alone on error. Fit it on held-out
 * data, not on the set you report. */
mx_status mx_temperature_fit(const float *logits, const int32_t *labels, size_t n, size_t num_classes,
                             double *temperature);

/* probs = softmax(logits / temperature), row by row in double with the max
 * subtracted, stored as float (n x num_classes). temperature = 1 is the plain
 * softmax. probs may equal logits (in place). */
void mx_softmax_temperature(const float *logits, size_t n, size_t num_classes, double temperature, float *probs);

/* logits /= temperature in place (count values), so that the metrics of the
 * scaled logits (mx_metrics_add_logits) are those of the calibrated model. */
void mx_logits_scale(float *logits, size_t count, double temperature);

#endif

/* The rescaled prediction of method.md section 4 on hand-computed examples. */
#include <string.h>

#include "check.h"
#include "mixreg/rescale.h"

static void test_hand_computed(void)
{
    mx_rescale_stats s;
    CHECK_OK(mx_rescale_stats_alloc(&s, 2, 2));
    s.theta_bar = 0.5;
    s.x_bar[0] = 1, s.x_bar[1] = -1;
    s.y_bar[0] = 0.25f, s.y_bar[1] = 0.75f;
    /* x' = x_bar + theta (x - x_bar): (1 + 0.5 * 2, -1 + 0.5 * 2) = (2, 0). */
    float x[2] = {3, 1}, out[2];
    mx_rescale_inputs(&s, x, 1, out);
    CHECK_NEAR(out[0], 2, 1e-7);
    CHECK_NEAR(out[1], 0, 1e-7);
    /* h = y_bar + (h' - y_bar) / theta: (0.25 + 0.75 / 0.5, 0.75 + 1.25 / 0.5) = (1.75, 3.25). */
    float h[2] = {1, 2};
    mx_rescale_logits(&s, h, 1);
    CHECK_NEAR(h[0], 1.75, 1e-6);
    CHECK_NEAR(h[1], 3.25, 1e-6);

    /* Through a model: logistic regression with identity weights, so f(x') = x'
     * = (2, 0) and h = (0.25 + 1.75 / 0.5, 0.75 - 0.75 / 0.5) = (3.75, -0.75). */
    mx_model_spec spec = {.arch = "logreg", .in_channels = 1, .in_height = 1, .in_width = 2, .num_classes = 2};
    mx_model *m;
    CHECK_OK(mx_model_create(&spec, 4, &m));
    float *p = mx_model_params(m);
    memset(p, 0, mx_model_param_count(m) * sizeof(float));
    p[0] = 1, p[3] = 1;
    float scratch[2], logits[2];
    mx_predict_logits(m, &s, x, 1, scratch, logits);
    CHECK_NEAR(logits[0], 3.75, 1e-6);
    CHECK_NEAR(logits[1], -0.75, 1e-6);
    /* Without statistics the prediction is the plain one. */
    mx_predict_logits(m, NULL, x, 1, scratch, logits);
    CHECK_NEAR(logits[0], 3, 1e-6);
    CHECK_NEAR(logits[1], 1, 1e-6);
    mx_model_free(m);

    /* theta_bar = 1 (ERM) makes both steps the identity. */
    s.theta_bar = 1.0;
    mx_rescale_inputs(&s, x, 1, out);
    CHECK(out[0] == 3 && out[1] == 1);
    mx_rescale_stats_free(&s);
}

static void test_stats_from_data(void)
{
    uint8_t pixels[6] = {0, 255, 255, 255, 0, 0};
    int32_t labels[3] = {0, 1, 1};
    mx_dataset ds = {.n = 3, .channels = 1, .height = 1, .width = 2, .num_classes = 2, .pixels = pixels,
                     .labels = labels};
    mx_normalizer nz;
    float mean = 0.5f, std = 0.5f;
    CHECK_OK(mx_normalizer_init(&nz, 1, &mean, &std));
    mx_rescale_stats s;
    CHECK_OK(mx_rescale_stats_alloc(&s, 2, 2));
    CHECK_OK(mx_rescale_stats_compute(&s, &ds, &nz, 0.75));
    /* Normalised samples: (-1, 1), (1, 1), (-1, -1): mean (-1/3, 1/3). */
    CHECK_NEAR(s.x_bar[0], -1.0 / 3, 1e-6);
    CHECK_NEAR(s.x_bar[1], 1.0 / 3, 1e-6);
    CHECK_NEAR(s.y_bar[0], 1.0 / 3, 1e-6);
    CHECK_NEAR(s.y_bar[1], 2.0 / 3, 1e-6);
    CHECK(s.theta_bar == 0.75);
    mx_rescale_stats bad;
    CHECK_OK(mx_rescale_stats_alloc(&bad, 3, 2));
    CHECK(mx_rescale_stats_compute(&bad, &ds, &nz, 0.75) == MX_ERR_ARG);
    mx_rescale_stats_free(&bad);
    mx_rescale_stats_free(&s);
}

int main(void)
{
    test_hand_computed();
    test_stats_from_data();
    CHECK_DONE();
}

#include <math.h>
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

/* The statistics' pass through the augmentation: images bright on the left
 * and dark on the right, flipped for about half the samples, average to about
 * half-bright everywhere; without random augmentation the pass is the plain one. */
static void test_stats_augmented(void)
{
    enum { N = 4000, H = 2, W = 4 };
    static uint8_t pixels[N * H * W];
    static int32_t labels[N];
    for (size_t i = 0; i < N; i++)
        for (size_t k = 0; k < H * W; k++) pixels[i * H * W + k] = (k % W) < W / 2 ? 255 : 0;
    mx_dataset ds = {.n = N, .channels = 1, .height = H, .width = W, .num_classes = 1, .pixels = pixels, .labels = labels};
    mx_normalizer nz;
    CHECK(mx_normalizer_init(&nz, 1, (const float[]){0.0f}, (const float[]){1.0f}) == MX_OK);
    mx_rescale_stats plain, flipped, none_aug;
    CHECK(mx_rescale_stats_alloc(&plain, H * W, 1) == MX_OK);
    CHECK(mx_rescale_stats_alloc(&flipped, H * W, 1) == MX_OK);
    CHECK(mx_rescale_stats_alloc(&none_aug, H * W, 1) == MX_OK);
    mx_augment_config flip, none = mx_augment_config_none();
    CHECK(mx_augment_parse("flip", &flip) == MX_OK);
    CHECK(mx_rescale_stats_compute(&plain, &ds, &nz, 0.75) == MX_OK);
    CHECK(mx_rescale_stats_compute_augmented(&flipped, &ds, &nz, 0.75, &flip, 7, 0) == MX_OK);
    CHECK(mx_rescale_stats_compute_augmented(&none_aug, &ds, &nz, 0.75, &none, 7, 0) == MX_OK);
    for (size_t k = 0; k < H * W; k++) {
        CHECK(plain.x_bar[k] == ((k % W) < W / 2 ? 1.0f : 0.0f));
        CHECK(none_aug.x_bar[k] == plain.x_bar[k]);
        CHECK(fabsf(flipped.x_bar[k] - 0.5f) < 0.03f);  /* binomial sd 0.008 at N = 4000 */
        CHECK(flipped.x_bar[k] != plain.x_bar[k]);
    }
    /* A flip is a permutation within a row: the row's mean stays exact. */
    double row = 0;
    for (size_t k = 0; k < W; k++) row += flipped.x_bar[k];
    CHECK(fabs(row / W - 0.5) < 1e-6);
    mx_rescale_stats_free(&plain);
    mx_rescale_stats_free(&flipped);
    mx_rescale_stats_free(&none_aug);
}

int main(void)
{
    test_stats_augmented();
    test_hand_computed();
    test_stats_from_data();
    CHECK_DONE();
}

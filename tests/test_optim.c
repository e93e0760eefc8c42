/* SGD update rule and learning-rate schedules. */
#include "check.h"
#include "mixreg/optim.h"

static void test_sgd(void)
{
    /* Plain momentum: v = 0.9 * 0 + (g + wd p) = 1 + 0.1 * 2 = 1.2; p = 2 - 0.5 * 1.2 = 1.4. */
    mx_sgd_config plain = {0.9, 0, 0.1};
    float p = 2, g = 1, v = 0;
    mx_sgd_step(&plain, 0.5, &p, &g, &v, 1);
    CHECK_NEAR(v, 1.2, 1e-6);
    CHECK_NEAR(p, 1.4, 1e-6);
    /* Second step: d = 1 + 0.14 = 1.14; v = 1.08 + 1.14 = 2.22; p = 1.4 - 1.11 = 0.29. */
    mx_sgd_step(&plain, 0.5, &p, &g, &v, 1);
    CHECK_NEAR(v, 2.22, 1e-6);
    CHECK_NEAR(p, 0.29, 1e-6);
    /* Nesterov: v = 1, step uses g + m v = 1 + 0.9 = 1.9. */
    mx_sgd_config nesterov = {0.9, 1, 0};
    p = 0, v = 0;
    mx_sgd_step(&nesterov, 1.0, &p, &g, &v, 1);
    CHECK_NEAR(p, -1.9, 1e-6);
}

static void test_schedules(void)
{
    mx_schedule s;
    CHECK_OK(mx_schedule_parse("cosine", &s));
    s.base_lr = 0.1, s.warmup_epochs = 1, s.epochs = 11, s.steps_per_epoch = 10;
    CHECK_NEAR(mx_schedule_lr(&s, 0), 0.01, 1e-12);   /* warm-up: (0 + 1) / 10 of the peak */
    CHECK_NEAR(mx_schedule_lr(&s, 9), 0.1, 1e-12);
    CHECK_NEAR(mx_schedule_lr(&s, 10), 0.1, 1e-12);   /* cosine starts at the peak */
    CHECK_NEAR(mx_schedule_lr(&s, 60), 0.05, 1e-12);  /* half way */
    CHECK_NEAR(mx_schedule_lr(&s, 110), 0.0, 1e-12);
    CHECK_OK(mx_schedule_parse("step:2,4", &s));
    s.base_lr = 1, s.warmup_epochs = 0, s.epochs = 6, s.steps_per_epoch = 5;
    CHECK_NEAR(mx_schedule_lr(&s, 9), 1, 1e-12);
    CHECK_NEAR(mx_schedule_lr(&s, 10), 0.1, 1e-12);
    CHECK_NEAR(mx_schedule_lr(&s, 20), 0.01, 1e-12);
    CHECK_OK(mx_schedule_parse("constant", &s));
    s.base_lr = 0.3, s.warmup_epochs = 0, s.epochs = 2, s.steps_per_epoch = 5;
    CHECK_NEAR(mx_schedule_lr(&s, 7), 0.3, 1e-12);
    CHECK(mx_schedule_parse("linear", &s) == MX_ERR_ARG);
    CHECK(mx_schedule_parse("step:", &s) == MX_ERR_ARG);
    CHECK(mx_schedule_parse("step:5,3", &s) == MX_ERR_ARG);
    CHECK(mx_schedule_parse("step:3,x", &s) == MX_ERR_ARG);
    CHECK(mx_schedule_parse("step:3,", &s) == MX_ERR_ARG);
}

int main(void)
{
    test_sgd();
    test_schedules();
    CHECK_DONE();
}

/* The run configuration: JSON round trip, unknown keys refused, validation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/train.h"

static void test_round_trip(void)
{
    mx_train_config a, b;
    mx_train_config_default(&a);
    a.epochs = 7;
    a.mixup.alpha = 0.4;
    a.mixup.mode = MX_MIX_ELEM;
    a.mixup.partner = MX_PARTNER_FLIP;
    a.mixup.theta_form = 1;
    a.mixup.label_smoothing = 0.1;
    a.nesterov = 1;
    a.seed = 9007199254740991ull;  /* 2^53 - 1: the largest seed JSON keeps exactly */
    a.model.num_hidden = 3;
    a.model.hidden[2] = 17;
    snprintf(a.schedule, sizeof a.schedule, "step:3,5");
    snprintf(a.out, sizeof a.out, "runs/x \"quoted\"");
    char *json = mx_train_config_to_json(&a);
    CHECK(json != NULL);
    CHECK_OK(mx_train_config_from_json(json, &b));
    CHECK(b.epochs == 7 && b.mixup.alpha == 0.4 && b.mixup.mode == MX_MIX_ELEM && b.mixup.partner == MX_PARTNER_FLIP);
    CHECK(b.mixup.theta_form == 1 && b.mixup.label_smoothing == 0.1 && b.nesterov == 1);
    CHECK(b.seed == a.seed);
    CHECK(b.model.num_hidden == 3 && b.model.hidden[2] == 17);
    CHECK(!strcmp(b.schedule, "step:3,5") && !strcmp(b.out, a.out));
    CHECK(b.mixup.mix_inputs == 1 && b.mixup.mix_labels == 1);
    CHECK(a.model.backend == MX_BACKEND_CPU && b.model.backend == MX_BACKEND_CPU);  /* the default */
    free(json);
    a.model.backend = MX_BACKEND_REF;
    json = mx_train_config_to_json(&a);
    CHECK(json && strstr(json, "\"backend\":\t\"ref\"") != NULL);
    CHECK_OK(mx_train_config_from_json(json, &b));
    CHECK(b.model.backend == MX_BACKEND_REF);
    free(json);
    /* A config from before the setting: the default. */
    CHECK_OK(mx_train_config_from_json("{\"epochs\": 3}", &b));
    CHECK(b.model.backend == MX_BACKEND_CPU && b.model.precision == MX_PRECISION_FP32);
    a.model.backend = MX_BACKEND_CPU;
    a.model.precision = MX_PRECISION_BF16;
    json = mx_train_config_to_json(&a);
    CHECK_OK(mx_train_config_from_json(json, &b));
    CHECK(b.model.precision == MX_PRECISION_BF16);
    free(json);
}

static void test_rejects(void)
{
    mx_train_config c;
    CHECK(mx_train_config_from_json("{\"epochz\": 3}", &c) == MX_ERR_FORMAT);
    CHECK(strstr(mx_error_message(), "epochz") != NULL);
    CHECK(mx_train_config_from_json("{\"epochs\": -3}", &c) == MX_ERR_FORMAT);
    CHECK(mx_train_config_from_json("{\"mixup_mode\": \"triple\"}", &c) != MX_OK);
    CHECK(mx_train_config_from_json("{\"nesterov\": 1}", &c) == MX_ERR_FORMAT);
    CHECK(mx_train_config_from_json("not json", &c) == MX_ERR_FORMAT);
    CHECK(mx_train_config_from_json("{\"backend\": \"gpu\"}", &c) == MX_ERR_FORMAT);
    CHECK(strstr(mx_error_message(), "ref or cpu") != NULL);
    CHECK(mx_train_config_from_json("{\"precision\": \"fp16\"}", &c) == MX_ERR_FORMAT);
    mx_train_config_default(&c);
    c.model.precision = MX_PRECISION_BF16;
    CHECK_OK(mx_train_config_validate(&c));
    c.model.backend = MX_BACKEND_REF;
    CHECK(mx_train_config_validate(&c) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "--backend cpu") != NULL);
    mx_train_config_default(&c);
    CHECK_OK(mx_train_config_validate(&c));
    c.mixup.alpha = -1;
    CHECK(mx_train_config_validate(&c) == MX_ERR_ARG);
    mx_train_config_default(&c);
    c.warmup_epochs = 100;
    CHECK(mx_train_config_validate(&c) == MX_ERR_ARG);
    mx_train_config_default(&c);
    c.momentum = 0;
    c.nesterov = 1;
    CHECK(mx_train_config_validate(&c) == MX_ERR_ARG);
}

/* The shared flag table: values checked as on the command line, switches
 * settable both ways, unknown names refused. */
static void test_flag_table(void)
{
    mx_train_config cfg;
    mx_train_config_default(&cfg);
    CHECK(mx_train_flag_kind("mixup-alpha") == MX_FLAG_VALUE);
    CHECK(mx_train_flag_kind("mixup-theta") == MX_FLAG_SWITCH);
    CHECK(mx_train_flag_kind("mixup-beta") == MX_FLAG_UNKNOWN);
    CHECK(mx_train_config_set(&cfg, "mixup-alpha", "0.4") == MX_OK && cfg.mixup.alpha == 0.4);
    CHECK(mx_train_config_set(&cfg, "mixup-alpha", "-1") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "--mixup-alpha") != NULL);
    CHECK(cfg.mixup.alpha == 0.4);
    CHECK(mx_train_config_set(&cfg, "mixup-theta", NULL) == MX_OK && cfg.mixup.theta_form == 1);
    CHECK(mx_train_config_set(&cfg, "mixup-theta", "false") == MX_OK && cfg.mixup.theta_form == 0);
    CHECK(mx_train_config_set(&cfg, "mixup-theta", "maybe") == MX_ERR_ARG);
    CHECK(mx_train_config_set(&cfg, "no-tensorboard", "yes") == MX_OK && cfg.tensorboard == 0);
    CHECK(mx_train_config_set(&cfg, "no-tensorboard", "no") == MX_OK && cfg.tensorboard == 1);
    CHECK(mx_train_config_set(&cfg, "lr", NULL) == MX_ERR_ARG);
    CHECK(mx_train_config_set(&cfg, "model", "resnet9000") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "mlp") != NULL);
    CHECK(mx_train_config_set(&cfg, "rescale-stats", "clean") == MX_OK && cfg.rescale_stats == MX_RESCALE_CLEAN);
    CHECK(mx_train_config_set(&cfg, "rescale-stats", "dirty") == MX_ERR_ARG);
    CHECK(mx_train_config_set(&cfg, "seed", "12") == MX_OK && cfg.seed == 12);
    CHECK(mx_train_config_set(&cfg, "backend", "ref") == MX_OK && cfg.model.backend == MX_BACKEND_REF);
    CHECK(mx_train_config_set(&cfg, "backend", "cpu") == MX_OK && cfg.model.backend == MX_BACKEND_CPU);
    CHECK(mx_train_config_set(&cfg, "backend", "cuda") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "--backend") && strstr(mx_error_message(), "ref or cpu"));
    CHECK(mx_train_config_set(&cfg, "precision", "bf16") == MX_OK && cfg.model.precision == MX_PRECISION_BF16);
    CHECK(mx_train_config_set(&cfg, "precision", "fp8") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "fp32 or bf16") != NULL);
    CHECK(mx_train_config_set(&cfg, "frobnicate", "1") == MX_ERR_ARG);
}

int main(void)
{
    test_flag_table();
    test_round_trip();
    test_rejects();
    CHECK_DONE();
}

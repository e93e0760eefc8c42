/* Given normalisation statistics (--normalize) and the settings that go with
 * streamed image folders (--stream, --augment rrc): parsing, every error
 * message, the normaliser a run gets, the config's JSON round trip and the
 * checks of mx_train_config_validate. */
#include <string.h>

#include "check.h"
#include "test_tmp.h"
#include "mixreg/augment.h"
#include "mixreg/data.h"
#include "mixreg/train.h"

static void test_parse(void)
{
    size_t c;
    float m[MX_MAX_CHANNELS], s[MX_MAX_CHANNELS];
    CHECK_OK(mx_normalize_parse("imagenet", &c, m, s));
    CHECK(c == 3 && m[0] == 0.485f && m[1] == 0.456f && m[2] == 0.406f && s[0] == 0.229f && s[1] == 0.224f &&
          s[2] == 0.225f);
    CHECK_OK(mx_normalize_parse("0.5/0.25", &c, m, s));
    CHECK(c == 1 && m[0] == 0.5f && s[0] == 0.25f);
    CHECK_OK(mx_normalize_parse("0.1,-0.2,3e-1/1,2,0.5", &c, m, s));
    CHECK(c == 3 && m[1] == -0.2f && m[2] == 0.3f && s[1] == 2.0f);
    CHECK_OK(mx_normalize_parse("0,0,0,0/1,1,1,1", &c, m, s));
    CHECK(c == 4);

    /* Each malformed value and (a part of) its one-line message. */
    static const struct {
        const char *value, *message;
    } bad[] = {
        {"0.5,0.5/0.25", "2 means but 1 std in '0.5,0.5/0.25'"},
        {"0.5/0", "the std of channel 0 is 0 in '0.5/0' (must be > 0)"},
        {"0.5,0.5/1,-1", "std of channel 1 is -1"},
        {"0.5", "--normalize: '0.5' is not imagenet or MEAN"},
        {"0.5/1/2", "is not imagenet or"},
        {"cifar", "'cifar' is not imagenet or"},
        {"x/1", "'x' in 'x/1' is not a number"},
        {"0.5,/1,1", "'' in '0.5,/1,1' is not a number"},
        {"0.5/1e999", "'1e999' in '0.5/1e999' is out of range"},
        {"0.5/2e6", "'2e6' in '0.5/2e6' is out of range"},
        {"0x1/1", "'0x1' in '0x1/1' is not a number"},
        {" 0.5/1", "' 0.5' in ' 0.5/1' is not a number"},
        {"nan/1", "'nan' in"},
        {"1,2,3,4,5/1,1,1,1,1", "more than 4 values"},
        {"/", "is not a number"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        CHECK_FAILS(mx_normalize_parse(bad[k].value, &c, m, s), MX_ERR_ARG, bad[k].message);
}

/* The normaliser of a new run: computed, or given with the data's channel count. */
static void test_run_normalizer(void)
{
    uint8_t px[2 * 4] = {0, 255, 0, 255, 255, 0, 255, 0};
    int32_t labels[2] = {0, 1};
    mx_dataset gray = {.n = 2, .channels = 1, .height = 2, .width = 2, .num_classes = 2, .pixels = px, .labels = labels};
    mx_train_config cfg;
    mx_train_config_default(&cfg);
    CHECK(!strcmp(cfg.normalize, "computed") && cfg.stream == MX_STREAMING_AUTO);
    mx_normalizer nz;
    CHECK_OK(mx_train_normalizer(&cfg, &gray, &nz));
    CHECK(nz.channels == 1 && nz.mean[0] == 0.5f && nz.std[0] == 0.5f);
    strcpy(cfg.normalize, "0.25/2");
    CHECK_OK(mx_train_normalizer(&cfg, &gray, &nz));
    CHECK(nz.mean[0] == 0.25f && nz.std[0] == 2.0f && nz.lut[0][255] == (float)((1.0 - 0.25) / 2.0));
    strcpy(cfg.normalize, "imagenet");
    CHECK_FAILS(mx_train_normalizer(&cfg, &gray, &nz), MX_ERR_ARG, "--normalize: 'imagenet' gives 3 channels but the data has 1");
    uint8_t flat[4] = {7, 7, 7, 7};
    mx_dataset constant = gray;
    constant.pixels = flat;
    constant.n = 1;
    strcpy(cfg.normalize, "computed");
    CHECK_FAILS(mx_train_normalizer(&cfg, &constant, &nz), MX_ERR_ARG, "training data: normaliser: channel 0 std is 0");
}

/* The flag table (command line and experiment files) and config.json. */
static void test_flags_and_json(void)
{
    mx_train_config cfg, back;
    mx_train_config_default(&cfg);
    CHECK(mx_train_flag_kind("normalize") == MX_FLAG_VALUE && mx_train_flag_kind("stream") == MX_FLAG_VALUE);
    CHECK_OK(mx_train_config_set(&cfg, "normalize", "0.5,0.5,0.5/0.2,0.2,0.2"));
    CHECK_OK(mx_train_config_set(&cfg, "stream", "on"));
    CHECK_OK(mx_train_config_set(&cfg, "augment", "rrc,flip"));
    CHECK_FAILS(mx_train_config_set(&cfg, "normalize", "0.5/-1"), MX_ERR_ARG, "--normalize: the std of channel 0 is -1");
    CHECK_FAILS(mx_train_config_set(&cfg, "normalize", "mnist"), MX_ERR_ARG, "--normalize: 'mnist' is not");
    CHECK_FAILS(mx_train_config_set(&cfg, "stream", "yes"), MX_ERR_ARG, "--stream: unknown 'yes' (expected auto, on or off)");
    CHECK_FAILS(mx_train_config_set(&cfg, "augment", "rrc,crop:4"), MX_ERR_ARG, "'rrc' and 'crop' exclude each other");
    CHECK_FAILS(mx_train_config_set(&cfg, "augment", "crop:4,rrc"), MX_ERR_ARG, "'rrc' and 'crop' exclude each other");
    CHECK_FAILS(mx_train_config_set(&cfg, "augment", "rrc,rrc"), MX_ERR_ARG, "'rrc' given twice");
    CHECK(!strcmp(cfg.normalize, "0.5,0.5,0.5/0.2,0.2,0.2")); /* the failed sets changed nothing */
    CHECK_OK(mx_train_config_set(&cfg, "data", "folder:/data/imagenet"));
    char *json = mx_train_config_to_json(&cfg);
    CHECK(json && strstr(json, "\"stream\":") && strstr(json, "\"normalize\":"));
    CHECK_OK(mx_train_config_from_json(json, &back));
    free(json);
    CHECK(back.stream == MX_STREAMING_ON && !strcmp(back.normalize, cfg.normalize) && !strcmp(back.augment, "rrc,flip"));
    CHECK_FAILS(mx_train_config_from_json("{\"stream\": \"never\"}", &back), MX_ERR_FORMAT, "config: stream: --stream: unknown 'never'");
    /* A config written before these settings existed reads with the defaults. */
    CHECK_OK(mx_train_config_from_json("{\"epochs\": 3}", &back));
    CHECK(back.stream == MX_STREAMING_AUTO && !strcmp(back.normalize, "computed"));

    mx_augment_config a;
    char buf[MX_AUGMENT_SPEC_MAX];
    CHECK_OK(mx_augment_parse("flip,rrc", &a));
    CHECK(!strcmp(mx_augment_format(&a, buf, sizeof buf), "rrc,flip"));
    CHECK_OK(mx_augment_parse("rrc", &a));
    CHECK(!strcmp(mx_augment_format(&a, buf, sizeof buf), "rrc"));
}

static void test_validate(void)
{
    mx_train_config cfg;
    mx_train_config_default(&cfg);
    CHECK_OK(mx_train_config_validate(&cfg));
    strcpy(cfg.augment, "rrc,flip");
    CHECK_FAILS(mx_train_config_validate(&cfg), MX_ERR_ARG, "--augment rrc needs an image folder (--data folder:DIR)");
    strcpy(cfg.data, "folder:imgs");
    CHECK_OK(mx_train_config_validate(&cfg));
    cfg.stream = MX_STREAMING_OFF;
    CHECK_FAILS(mx_train_config_validate(&cfg), MX_ERR_ARG, "which --stream off does not keep");
    strcpy(cfg.augment, "crop:4,flip");
    CHECK_OK(mx_train_config_validate(&cfg));
    cfg.stream = MX_STREAMING_ON;
    CHECK_OK(mx_train_config_validate(&cfg));
    strcpy(cfg.data, "cifar10:dir");
    CHECK_FAILS(mx_train_config_validate(&cfg), MX_ERR_ARG, "--stream on needs an image folder");
    cfg.stream = MX_STREAMING_AUTO;
    strcpy(cfg.normalize, "0.5/0");
    CHECK_FAILS(mx_train_config_validate(&cfg), MX_ERR_ARG, "--normalize");
    strcpy(cfg.normalize, "imagenet");
    CHECK_OK(mx_train_config_validate(&cfg));
}

int main(void)
{
    test_parse();
    test_run_normalizer();
    test_flags_and_json();
    test_validate();
    CHECK_DONE();
}

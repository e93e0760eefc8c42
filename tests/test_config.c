/* The run configuration: JSON round trip, unknown keys refused, validation. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/train.h"
#include "settings_cases.h"
#include "test_tmp.h"

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
    CHECK(strstr(mx_error_message(), "ref, cpu or cuda") != NULL);
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
    /* cuda is a backend the settings know (a machine without it refuses the
     * model, not the setting: tests/test_cuda.c, tests/cli_backend.sh). */
    CHECK(mx_train_config_set(&cfg, "backend", "cuda") == MX_OK && cfg.model.backend == MX_BACKEND_CUDA);
    char *json = mx_train_config_to_json(&cfg);
    CHECK(json && strstr(json, "\"backend\":\t\"cuda\"") != NULL);
    mx_train_config back;
    CHECK(json && mx_train_config_from_json(json, &back) == MX_OK && back.model.backend == MX_BACKEND_CUDA);
    free(json);
    CHECK(mx_train_config_set(&cfg, "backend", "gpu") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "--backend") && strstr(mx_error_message(), "ref, cpu or cuda"));
    CHECK(mx_train_config_set(&cfg, "precision", "bf16") == MX_OK && cfg.model.precision == MX_PRECISION_BF16);
    CHECK(mx_train_config_set(&cfg, "precision", "fp8") == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "fp32 or bf16") != NULL);
    CHECK(mx_train_config_set(&cfg, "frobnicate", "1") == MX_ERR_ARG);
}


/* The default config as JSON with `key`'s value replaced by `value`. */
static char *config_with(const char *key, const char *value)
{
    mx_train_config d;
    mx_train_config_default(&d);
    snprintf(d.out, sizeof d.out, "runs/x");
    char *json = mx_train_config_to_json(&d);
    char needle[80];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    char *at = json ? strstr(json, needle) : NULL;
    if (!at) {
        free(json);
        return NULL;
    }
    char *start = at + strlen(needle);
    while (*start == '\t' || *start == ' ') start++;
    /* The old value ends at the comma or newline closing the member (no
     * default value holds either, but for a list's commas). */
    char *end = *start == '[' ? strchr(start, ']') + 1 : start + strcspn(start, ",\n");
    size_t head = (size_t)(start - json), tail = strlen(end);
    char *out = malloc(head + strlen(value) + tail + 1);
    memcpy(out, json, head);
    strcpy(out + head, value);
    strcat(out, end);
    free(json);
    return out;
}

/* Every setting of the table, every kind of bad value config.json or a
 * checkpoint may hold: refused as a corrupt file, in one line naming the key,
 * with the flag's own message for a number out of range. */
static void test_table_refuses_bad_stored_values(void)
{
    const mx_setting *table;
    size_t count = mx_settings(&table), cases_run = 0;
    CHECK(count >= 40);
    /* The table's fields have the types its kinds read and write. */
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        CHECK(s->key && mx_setting_by_key(s->key) == s && (!s->flag || mx_setting_by_flag(s->flag) == s));
        if (s->type == MX_SETTING_SWITCH) CHECK(s->width == sizeof(int));
        if (s->type == MX_SETTING_NUMBER) CHECK(s->width == sizeof(double) && s->min <= s->max);
        if (s->type == MX_SETTING_COUNT) CHECK((s->width == sizeof(int) || s->width == 8) && s->min <= s->max);
        if (s->type == MX_SETTING_TEXT) CHECK(s->parse != NULL);
    }
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        setting_case cases[MAX_CASES];
        size_t n = bad_json_values(s, cases);
        CHECK(n >= 2);
        for (size_t k = 0; k < n; k++) {
            char *json = config_with(s->key, cases[k].text);
            CHECK(json != NULL);
            if (!json) continue;
            mx_train_config c;
            mx_error_clear();
            mx_status st = mx_train_config_from_json(json, &c);
            char prefix[80];
            snprintf(prefix, sizeof prefix, "config: %s: ", s->key);
            const char *m = mx_error_message();
            int good = st == MX_ERR_FORMAT && !strncmp(m, prefix, strlen(prefix)) && !strchr(m, '\n') &&
                       (!cases[k].range || strstr(m, "must be in"));
            if (good && cases[k].range && s->flag) {
                char flag[80];
                snprintf(flag, sizeof flag, "--%s must be in", s->flag);
                good = strstr(m, flag) != NULL;
            }
            CHECK(good);
            if (!good) fprintf(stderr, "  %s = %.60s: status %d, '%s'\n", s->key, cases[k].text, (int)st, m);
            free(json);
            cases_run++;
        }
        /* The value as written by to_json reads back (the unmodified default). */
        char *json = config_with(s->key, "null");
        mx_train_config c;
        CHECK(json && mx_train_config_from_json(json, &c) == MX_ERR_FORMAT);
        free(json);
    }
    CHECK(cases_run > 3 * count);
}

/* The same table on the command line's side: both ends of each range
 * accepted, just outside refused with the flag's message; and a struct
 * holding a value out of range fails validation naming the flag. */
static void test_table_flags_and_validate(void)
{
    const mx_setting *table;
    size_t count = mx_settings(&table);
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        if (!s->flag) continue;
        char what[80];
        snprintf(what, sizeof what, "--%s", s->flag);
        mx_train_config c;
        mx_train_config_default(&c);
        if (s->type == MX_SETTING_COUNT || s->type == MX_SETTING_NUMBER) {
            char lo[64], hi[64];
            flag_bounds(s, lo, hi, sizeof lo);
            CHECK_OK(mx_train_config_set(&c, s->flag, lo));
            CHECK_OK(mx_train_config_set(&c, s->flag, hi));
        }
        setting_case cases[MAX_CASES];
        size_t n = bad_flag_values(s, cases);
        for (size_t k = 0; k < n; k++) {
            mx_train_config before = c;
            mx_error_clear();
            mx_status st = mx_train_config_set(&c, s->flag, cases[k].text);
            int good = st == MX_ERR_ARG && strstr(mx_error_message(), what) && !memcmp(&before, &c, sizeof c) &&
                       (!cases[k].range || strstr(mx_error_message(), "must be in"));
            CHECK(good);
            if (!good) fprintf(stderr, "  --%s %.60s: status %d, '%s'\n", s->flag, cases[k].text, (int)st, mx_error_message());
        }
        /* A value out of range put in the struct directly (a library caller). */
        if (s->type == MX_SETTING_NUMBER || s->type == MX_SETTING_COUNT) {
            mx_train_config_default(&c);
            char *field = (char *)&c + s->offset;
            if (s->type == MX_SETTING_NUMBER) {
                double v = s->max + case_delta(s->max);
                memcpy(field, &v, sizeof v);
            } else if (s->width == sizeof(int)) {
                int v = (int)s->max + 1;
                memcpy(field, &v, sizeof v);
            } else {
                uint64_t v = (uint64_t)s->max + 1;
                memcpy(field, &v, sizeof v);
            }
            mx_error_clear();
            CHECK(mx_train_config_validate(&c) == MX_ERR_ARG && strstr(mx_error_message(), what));
        }
    }
}

/* The checks across settings hold for a loaded config as for flags. */
static void test_stored_cross_checks(void)
{
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"mixup_inputs\": false, \"mixup_labels\": false}", "exclude each other"},
        {"{\"nesterov\": true, \"momentum\": 0}", "--nesterov needs --momentum > 0"},
        {"{\"epochs\": 3, \"warmup_epochs\": 4}", "--warmup-epochs"},
        {"{\"mixup_mode\": \"pair\", \"mixup_partner\": \"roll\"}", "roll does not pair"},
        {"{\"backend\": \"ref\", \"precision\": \"bf16\"}", "--precision bf16 needs --backend cpu"},
        {"{\"label\": \"coarse\"}", "--label coarse needs --data cifar100"},
        {"{\"augment\": \"rrc\"}", "--augment rrc needs an image folder"},
        {"{\"stream\": \"on\"}", "--stream on needs an image folder"},
        {"{\"augment\": \"crop:4:24\"}", "a crop size other than"},
        {"{\"epochs\": 3, \"epochs\": 4}", "appears twice"},
        {"{\"save_every\": 0}", "--save-every must be in"},
        {"{\"batch_size\": 0}", "--batch-size must be in"},
        {"{\"val_split\": -1}", "--val-split must be in"},
        {"{\"lr\": -1}", "--lr must be in"},
        {"{\"momentum\": 5}", "--momentum must be in"},
        {"{\"label_smoothing\": 2}", "--label-smoothing must be in"},
        {"{\"cutmix_switch_prob\": 1.5}", "--cutmix-switch-prob must be in"},
        {"{\"mix_prob\": -0.5}", "--mix-prob must be in"},
        {"{\"schedule\": \"step:99999999999999999999\"}", "--schedule step must be in"},
        {"{\"threads\": -1}", "--threads must be in"},
        {"{\"hidden\": [512, 0]}", "--hidden must be in"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        mx_train_config c;
        CHECK_FAILS(mx_train_config_from_json(cases[k].json, &c), MX_ERR_FORMAT, cases[k].needle);
        CHECK(!strncmp(mx_error_message(), "config: ", 8));
    }
    /* "Not given" values a stored config may hold: all cores, no step limit. */
    mx_train_config c;
    CHECK_OK(mx_train_config_from_json("{\"threads\": 0, \"max_steps\": 0, \"out\": \"\"}", &c));
    CHECK(c.threads == 0 && c.max_steps == 0);
    /* ... which the flags do not take. */
    mx_train_config_default(&c);
    CHECK_FAILS(mx_train_config_set(&c, "threads", "0"), MX_ERR_ARG, "--threads must be in 1..1024, got 0");
    CHECK_FAILS(mx_train_config_set(&c, "max-steps", "0"), MX_ERR_ARG, "--max-steps must be in");
    /* Every default survives the round trip exactly. */
    mx_train_config d, back;
    mx_train_config_default(&d);
    snprintf(d.out, sizeof d.out, "runs/y");
    char *json = mx_train_config_to_json(&d);
    CHECK_OK(mx_train_config_from_json(json, &back));
    char *again = mx_train_config_to_json(&back);
    CHECK(json && again && !strcmp(json, again));
    free(json);
    free(again);
}

/* The quoted number cases from the command line's side. */
static void test_flag_numbers(void)
{
    mx_train_config c;
    mx_train_config_default(&c);
    CHECK_FAILS(mx_train_config_set(&c, "save-every", "99999999999999999999steps"), MX_ERR_ARG, "--save-every must be in");
    CHECK_FAILS(mx_train_config_set(&c, "save-every", "0steps"), MX_ERR_ARG, "--save-every must be in");
    CHECK_FAILS(mx_train_config_set(&c, "save-every", "5 steps"), MX_ERR_ARG, "is not N, Nepochs or Nsteps");
    CHECK_FAILS(mx_train_config_set(&c, "save-every", " 5"), MX_ERR_ARG, "is not N, Nepochs or Nsteps");
    CHECK_FAILS(mx_train_config_set(&c, "save-every", "steps"), MX_ERR_ARG, "is not a whole number");
    CHECK(mx_train_config_set(&c, "save-every", "25steps") == MX_OK && c.save_every == 25 && c.save_every_steps == 1);
    CHECK(mx_train_config_set(&c, "save-every", "3") == MX_OK && c.save_every == 3 && c.save_every_steps == 0);
    CHECK_FAILS(mx_train_config_set(&c, "schedule", "step:99999999999999999999"), MX_ERR_ARG, "--schedule step must be in");
    CHECK_FAILS(mx_train_config_set(&c, "schedule", "step:5, 10"), MX_ERR_ARG, "' 10' is not a number");
    CHECK_FAILS(mx_train_config_set(&c, "lr", "1e400"), MX_ERR_ARG, "--lr must be in");
    CHECK_FAILS(mx_train_config_set(&c, "lr", "5e-324"), MX_ERR_ARG, "--lr must be in");
    CHECK_FAILS(mx_train_config_set(&c, "weight-decay", "5e-324"), MX_ERR_ARG, "--weight-decay must be in");
    CHECK_FAILS(mx_train_config_set(&c, "epochs", " 1"), MX_ERR_ARG, "is not a whole number");
    CHECK_FAILS(mx_train_config_set(&c, "epochs", "1 "), MX_ERR_ARG, "is not a whole number");
    CHECK_FAILS(mx_train_config_set(&c, "hidden", "512, 256"), MX_ERR_ARG, "' 256' is not a whole number");
    CHECK_FAILS(mx_train_config_set(&c, "hidden", "99999999999999999999"), MX_ERR_ARG, "--hidden must be in 1..65536");
    CHECK(c.epochs == 20 && c.model.num_hidden == 2 && c.model.hidden[0] == 512);
}

/* docs/formats.md lists every stored key with its flag's range: the table
 * is the source, the doc must say the same. */
static void test_docs_list_the_table(void)
{
    const char *src = getenv("MIXREG_SOURCE_DIR");
    if (!src) src = ".";
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/formats.md", src);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    static char doc[1 << 20];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = '\0';
    const mx_setting *table;
    size_t count = mx_settings(&table);
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        char row[256], lo[64], hi[64];
        flag_bounds(s, lo, hi, sizeof lo);
        if (s->type == MX_SETTING_COUNT)
            snprintf(row, sizeof row, "| `%s` | %s%s%s | %s..%s |", s->key, s->flag ? "`--" : "", s->flag ? s->flag : "-",
                     s->flag ? "`" : "", lo, hi);
        else if (s->type == MX_SETTING_NUMBER)
            snprintf(row, sizeof row, "| `%s` | `--%s` | [%g, %g] |", s->key, s->flag, s->min, s->max);
        else
            snprintf(row, sizeof row, "| `%s` | %s%s%s |", s->key, s->flag ? "`--" : "", s->flag ? s->flag : "-",
                     s->flag ? "`" : "");
        CHECK(strstr(doc, row) != NULL);
        if (!strstr(doc, row)) fprintf(stderr, "  docs/formats.md lacks the row starting \"%s\"\n", row);
        if (s->alias && strstr(doc, row)) {
            /* The alias in the row's notes. */
            char alias[96];
            snprintf(alias, sizeof alias, "alias `%s%s`", strlen(s->alias) == 1 ? "-" : "--", s->alias);
            const char *at = strstr(doc, row), *end = strchr(at, '\n');
            const char *found = strstr(at, alias);
            CHECK(found && end && found < end);
        }
    }
}

/* The mixing a config describes: the epochs it mixes in, the theta
 * statistics it carries, whether the rescaled prediction applies; and the
 * two timm flags through the table. */
static void test_mixing_of_a_config(void)
{
    mx_train_config c;
    mx_train_config_default(&c);
    c.epochs = 10;
    c.mixup.alpha = 1.0;
    mx_theta_stats t;
    CHECK_OK(mx_train_config_theta(&c, &t));
    CHECK(t.theta_bar == 0.75 && mx_train_config_rescale_undefined(&c) == NULL);
    CHECK(mx_train_config_mixes_in_epoch(&c, 1) && mx_train_config_mixes_in_epoch(&c, 10));
    /* Off from epoch 5 on (timm counts from 0: N = 4 mixes epochs 1-4 here):
     * 4 of 10 epochs mixed, theta_bar = 0.6 + 0.4 * 0.75. */
    CHECK_OK(mx_train_config_set(&c, "mixup-off-epoch", "4"));
    CHECK(c.mixup_off_epoch == 4);
    CHECK(mx_train_config_mixes_in_epoch(&c, 4) && !mx_train_config_mixes_in_epoch(&c, 5));
    CHECK(mx_train_config_mixed_epoch_share(&c) == 0.4);
    CHECK_OK(mx_train_config_theta(&c, &t));
    CHECK_NEAR(t.theta_bar, 0.9, 1e-15);
    /* With --mix-prob 0.5 too: one mixture, share 0.2 of the samples mixed. */
    c.cutmix.prob = 0.5;
    mx_theta_stats want;
    CHECK_OK(mx_theta_stats_mixed(1.0, 0.2, &want));
    CHECK_OK(mx_train_config_theta(&c, &t));
    CHECK(t.theta_bar == want.theta_bar && t.theta_var == want.theta_var && t.gamma2 == want.gamma2);
    CHECK_NEAR(t.theta_bar, 0.95, 1e-15);
    /* N at or past the last epoch changes nothing. */
    c.cutmix.prob = 1.0;
    c.mixup_off_epoch = 10;
    CHECK(mx_train_config_mixed_epoch_share(&c) == 1.0);
    c.mixup_off_epoch = 99;
    CHECK_OK(mx_train_config_theta(&c, &t));
    CHECK(t.theta_bar == 0.75);
    c.mixup_off_epoch = 0;

    /* Where the paper's derivation does not apply: no rescaling (theta_bar 1). */
    const char *why;
    c.cutmix.alpha = 1.0;
    CHECK((why = mx_train_config_rescale_undefined(&c)) && strstr(why, "CutMix switched with Mixup"));
    CHECK_OK(mx_train_config_theta(&c, &t));
    CHECK(t.theta_bar == 1.0 && t.theta_var == 0.0 && t.gamma2 == 0.0);
    c.mixup.alpha = 0.0;
    CHECK((why = mx_train_config_rescale_undefined(&c)) && !strcmp(why, "trained with CutMix"));
    c.cutmix.alpha = 0.0;
    CHECK_OK(mx_train_config_set(&c, "cutmix-minmax", "0.2,0.8"));
    CHECK(c.cutmix.minmax_lo == 0.2 && c.cutmix.minmax_hi == 0.8 && mx_cutmix_on(&c.cutmix));
    CHECK((why = mx_train_config_rescale_undefined(&c)) && !strcmp(why, "trained with CutMix"));
    c.cutmix.prob = 0.0; /* nothing mixed at all: the identity, defined */
    CHECK(mx_train_config_rescale_undefined(&c) == NULL);
    c.cutmix.prob = 1.0;
    CHECK_OK(mx_train_config_set(&c, "cutmix-minmax", "off"));
    CHECK(!mx_cutmix_on(&c.cutmix) && mx_train_config_rescale_undefined(&c) == NULL);
    c.mixup.alpha = 0.4;
    c.mixup.mix_labels = 0;
    CHECK((why = mx_train_config_rescale_undefined(&c)) && !strcmp(why, "trained with --mixup-only-inputs"));
    c.mixup.mix_labels = 1;
    c.mixup.mix_inputs = 0;
    CHECK((why = mx_train_config_rescale_undefined(&c)) && !strcmp(why, "trained with --mixup-only-labels"));
    c.mixup.alpha = 0.0; /* the ablation of nothing: ERM */
    CHECK(mx_train_config_rescale_undefined(&c) == NULL);

    /* --cutmix-minmax: refused forms, and the value through config.json. */
    const char *bad[] = {"0.5", "0.8,0.2", "0.3,0.3", "-0.1,0.5", "0.1,1.5", "0.1,0.5,0.9", ",", "a,b", "0.1, 0.5", ""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        mx_train_config before = c;
        CHECK(mx_train_config_set(&c, "cutmix-minmax", bad[k]) == MX_ERR_ARG);
        CHECK(strstr(mx_error_message(), "--cutmix-minmax") != NULL);
        CHECK(!memcmp(&before, &c, sizeof c));
    }
    mx_train_config_default(&c);
    CHECK_OK(mx_train_config_set(&c, "cutmix-minmax", "0.25,0.75"));
    CHECK_OK(mx_train_config_set(&c, "mixup-off-epoch", "3"));
    char *json = mx_train_config_to_json(&c);
    CHECK(json && strstr(json, "\"cutmix_minmax\":\t\"0.25,0.75\"") && strstr(json, "\"mixup_off_epoch\":\t3"));
    mx_train_config back;
    CHECK_OK(mx_train_config_from_json(json, &back));
    CHECK(back.cutmix.minmax_lo == 0.25 && back.cutmix.minmax_hi == 0.75 && back.mixup_off_epoch == 3);
    free(json);
    CHECK(mx_train_config_from_json("{\"cutmix_minmax\": \"0.9,0.1\"}", &back) == MX_ERR_FORMAT);
}

/* Aliases (timm's names): each names one setting, is no other setting's flag
 * or alias, sets what the flag sets, and is never a stored key. */
static void test_aliases(void)
{
    const mx_setting *table;
    size_t count = mx_settings(&table), aliases = 0;
    for (size_t i = 0; i < count; i++) {
        const mx_setting *s = &table[i];
        if (!s->alias) continue;
        aliases++;
        CHECK(s->flag != NULL);
        CHECK(mx_setting_by_flag(s->alias) == s);
        CHECK(!strcmp(mx_train_flag_canonical(s->alias), s->flag));
        CHECK(mx_setting_by_key(s->alias) == NULL);
        for (size_t k = 0; k < count; k++) {
            CHECK(!table[k].flag || strcmp(table[k].flag, s->alias));
            CHECK(k == i || !table[k].alias || strcmp(table[k].alias, s->alias));
        }
    }
    CHECK(aliases == 8);
    CHECK(mx_train_flag_canonical("no-such-flag") == NULL);
    mx_train_config a, b;
    mx_train_config_default(&a);
    mx_train_config_default(&b);
    CHECK_OK(mx_train_config_set(&a, "mixup", "0.3"));
    CHECK_OK(mx_train_config_set(&b, "mixup-alpha", "0.3"));
    CHECK_OK(mx_train_config_set(&a, "b", "64"));
    CHECK_OK(mx_train_config_set(&b, "batch-size", "64"));
    CHECK_OK(mx_train_config_set(&a, "sched", "step:2,4"));
    CHECK_OK(mx_train_config_set(&b, "schedule", "step:2,4"));
    CHECK(a.mixup.alpha == 0.3 && a.batch_size == 64 && !strcmp(a.schedule, "step:2,4"));
    char *ja = mx_train_config_to_json(&a), *jb = mx_train_config_to_json(&b);
    CHECK(ja && jb && !strcmp(ja, jb));
    CHECK(ja && !strstr(ja, "\"sched\"") && !strstr(ja, "\"b\"") && !strstr(ja, "\"mixup\""));
    free(ja);
    free(jb);
    /* A refused value names the alias as typed. */
    CHECK(mx_train_config_set(&a, "b", "0") == MX_ERR_ARG && strstr(mx_error_message(), "-b must be"));
    CHECK(mx_train_config_set(&a, "smoothing", "2") == MX_ERR_ARG && strstr(mx_error_message(), "--smoothing must be"));
}

int main(void)
{
    test_flag_table();
    test_mixing_of_a_config();
    test_round_trip();
    test_rejects();
    test_table_refuses_bad_stored_values();
    test_table_flags_and_validate();
    test_stored_cross_checks();
    test_flag_numbers();
    test_docs_list_the_table();
    test_aliases();
    CHECK_DONE();
}

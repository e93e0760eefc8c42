/* The settings table: every training setting once, with its flag name, its
 * config.json key, its range and its parser. The command line, experiment
 * files (mx_train_config_set), config.json and checkpoints (config_json.c) and
 * mx_train_config_validate all read it, so each range lives here only. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "mixreg/augment.h"
#include "mixreg/optim.h"
#include "mixreg/parse.h"
#include "mixreg/theta.h"

#define FIELD(f) .offset = offsetof(mx_train_config, f), .width = sizeof(((mx_train_config *)0)->f)
/* A row's trailing arguments are optional extra fields, e.g. `.alias = "mixup"`. */
#define COUNT(flag_, key_, f, lo, hi, ...) \
    {.flag = flag_, .key = key_, .type = MX_SETTING_COUNT, .min = lo, .max = hi, FIELD(f), __VA_ARGS__}
#define NUMBER(flag_, key_, f, lo, hi, ...) \
    {.flag = flag_, .key = key_, .type = MX_SETTING_NUMBER, .min = lo, .max = hi, FIELD(f), __VA_ARGS__}
#define SWITCH(flag_, key_, f, inv, ...) \
    {.flag = flag_, .key = key_, .type = MX_SETTING_SWITCH, .inverted = inv, FIELD(f), __VA_ARGS__}
#define TEXT(flag_, key_, f, parse_, format_, ...) \
    {.flag = flag_, .key = key_, .type = MX_SETTING_TEXT, .parse = parse_, .format = format_, FIELD(f), __VA_ARGS__}

/* Step and log counters stay far below where products with a batch size
 * could overflow 64 bits. */
#define MAX_STEPS ((double)((size_t)1 << 40))
/* Seeds are stored as JSON numbers, read back as doubles: exact below 2^53. */
#define MAX_SEED 9007199254740991.0

static mx_status set_string(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    if (!value[0] || strlen(value) >= s->width)
        return mx_error_set(MX_ERR_ARG, "%s: empty or longer than %zu characters", what, s->width - 1);
    strcpy(mx_setting_field(s, cfg), value);
    return MX_OK;
}

static mx_status set_model(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    if (!mx_model_arch_known(value))
        return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (available: %s)", what, value, mx_model_arch_names());
    return set_string(s, cfg, what, value);
}

static mx_status set_hidden(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s, (void)what;
    return mx_model_spec_set_hidden(&cfg->model, value);
}

static void format_hidden(const mx_train_config *cfg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < cfg->model.num_hidden && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%zu", i ? "," : "", cfg->model.hidden[i]);
}

static mx_status set_backend(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    return mx_backend_parse(what, value, &cfg->model.backend);
}

static void format_backend(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_backend_name(cfg->model.backend));
}

static mx_status set_precision(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    return mx_precision_parse(what, value, &cfg->model.precision);
}

static void format_precision(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_precision_name(cfg->model.precision));
}

static mx_status set_mode(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s, (void)what;
    return mx_mix_mode_parse(value, &cfg->mixup.mode);
}

static void format_mode(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_mix_mode_name(cfg->mixup.mode));
}

static mx_status set_partner(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s, (void)what;
    return mx_partner_parse(value, &cfg->mixup.partner);
}

static void format_partner(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_partner_name(cfg->mixup.partner));
}

static mx_status set_schedule(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    mx_schedule parsed;
    mx_status st = mx_schedule_parse(value, &parsed);
    return st == MX_OK ? set_string(s, cfg, what, value) : st;
}

static mx_status set_save_every(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s, (void)what;
    return mx_save_every_parse(value, &cfg->save_every, &cfg->save_every_steps);
}

static mx_status set_save_every_unit(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    if (strcmp(value, "steps") && strcmp(value, "epochs"))
        return mx_error_set(MX_ERR_ARG, "%s: '%s' is not steps or epochs", what, value);
    cfg->save_every_steps = !strcmp(value, "steps");
    return MX_OK;
}

static void format_save_every_unit(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", cfg->save_every_steps ? "steps" : "epochs");
}

/* Recorded so a config says how weight decay was applied; L2 is the only form. */
static mx_status set_weight_decay_mode(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s, (void)cfg;
    return strcmp(value, "l2") ? mx_error_set(MX_ERR_ARG, "%s: '%s' is unsupported (only l2)", what, value) : MX_OK;
}

static void format_weight_decay_mode(const mx_train_config *cfg, char *out, size_t cap)
{
    (void)cfg;
    snprintf(out, cap, "l2");
}

static mx_status set_rescale_stats(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    return mx_rescale_source_parse(what, value, &cfg->rescale_stats);
}

static void format_rescale_stats(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_rescale_source_name(cfg->rescale_stats));
}

static mx_status set_label(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    return mx_label_kind_parse(what, value, &cfg->labels);
}

static void format_label(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", cfg->labels == MX_LABEL_COARSE ? "coarse" : cfg->labels == MX_LABEL_FINE ? "fine" : "?");
}

static mx_status set_augment(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    mx_augment_config parsed;
    mx_status st = mx_augment_parse(value, &parsed);
    return st == MX_OK ? set_string(s, cfg, what, value) : st;
}

static mx_status set_stream(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    return mx_streaming_parse(what, value, &cfg->stream);
}

static void format_stream(const mx_train_config *cfg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", mx_streaming_name(cfg->stream));
}

/* "off" (both ends 0), or "MIN,MAX": each end a number in [0, 1]; MIN < MAX
 * is checked with the rest of CutMix's settings (mx_cutmix_config_validate). */
static mx_status set_cutmix_minmax(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    (void)s;
    if (!strcmp(value, "off")) {
        cfg->cutmix.minmax_lo = cfg->cutmix.minmax_hi = 0.0;
        return MX_OK;
    }
    const char *comma = strchr(value, ',');
    char low[64];
    size_t len = comma ? (size_t)(comma - value) : 0;
    if (!comma || len >= sizeof low || strchr(comma + 1, ','))
        return mx_error_set(MX_ERR_ARG, "%s: '%s' is not MIN,MAX (two numbers in [0, 1]) or off", what, value);
    memcpy(low, value, len);
    low[len] = '\0';
    double lo, hi;
    mx_status st = mx_parse_double(what, low, 0, 1, &lo);
    if (st == MX_OK) st = mx_parse_double(what, comma + 1, 0, 1, &hi);
    if (st != MX_OK) return st;
    if (!(lo < hi)) return mx_error_set(MX_ERR_ARG, "%s: MIN must be below MAX (got %s)", what, value);
    cfg->cutmix.minmax_lo = lo;
    cfg->cutmix.minmax_hi = hi;
    return MX_OK;
}

static void format_cutmix_minmax(const mx_train_config *cfg, char *out, size_t cap)
{
    if (cfg->cutmix.minmax_lo == 0.0 && cfg->cutmix.minmax_hi == 0.0) snprintf(out, cap, "off");
    else snprintf(out, cap, "%.17g,%.17g", cfg->cutmix.minmax_lo, cfg->cutmix.minmax_hi);
}

/* "computed", or given statistics checked here (their channel count against
 * the data's when the data is loaded). */
static mx_status set_normalize(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value)
{
    if (strcmp(value, "computed")) {
        size_t channels;
        float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
        mx_status st = mx_normalize_parse(value, &channels, mean, std);
        if (st != MX_OK) return st;
    }
    return set_string(s, cfg, what, value);
}

/* In config.json's order. An alias is timm's name (train.py) for a setting
 * that means the same there: accepted wherever the flag is (command line,
 * experiment files), shown by train --help, never stored (config.json has the
 * key). One letter is a short flag: -b. */
static const mx_setting settings[] = {
    TEXT("data", "data", data, set_string, NULL),
    TEXT("model", "model", model.arch, set_model, NULL),
    {.flag = "hidden", .key = "hidden", .type = MX_SETTING_TEXT, .parse = set_hidden, .format = format_hidden,
     .json_list = 1, FIELD(model.hidden)},
    TEXT("backend", "backend", model.backend, set_backend, format_backend),
    TEXT("precision", "precision", model.precision, set_precision, format_precision),
    COUNT("epochs", "epochs", epochs, 1, 100000),
    COUNT("batch-size", "batch_size", batch_size, 1, 65536, .alias = "b"),
    NUMBER("mixup-alpha", "mixup_alpha", mixup.alpha, 0, MX_MAX_ALPHA, .alias = "mixup"),
    TEXT("mixup-mode", "mixup_mode", mixup.mode, set_mode, format_mode),
    TEXT("mixup-partner", "mixup_partner", mixup.partner, set_partner, format_partner),
    SWITCH("mixup-theta", "mixup_theta", mixup.theta_form, 0),
    SWITCH("mixup-only-labels", "mixup_inputs", mixup.mix_inputs, 1),
    SWITCH("mixup-only-inputs", "mixup_labels", mixup.mix_labels, 1),
    NUMBER("label-smoothing", "label_smoothing", mixup.label_smoothing, 0, 0.999, .alias = "smoothing"),
    NUMBER("lr", "lr", lr, 1e-12, 1e3),
    NUMBER("momentum", "momentum", momentum, 0, 0.999999),
    SWITCH("nesterov", "nesterov", nesterov, 0),
    SWITCH("sync-bn", "sync_bn", sync_bn, 0),
    NUMBER("weight-decay", "weight_decay", weight_decay, 0, 1),
    /* No field: the value is fixed. */
    {.key = "weight_decay_mode", .type = MX_SETTING_TEXT, .parse = set_weight_decay_mode, .format = format_weight_decay_mode},
    TEXT("schedule", "schedule", schedule, set_schedule, NULL, .alias = "sched"),
    NUMBER("warmup-epochs", "warmup_epochs", warmup_epochs, 0, 100000),
    COUNT("seed", "seed", seed, 0, MAX_SEED),
    {.flag = "threads", .key = "threads", .type = MX_SETTING_COUNT, .min = 1, .max = 1024, .unset_ok = 1, FIELD(threads)},
    {.flag = "max-steps", .key = "max_steps", .type = MX_SETTING_COUNT, .min = 1, .max = MAX_STEPS, .unset_ok = 1,
     FIELD(max_steps)},
    {.flag = "out", .alias = "output", .key = "out", .type = MX_SETTING_TEXT, .parse = set_string, .unset_ok = 1,
     FIELD(out)},
    {.flag = "save-every", .key = "save_every", .type = MX_SETTING_COUNT, .min = 1, .max = MAX_STEPS,
     .parse = set_save_every, FIELD(save_every)},
    TEXT(NULL, "save_every_unit", save_every_steps, set_save_every_unit, format_save_every_unit),
    COUNT("keep", "keep", keep, 0, 1000000),
    NUMBER("val-split", "val_split", val_split, 0, 0.9),
    COUNT("log-every", "log_every", log_every, 0, MAX_STEPS),
    SWITCH("no-tensorboard", "tensorboard", tensorboard, 1),
    SWITCH("tb-histograms", "tb_histograms", tb_histograms, 0),
    TEXT("rescale-stats", "rescale_stats", rescale_stats, set_rescale_stats, format_rescale_stats),
    TEXT("label", "label", labels, set_label, format_label),
    TEXT("augment", "augment", augment, set_augment, NULL),
    TEXT("stream", "stream", stream, set_stream, format_stream),
    TEXT("normalize", "normalize", normalize, set_normalize, NULL),
    COUNT("workers", "workers", workers, 0, 64),
    COUNT("image-size", "image_size", image_size, 8, 4096),
    SWITCH("skip-bad-images", "skip_bad_images", skip_bad_images, 0),
    NUMBER("cutmix-alpha", "cutmix_alpha", cutmix.alpha, 0, MX_MAX_ALPHA, .alias = "cutmix"),
    NUMBER("cutmix-switch-prob", "cutmix_switch_prob", cutmix.switch_prob, 0, 1, .alias = "mixup-switch-prob"),
    NUMBER("mix-prob", "mix_prob", cutmix.prob, 0, 1, .alias = "mixup-prob"),
    TEXT("cutmix-minmax", "cutmix_minmax", cutmix.minmax_lo, set_cutmix_minmax, format_cutmix_minmax),
    COUNT("mixup-off-epoch", "mixup_off_epoch", mixup_off_epoch, 0, 100000),
};

size_t mx_settings(const mx_setting **table)
{
    *table = settings;
    return sizeof settings / sizeof settings[0];
}

const mx_setting *mx_setting_by_flag(const char *flag)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].flag && !strcmp(settings[i].flag, flag)) return &settings[i];
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (settings[i].alias && !strcmp(settings[i].alias, flag)) return &settings[i];
    return NULL;
}

const char *mx_train_flag_canonical(const char *name)
{
    const mx_setting *s = mx_setting_by_flag(name);
    return s ? s->flag : NULL;
}

const mx_setting *mx_setting_by_key(const char *key)
{
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (!strcmp(settings[i].key, key)) return &settings[i];
    return NULL;
}

void *mx_setting_field(const mx_setting *s, mx_train_config *cfg) { return (char *)cfg + s->offset; }

uint64_t mx_setting_get_count(const mx_setting *s, const mx_train_config *cfg)
{
    const char *p = (const char *)cfg + s->offset;
    if (s->width == sizeof(int)) {
        int v;
        memcpy(&v, p, sizeof v);
        return (uint64_t)(int64_t)v;   /* a negative int reads as huge: out of range */
    }
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

void mx_setting_set_count(const mx_setting *s, mx_train_config *cfg, uint64_t value)
{
    char *p = mx_setting_field(s, cfg);
    if (s->width == sizeof(int)) {
        int v = (int)value;   /* ranges of int fields are far below INT_MAX */
        memcpy(p, &v, sizeof v);
    } else {
        memcpy(p, &value, sizeof value);
    }
}

mx_status mx_setting_check_count(const mx_setting *s, const char *what, double value)
{
    if (s->unset_ok && value == 0) return MX_OK;
    return mx_check_count_range(what, value, s->min, s->max);
}

void mx_setting_format(const mx_setting *s, const mx_train_config *cfg, char *out, size_t cap)
{
    if (s->format) s->format(cfg, out, cap);
    else snprintf(out, cap, "%s", (const char *)cfg + s->offset);
}

static mx_status parse_value(const mx_setting *s, mx_train_config *cfg, const char *what, const char *value, int on)
{
    if (s->parse) return s->parse(s, cfg, what, value);
    switch (s->type) {
    case MX_SETTING_COUNT: {
        size_t v;
        mx_status st = mx_parse_size(what, value, (size_t)s->min, (size_t)s->max, &v);
        if (st == MX_OK) mx_setting_set_count(s, cfg, v);
        return st;
    }
    case MX_SETTING_NUMBER:
        return mx_parse_double(what, value, s->min, s->max, (double *)mx_setting_field(s, cfg));
    case MX_SETTING_SWITCH:
        *(int *)mx_setting_field(s, cfg) = s->inverted ? !on : on;
        return MX_OK;
    case MX_SETTING_TEXT:
    default:
        return mx_error_set(MX_ERR_ARG, "%s has no parser", what);
    }
}

mx_flag_kind mx_train_flag_kind(const char *name)
{
    const mx_setting *s = mx_setting_by_flag(name);
    return !s ? MX_FLAG_UNKNOWN : s->type == MX_SETTING_SWITCH ? MX_FLAG_SWITCH : MX_FLAG_VALUE;
}

mx_status mx_train_config_set(mx_train_config *cfg, const char *name, const char *value)
{
    const mx_setting *s = mx_setting_by_flag(name);
    if (!s) return mx_error_set(MX_ERR_ARG, "unknown setting '%s'", name);
    char what[64];
    snprintf(what, sizeof what, "%s%s", strlen(name) == 1 ? "-" : "--", name);  /* as it was typed: -b, --mixup */
    int on = 1;
    if (s->type == MX_SETTING_SWITCH && value) {
        mx_status st = mx_parse_bool(what, value, &on);
        if (st != MX_OK) return st;
    } else if (s->type != MX_SETTING_SWITCH && !value) {
        return mx_error_set(MX_ERR_ARG, "%s needs a value", what);
    }
    /* A refused value leaves the config as it was. */
    mx_train_config changed = *cfg;
    mx_status st = parse_value(s, &changed, what, value, on);
    if (st == MX_OK) *cfg = changed;
    return st;
}

void mx_setting_name(const mx_setting *s, char *out, size_t cap)
{
    if (s->flag) snprintf(out, cap, "--%s", s->flag);
    else snprintf(out, cap, "%s", s->key);
}

mx_status mx_setting_check(const mx_setting *s, const mx_train_config *cfg)
{
    char what[64];
    mx_setting_name(s, what, sizeof what);
    switch (s->type) {
    case MX_SETTING_COUNT:
        return mx_setting_check_count(s, what, (double)mx_setting_get_count(s, cfg));
    case MX_SETTING_NUMBER:
        return mx_check_double_range(what, *(const double *)((const char *)cfg + s->offset), s->min, s->max);
    case MX_SETTING_SWITCH: {
        int v = *(const int *)((const char *)cfg + s->offset);
        return v == 0 || v == 1 ? MX_OK : mx_error_set(MX_ERR_ARG, "%s: %d is not on (1) or off (0)", what, v);
    }
    case MX_SETTING_TEXT:
    default: {
        /* The text form read back through the flag's own parser. */
        char text[MX_PATH_MAX + 1];
        mx_setting_format(s, cfg, text, sizeof text);
        if (s->unset_ok && !text[0]) return MX_OK;
        mx_train_config scratch = *cfg;
        return s->parse(s, &scratch, what, text);
    }
    }
}

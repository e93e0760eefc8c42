/* The training flags by name, one table shared by `mixreg train` (as
 * "--name value") and experiment files (as "name = value"), so both accept
 * exactly the same settings with the same checks and messages. */
#include <stdio.h>
#include <string.h>

#include "mixreg/augment.h"
#include "mixreg/parse.h"
#include "mixreg/train.h"

typedef mx_status (*flag_setter)(mx_train_config *cfg, const char *what, const char *value, int on);

typedef struct {
    const char *name;     /* without the leading "--" */
    int takes_value;      /* 0: a switch (value NULL, or on/off in experiment files) */
    flag_setter set;
} flag_entry;

static mx_status set_string(char *dst, size_t cap, const char *what, const char *value)
{
    if (!value[0] || strlen(value) >= cap) return mx_error_set(MX_ERR_ARG, "%s: empty or too long", what);
    strcpy(dst, value);
    return MX_OK;
}

#define SIZE_FLAG(fn, field, lo, hi) \
    static mx_status fn(mx_train_config *cfg, const char *what, const char *value, int on) \
    { (void)on; return mx_parse_size(what, value, lo, hi, &cfg->field); }
#define DOUBLE_FLAG(fn, field, lo, hi) \
    static mx_status fn(mx_train_config *cfg, const char *what, const char *value, int on) \
    { (void)on; return mx_parse_double(what, value, lo, hi, &cfg->field); }
#define SWITCH_FLAG(fn, field, when_on) \
    static mx_status fn(mx_train_config *cfg, const char *what, const char *value, int on) \
    { (void)what; (void)value; cfg->field = on ? (when_on) : !(when_on); return MX_OK; }

SIZE_FLAG(set_keep, keep, 0, 1000000)
SIZE_FLAG(set_log_every, log_every, 0, (size_t)1 << 40)
SIZE_FLAG(set_epochs, epochs, 1, 100000)
SIZE_FLAG(set_batch_size, batch_size, 1, 65536)
SIZE_FLAG(set_max_steps, max_steps, 1, (size_t)1 << 40)
SIZE_FLAG(set_workers, workers, 0, 64)
SIZE_FLAG(set_image_size, image_size, 8, 4096)
SWITCH_FLAG(set_skip_bad, skip_bad_images, 1)
DOUBLE_FLAG(set_val_split, val_split, 0, 0.9)
DOUBLE_FLAG(set_alpha, mixup.alpha, 0, 1e6)
DOUBLE_FLAG(set_label_smoothing, mixup.label_smoothing, 0, 0.999)
DOUBLE_FLAG(set_lr, lr, 1e-12, 1e3)
DOUBLE_FLAG(set_momentum, momentum, 0, 0.999999)
DOUBLE_FLAG(set_weight_decay, weight_decay, 0, 1)
DOUBLE_FLAG(set_warmup, warmup_epochs, 0, 100000)
SWITCH_FLAG(set_no_tensorboard, tensorboard, 0)
SWITCH_FLAG(set_tb_histograms, tb_histograms, 1)
SWITCH_FLAG(set_only_inputs, mixup.mix_labels, 0)
SWITCH_FLAG(set_only_labels, mixup.mix_inputs, 0)
SWITCH_FLAG(set_theta, mixup.theta_form, 1)
SWITCH_FLAG(set_nesterov, nesterov, 1)
SWITCH_FLAG(set_sync_bn, sync_bn, 1)

static mx_status set_save_every(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)what, (void)on;
    return mx_save_every_parse(value, &cfg->save_every, &cfg->save_every_steps);
}

static mx_status set_data(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return set_string(cfg->data, sizeof cfg->data, what, value);
}

static mx_status set_model(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    if (!mx_model_arch_known(value))
        return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (available: %s)", what, value, mx_model_arch_names());
    return set_string(cfg->model.arch, sizeof cfg->model.arch, what, value);
}

static mx_status set_hidden(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)what, (void)on;
    return mx_model_spec_set_hidden(&cfg->model, value);
}

static mx_status set_backend(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return mx_backend_parse(what, value, &cfg->model.backend);
}

static mx_status set_precision(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return mx_precision_parse(what, value, &cfg->model.precision);
}

static mx_status set_mode(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)what, (void)on;
    return mx_mix_mode_parse(value, &cfg->mixup.mode);
}

static mx_status set_partner(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)what, (void)on;
    return mx_partner_parse(value, &cfg->mixup.partner);
}

static mx_status set_schedule(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return set_string(cfg->schedule, sizeof cfg->schedule, what, value);
}

static mx_status set_seed(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    size_t seed;
    mx_status st = mx_parse_size(what, value, 0, (size_t)1 << 53, &seed);
    if (st == MX_OK) cfg->seed = seed;
    return st;
}

static mx_status set_threads(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    size_t threads;
    mx_status st = mx_parse_size(what, value, 1, 1024, &threads);
    if (st == MX_OK) cfg->threads = (int)threads;
    return st;
}

static mx_status set_out(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return set_string(cfg->out, sizeof cfg->out, what, value);
}

static mx_status set_rescale_stats(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return mx_rescale_source_parse(what, value, &cfg->rescale_stats);
}

static mx_status set_label(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return mx_label_kind_parse(what, value, &cfg->labels);
}

DOUBLE_FLAG(set_cutmix_alpha, cutmix.alpha, 0, 1e6)
DOUBLE_FLAG(set_cutmix_switch, cutmix.switch_prob, 0, 1)
DOUBLE_FLAG(set_mix_prob, cutmix.prob, 0, 1)

static mx_status set_augment(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    mx_augment_config parsed;
    mx_status st = mx_augment_parse(value, &parsed);
    return st == MX_OK ? set_string(cfg->augment, sizeof cfg->augment, what, value) : st;
}

static mx_status set_stream(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    return mx_streaming_parse(what, value, &cfg->stream);
}

/* "computed", or given statistics checked here (their channel count against
 * the data's when the data is loaded). */
static mx_status set_normalize(mx_train_config *cfg, const char *what, const char *value, int on)
{
    (void)on;
    if (strcmp(value, "computed")) {
        size_t channels;
        float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
        mx_status st = mx_normalize_parse(value, &channels, mean, std);
        if (st != MX_OK) return st;
    }
    return set_string(cfg->normalize, sizeof cfg->normalize, what, value);
}

static const flag_entry flags[] = {
    {"data", 1, set_data},
    {"label", 1, set_label},
    {"model", 1, set_model},
    {"hidden", 1, set_hidden},
    {"backend", 1, set_backend},
    {"precision", 1, set_precision},
    {"epochs", 1, set_epochs},
    {"batch-size", 1, set_batch_size},
    {"mixup-alpha", 1, set_alpha},
    {"mixup-mode", 1, set_mode},
    {"mixup-partner", 1, set_partner},
    {"mixup-theta", 0, set_theta},
    {"mixup-only-inputs", 0, set_only_inputs},
    {"mixup-only-labels", 0, set_only_labels},
    {"label-smoothing", 1, set_label_smoothing},
    {"cutmix-alpha", 1, set_cutmix_alpha},
    {"cutmix-switch-prob", 1, set_cutmix_switch},
    {"mix-prob", 1, set_mix_prob},
    {"augment", 1, set_augment},
    {"workers", 1, set_workers},
    {"stream", 1, set_stream},
    {"normalize", 1, set_normalize},
    {"image-size", 1, set_image_size},
    {"skip-bad-images", 0, set_skip_bad},
    {"lr", 1, set_lr},
    {"momentum", 1, set_momentum},
    {"nesterov", 0, set_nesterov},
    {"weight-decay", 1, set_weight_decay},
    {"schedule", 1, set_schedule},
    {"warmup-epochs", 1, set_warmup},
    {"seed", 1, set_seed},
    {"threads", 1, set_threads},
    {"out", 1, set_out},
    {"max-steps", 1, set_max_steps},
    {"save-every", 1, set_save_every},
    {"keep", 1, set_keep},
    {"val-split", 1, set_val_split},
    {"log-every", 1, set_log_every},
    {"no-tensorboard", 0, set_no_tensorboard},
    {"tb-histograms", 0, set_tb_histograms},
    {"sync-bn", 0, set_sync_bn},
    {"rescale-stats", 1, set_rescale_stats},
};

static const flag_entry *find_flag(const char *name)
{
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(flags[i].name, name)) return &flags[i];
    return NULL;
}

mx_flag_kind mx_train_flag_kind(const char *name)
{
    const flag_entry *f = find_flag(name);
    return !f ? MX_FLAG_UNKNOWN : f->takes_value ? MX_FLAG_VALUE : MX_FLAG_SWITCH;
}

mx_status mx_train_config_set(mx_train_config *cfg, const char *name, const char *value)
{
    const flag_entry *f = find_flag(name);
    if (!f) return mx_error_set(MX_ERR_ARG, "unknown setting '%s'", name);
    char what[64];
    snprintf(what, sizeof what, "--%s", name);
    int on = 1;
    if (!f->takes_value && value) {
        mx_status st = mx_parse_bool(what, value, &on);
        if (st != MX_OK) return st;
    } else if (f->takes_value && !value) {
        return mx_error_set(MX_ERR_ARG, "%s needs a value", what);
    }
    return f->set(cfg, what, value, on);
}

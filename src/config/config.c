/* The run configuration: defaults, the names of its choices, and validation
 * (each setting by the table's range, then the checks across settings). */
#include <stdio.h>
#include <string.h>

#include "config_internal.h"
#include "mixreg/augment.h"
#include "mixreg/parse.h"

static const char *const mode_names[] = {"batch", "pair", "elem"};
static const char *const partner_names[] = {"perm", "flip", "roll"};

const char *mx_mix_mode_name(mx_mix_mode mode) { return (unsigned)mode < 3 ? mode_names[mode] : "?"; }
const char *mx_partner_name(mx_partner partner) { return (unsigned)partner < 3 ? partner_names[partner] : "?"; }

const char *mx_rescale_source_name(mx_rescale_source source)
{
    return source == MX_RESCALE_CLEAN ? "clean" : source == MX_RESCALE_AUGMENTED ? "augmented" : "?";
}

mx_status mx_rescale_source_parse(const char *what, const char *text, mx_rescale_source *out)
{
    if (!strcmp(text, "augmented")) *out = MX_RESCALE_AUGMENTED;
    else if (!strcmp(text, "clean")) *out = MX_RESCALE_CLEAN;
    else return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected augmented or clean)", what, text);
    return MX_OK;
}

mx_status mx_label_kind_parse(const char *what, const char *text, mx_label_kind *out)
{
    if (!strcmp(text, "fine")) *out = MX_LABEL_FINE;
    else if (!strcmp(text, "coarse")) *out = MX_LABEL_COARSE;
    else return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected fine or coarse)", what, text);
    return MX_OK;
}

mx_status mx_mix_mode_parse(const char *text, mx_mix_mode *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(text, mode_names[i])) {
            *out = (mx_mix_mode)i;
            return MX_OK;
        }
    return mx_error_set(MX_ERR_ARG, "--mixup-mode: unknown '%s' (expected batch, pair or elem)", text);
}

mx_status mx_partner_parse(const char *text, mx_partner *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(text, partner_names[i])) {
            *out = (mx_partner)i;
            return MX_OK;
        }
    return mx_error_set(MX_ERR_ARG, "--mixup-partner: unknown '%s' (expected perm, flip or roll)", text);
}

void mx_train_config_default(mx_train_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->data, sizeof cfg->data, "fashion-mnist");
    snprintf(cfg->model.arch, sizeof cfg->model.arch, "mlp");
    cfg->model.num_hidden = 2;
    cfg->model.hidden[0] = cfg->model.hidden[1] = 512;
    cfg->model.backend = MX_BACKEND_CPU;
    cfg->epochs = 20;
    cfg->batch_size = 128;
    cfg->mixup = mx_mixup_config_default();
    cfg->lr = 0.05;
    cfg->momentum = 0.9;
    cfg->nesterov = 0;
    cfg->weight_decay = 5e-4;
    snprintf(cfg->schedule, sizeof cfg->schedule, "cosine");
    cfg->warmup_epochs = 1;
    cfg->seed = 0;
    cfg->threads = 0;
    cfg->save_every = 1;
    cfg->keep = 2;
    cfg->log_every = 50;
    cfg->tensorboard = 1;
    snprintf(cfg->augment, sizeof cfg->augment, "none");
    cfg->cutmix = mx_cutmix_config_default();
    cfg->image_size = 224;
    cfg->stream = MX_STREAMING_AUTO;
    snprintf(cfg->normalize, sizeof cfg->normalize, "computed");
}

mx_status mx_save_every_parse(const char *text, size_t *every, int *in_steps)
{
    const mx_setting *s = mx_setting_by_flag("save-every");
    /* The number is the sign and digits up front; the rest is the unit. */
    size_t len = strspn(text, "+-");
    len += strspn(text + len, "0123456789");
    const char *unit = text + len;
    int steps;
    if (!*unit || !strcmp(unit, "epochs") || !strcmp(unit, "epoch")) steps = 0;
    else if (!strcmp(unit, "steps") || !strcmp(unit, "step")) steps = 1;
    else return mx_error_set(MX_ERR_ARG, "--save-every: '%s' is not N, Nepochs or Nsteps", text);
    size_t n;
    mx_status st = mx_parse_size_n("--save-every", text, len, (size_t)s->min, (size_t)s->max, &n);
    if (st != MX_OK) return st;
    *every = n;
    *in_steps = steps;
    return MX_OK;
}

/* The checks that involve more than one setting. */
static mx_status validate_across(const mx_train_config *cfg)
{
    if (cfg->nesterov && cfg->momentum == 0) return mx_error_set(MX_ERR_ARG, "--nesterov needs --momentum > 0");
    if (cfg->warmup_epochs > (double)cfg->epochs)
        return mx_error_set(MX_ERR_ARG, "--warmup-epochs must be in [0, epochs] (%zu), got %g", cfg->epochs,
                            cfg->warmup_epochs);
    if (cfg->model.precision == MX_PRECISION_BF16 && cfg->model.backend != MX_BACKEND_CPU)
        return mx_error_set(MX_ERR_ARG, "--precision bf16 needs --backend cpu");
    if (cfg->sync_bn && cfg->model.backend != MX_BACKEND_CPU)
        return mx_error_set(MX_ERR_ARG, "--sync-bn needs the cpu backend (the ref backend's batch norm has no sync form)");
    if (cfg->labels == MX_LABEL_COARSE && strncmp(cfg->data, "cifar100:", 9))
        return mx_error_set(MX_ERR_ARG, "--label coarse needs --data cifar100:DIR");
    if (!cfg->mixup.mix_inputs && !cfg->mixup.mix_labels)
        return mx_error_set(MX_ERR_ARG, "--mixup-only-inputs and --mixup-only-labels exclude each other");
    mx_augment_config augment;
    mx_status st = mx_augment_parse(cfg->augment, &augment);
    if (st != MX_OK) return st;
    if (augment.crop_height || augment.crop_width)
        return mx_error_set(MX_ERR_ARG, "--augment: a crop size other than the image's is not supported yet (the "
                            "model's input would differ at evaluation); use crop:PAD");
    int folder = !strncmp(cfg->data, "folder:", 7);
    if (augment.resized_crop && !folder)
        return mx_error_set(MX_ERR_ARG, "--augment rrc needs an image folder (--data folder:DIR): it crops the "
                            "original images");
    if (augment.resized_crop && cfg->stream == MX_STREAMING_OFF)
        return mx_error_set(MX_ERR_ARG, "--augment rrc crops the original images, which --stream off does not keep "
                            "(use --stream auto or on)");
    if (cfg->stream == MX_STREAMING_ON && !folder)
        return mx_error_set(MX_ERR_ARG, "--stream on needs an image folder (--data folder:DIR); other data is read "
                            "into memory");
    if ((st = mx_cutmix_config_validate(&cfg->cutmix, &cfg->mixup)) != MX_OK) return st;
    return mx_mixup_config_validate(&cfg->mixup);
}

mx_status mx_train_config_validate(const mx_train_config *cfg)
{
    const mx_setting *table;
    size_t count = mx_settings(&table);
    for (size_t i = 0; i < count; i++) {
        mx_status st = mx_setting_check(&table[i], cfg);
        if (st != MX_OK) return st;
    }
    return validate_across(cfg);
}

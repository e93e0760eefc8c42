/* The run configuration: defaults, validation, and its JSON form (stored in
 * config.json and in the checkpoint's metadata so a run explains itself). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/augment.h"
#include "mixreg/optim.h"
#include "mixreg/source.h"
#include "mixreg/train.h"

static const char *const mode_names[] = {"batch", "pair", "elem"};
static const char *const partner_names[] = {"perm", "flip", "roll"};

const char *mx_mix_mode_name(mx_mix_mode mode) { return (unsigned)mode < 3 ? mode_names[mode] : "?"; }
const char *mx_partner_name(mx_partner partner) { return (unsigned)partner < 3 ? partner_names[partner] : "?"; }

const char *mx_rescale_source_name(mx_rescale_source source)
{
    return source == MX_RESCALE_CLEAN ? "clean" : "augmented";
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

mx_status mx_train_data_load(const mx_train_config *cfg, const char *spec, const char *split, mx_dataset *out)
{
    mx_data_options opts = mx_data_options_default();
    opts.labels = cfg->labels;
    opts.image_size = cfg->image_size;
    opts.skip_bad = cfg->skip_bad_images;
    opts.stream = cfg->stream;
    /* The random resized crop works on the original images, so a training
     * set it augments is streamed whatever its size. */
    mx_augment_config augment;
    if (!strcmp(split, "train") && opts.stream == MX_STREAMING_AUTO && mx_augment_parse(cfg->augment, &augment) == MX_OK &&
        augment.resized_crop)
        opts.stream = MX_STREAMING_ON;
    if (!spec) spec = cfg->data;
    mx_status st = mx_data_load_with(spec, split, &opts, out);
    if (st == MX_OK && opts.skipped)
        fprintf(stderr, "mixreg: %s (%s): left out %zu image%s that failed to decode\n", spec, split, opts.skipped,
                opts.skipped == 1 ? "" : "s");
    return st;
}

void mx_train_data_report(const char *spec, const char *split, const mx_dataset *ds)
{
    size_t bad = mx_dataset_bad_images(ds);
    if (bad)
        fprintf(stderr, "mixreg: %s (%s): %zu image%s failed to decode and %s replaced by the next image of %s class\n",
                spec, split, bad, bad == 1 ? "" : "s", bad == 1 ? "was" : "were", bad == 1 ? "its" : "their");
}

mx_status mx_train_normalizer(const mx_train_config *cfg, const mx_dataset *train, mx_normalizer *nz)
{
    float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
    if (train->channels > MX_MAX_CHANNELS)
        return mx_error_set(MX_ERR_ARG, "data has %zu channels, at most %d are supported", train->channels, MX_MAX_CHANNELS);
    if (!strcmp(cfg->normalize, "computed")) {
        mx_status st = mx_dataset_channel_stats(train, mean, std);
        if (st == MX_OK) st = mx_normalizer_init(nz, train->channels, mean, std);
        return st == MX_OK ? MX_OK : mx_error_wrap(st, "training data");
    }
    size_t channels;
    mx_status st = mx_normalize_parse(cfg->normalize, &channels, mean, std);
    if (st != MX_OK) return st;
    if (channels != train->channels)
        return mx_error_set(MX_ERR_ARG, "--normalize: '%s' gives %zu channel%s but the data has %zu", cfg->normalize,
                            channels, channels == 1 ? "" : "s", train->channels);
    return mx_normalizer_init(nz, channels, mean, std);
}

mx_status mx_save_every_parse(const char *text, size_t *every, int *in_steps)
{
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (end == text || v == 0 || text[0] == '-')
        return mx_error_set(MX_ERR_ARG, "--save-every: '%s' is not N, Nepochs or Nsteps with N >= 1", text);
    if (!*end || !strcmp(end, "epochs") || !strcmp(end, "epoch")) {
        *in_steps = 0;
    } else if (!strcmp(end, "steps") || !strcmp(end, "step")) {
        *in_steps = 1;
    } else {
        return mx_error_set(MX_ERR_ARG, "--save-every: '%s' is not N, Nepochs or Nsteps with N >= 1", text);
    }
    *every = (size_t)v;
    return MX_OK;
}

mx_status mx_train_config_validate(const mx_train_config *cfg)
{
    if (cfg->epochs == 0) return mx_error_set(MX_ERR_ARG, "--epochs must be at least 1");
    if (cfg->batch_size == 0 || cfg->batch_size > 65536) return mx_error_set(MX_ERR_ARG, "--batch-size must be in 1..65536");
    if (!(cfg->lr > 0) || !isfinite(cfg->lr)) return mx_error_set(MX_ERR_ARG, "--lr must be a positive number");
    if (!(cfg->momentum >= 0 && cfg->momentum < 1)) return mx_error_set(MX_ERR_ARG, "--momentum must be in [0, 1)");
    if (cfg->nesterov && cfg->momentum == 0) return mx_error_set(MX_ERR_ARG, "--nesterov needs --momentum > 0");
    if (!(cfg->weight_decay >= 0) || !isfinite(cfg->weight_decay))
        return mx_error_set(MX_ERR_ARG, "--weight-decay must be >= 0");
    if (!(cfg->warmup_epochs >= 0) || cfg->warmup_epochs > (double)cfg->epochs)
        return mx_error_set(MX_ERR_ARG, "--warmup-epochs must be in [0, epochs]");
    if (cfg->image_size < 8 || cfg->image_size > 4096) return mx_error_set(MX_ERR_ARG, "--image-size must be in 8..4096");
    if (cfg->workers > 64) return mx_error_set(MX_ERR_ARG, "--workers must be in 0..64");
    if (cfg->threads < 0 || cfg->threads > 1024) return mx_error_set(MX_ERR_ARG, "--threads must be in 0..1024");
    if (cfg->model.backend != MX_BACKEND_REF && cfg->model.backend != MX_BACKEND_CPU)
        return mx_error_set(MX_ERR_ARG, "--backend must be ref or cpu");
    if (cfg->model.precision != MX_PRECISION_FP32 && cfg->model.precision != MX_PRECISION_BF16)
        return mx_error_set(MX_ERR_ARG, "--precision must be fp32 or bf16");
    if (cfg->model.precision == MX_PRECISION_BF16 && cfg->model.backend != MX_BACKEND_CPU)
        return mx_error_set(MX_ERR_ARG, "--precision bf16 needs --backend cpu");
    if (cfg->save_every == 0) return mx_error_set(MX_ERR_ARG, "--save-every must be at least 1");
    if (!(cfg->val_split >= 0 && cfg->val_split < 1)) return mx_error_set(MX_ERR_ARG, "--val-split must be in [0, 1)");
    if (cfg->labels == MX_LABEL_COARSE && strncmp(cfg->data, "cifar100:", 9))
        return mx_error_set(MX_ERR_ARG, "--label coarse needs --data cifar100:DIR");
    if (!cfg->mixup.mix_inputs && !cfg->mixup.mix_labels)
        return mx_error_set(MX_ERR_ARG, "--mixup-only-inputs and --mixup-only-labels exclude each other");
    mx_schedule schedule;
    mx_status st = mx_schedule_parse(cfg->schedule, &schedule);
    if (st != MX_OK) return st;
    mx_augment_config augment;
    if ((st = mx_augment_parse(cfg->augment, &augment)) != MX_OK) return st;
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
    if (strcmp(cfg->normalize, "computed")) {
        size_t channels;
        float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
        if ((st = mx_normalize_parse(cfg->normalize, &channels, mean, std)) != MX_OK) return st;
    }
    if ((st = mx_cutmix_config_validate(&cfg->cutmix, &cfg->mixup)) != MX_OK) return st;
    return mx_mixup_config_validate(&cfg->mixup);
}

char *mx_train_config_to_json(const mx_train_config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "data", cfg->data);
    cJSON_AddStringToObject(o, "model", cfg->model.arch);
    cJSON *hidden = cJSON_AddArrayToObject(o, "hidden");
    for (size_t i = 0; hidden && i < cfg->model.num_hidden; i++)
        cJSON_AddItemToArray(hidden, cJSON_CreateNumber((double)cfg->model.hidden[i]));
    cJSON_AddStringToObject(o, "backend", mx_backend_name(cfg->model.backend));
    cJSON_AddStringToObject(o, "precision", mx_precision_name(cfg->model.precision));
    cJSON_AddNumberToObject(o, "epochs", (double)cfg->epochs);
    cJSON_AddNumberToObject(o, "batch_size", (double)cfg->batch_size);
    cJSON_AddNumberToObject(o, "mixup_alpha", cfg->mixup.alpha);
    cJSON_AddStringToObject(o, "mixup_mode", mx_mix_mode_name(cfg->mixup.mode));
    cJSON_AddStringToObject(o, "mixup_partner", mx_partner_name(cfg->mixup.partner));
    cJSON_AddBoolToObject(o, "mixup_theta", cfg->mixup.theta_form);
    cJSON_AddBoolToObject(o, "mixup_inputs", cfg->mixup.mix_inputs);
    cJSON_AddBoolToObject(o, "mixup_labels", cfg->mixup.mix_labels);
    cJSON_AddNumberToObject(o, "label_smoothing", cfg->mixup.label_smoothing);
    cJSON_AddNumberToObject(o, "lr", cfg->lr);
    cJSON_AddNumberToObject(o, "momentum", cfg->momentum);
    cJSON_AddBoolToObject(o, "nesterov", cfg->nesterov);
    cJSON_AddNumberToObject(o, "weight_decay", cfg->weight_decay);
    cJSON_AddStringToObject(o, "weight_decay_mode", "l2");
    cJSON_AddStringToObject(o, "schedule", cfg->schedule);
    cJSON_AddNumberToObject(o, "warmup_epochs", cfg->warmup_epochs);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
    cJSON_AddRawToObject(o, "seed", seed);
    cJSON_AddNumberToObject(o, "threads", cfg->threads);
    cJSON_AddNumberToObject(o, "max_steps", (double)cfg->max_steps);
    cJSON_AddStringToObject(o, "out", cfg->out);
    cJSON_AddNumberToObject(o, "save_every", (double)cfg->save_every);
    cJSON_AddStringToObject(o, "save_every_unit", cfg->save_every_steps ? "steps" : "epochs");
    cJSON_AddNumberToObject(o, "keep", (double)cfg->keep);
    cJSON_AddNumberToObject(o, "val_split", cfg->val_split);
    cJSON_AddNumberToObject(o, "log_every", (double)cfg->log_every);
    cJSON_AddBoolToObject(o, "tensorboard", cfg->tensorboard);
    cJSON_AddBoolToObject(o, "tb_histograms", cfg->tb_histograms);
    cJSON_AddBoolToObject(o, "sync_bn", cfg->sync_bn);
    cJSON_AddStringToObject(o, "rescale_stats", mx_rescale_source_name(cfg->rescale_stats));
    cJSON_AddStringToObject(o, "label", cfg->labels == MX_LABEL_COARSE ? "coarse" : "fine");
    cJSON_AddStringToObject(o, "augment", cfg->augment);
    cJSON_AddStringToObject(o, "stream", mx_streaming_name(cfg->stream));
    cJSON_AddStringToObject(o, "normalize", cfg->normalize);
    cJSON_AddNumberToObject(o, "workers", (double)cfg->workers);
    cJSON_AddNumberToObject(o, "image_size", (double)cfg->image_size);
    cJSON_AddBoolToObject(o, "skip_bad_images", cfg->skip_bad_images);
    cJSON_AddNumberToObject(o, "cutmix_alpha", cfg->cutmix.alpha);
    cJSON_AddNumberToObject(o, "cutmix_switch_prob", cfg->cutmix.switch_prob);
    cJSON_AddNumberToObject(o, "mix_prob", cfg->cutmix.prob);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

static mx_status get_size(const cJSON *item, size_t *out)
{
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || floor(item->valuedouble) != item->valuedouble)
        return mx_error_set(MX_ERR_FORMAT, "config: '%s' must be a non-negative integer", item->string);
    *out = (size_t)item->valuedouble;
    return MX_OK;
}

static mx_status get_number(const cJSON *item, double *out)
{
    if (!cJSON_IsNumber(item)) return mx_error_set(MX_ERR_FORMAT, "config: '%s' must be a number", item->string);
    *out = item->valuedouble;
    return MX_OK;
}

static mx_status get_bool(const cJSON *item, int *out)
{
    if (!cJSON_IsBool(item)) return mx_error_set(MX_ERR_FORMAT, "config: '%s' must be true or false", item->string);
    *out = cJSON_IsTrue(item);
    return MX_OK;
}

static mx_status get_string(const cJSON *item, char *out, size_t cap)
{
    if (!cJSON_IsString(item) || strlen(item->valuestring) >= cap)
        return mx_error_set(MX_ERR_FORMAT, "config: '%s' must be a string shorter than %zu", item->string, cap);
    strcpy(out, item->valuestring);
    return MX_OK;
}

static mx_status get_hidden(const cJSON *item, mx_model_spec *spec)
{
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) > MX_MAX_HIDDEN)
        return mx_error_set(MX_ERR_FORMAT, "config: 'hidden' must be a list of at most %d widths", MX_MAX_HIDDEN);
    spec->num_hidden = 0;
    for (const cJSON *w = item->child; w; w = w->next) {
        mx_status st = get_size(w, &spec->hidden[spec->num_hidden]);
        if (st != MX_OK || spec->hidden[spec->num_hidden] == 0)
            return mx_error_set(MX_ERR_FORMAT, "config: 'hidden' widths must be positive integers");
        spec->num_hidden++;
    }
    return MX_OK;
}

static mx_status apply_key(const cJSON *item, mx_train_config *cfg)
{
    const char *k = item->string;
    char text[64];
    double seed = 0;
    mx_status st;
    if (!strcmp(k, "data")) return get_string(item, cfg->data, sizeof cfg->data);
    if (!strcmp(k, "model")) return get_string(item, cfg->model.arch, sizeof cfg->model.arch);
    if (!strcmp(k, "hidden")) return get_hidden(item, &cfg->model);
    if (!strcmp(k, "backend")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_backend_parse("config: backend", text, &cfg->model.backend);
    }
    if (!strcmp(k, "precision")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_precision_parse("config: precision", text, &cfg->model.precision);
    }
    if (!strcmp(k, "epochs")) return get_size(item, &cfg->epochs);
    if (!strcmp(k, "batch_size")) return get_size(item, &cfg->batch_size);
    if (!strcmp(k, "mixup_alpha")) return get_number(item, &cfg->mixup.alpha);
    if (!strcmp(k, "mixup_mode")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_mix_mode_parse(text, &cfg->mixup.mode);
    }
    if (!strcmp(k, "mixup_partner")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_partner_parse(text, &cfg->mixup.partner);
    }
    if (!strcmp(k, "mixup_theta")) return get_bool(item, &cfg->mixup.theta_form);
    if (!strcmp(k, "mixup_inputs")) return get_bool(item, &cfg->mixup.mix_inputs);
    if (!strcmp(k, "mixup_labels")) return get_bool(item, &cfg->mixup.mix_labels);
    if (!strcmp(k, "label_smoothing")) return get_number(item, &cfg->mixup.label_smoothing);
    if (!strcmp(k, "lr")) return get_number(item, &cfg->lr);
    if (!strcmp(k, "momentum")) return get_number(item, &cfg->momentum);
    if (!strcmp(k, "nesterov")) return get_bool(item, &cfg->nesterov);
    if (!strcmp(k, "weight_decay")) return get_number(item, &cfg->weight_decay);
    if (!strcmp(k, "weight_decay_mode")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return strcmp(text, "l2") ? mx_error_set(MX_ERR_FORMAT, "config: weight_decay_mode '%s' unsupported", text) : MX_OK;
    }
    if (!strcmp(k, "schedule")) return get_string(item, cfg->schedule, sizeof cfg->schedule);
    if (!strcmp(k, "warmup_epochs")) return get_number(item, &cfg->warmup_epochs);
    if (!strcmp(k, "seed")) {
        /* Printed as a raw integer; cJSON reads it as a double, exact below 2^53. */
        if ((st = get_number(item, &seed)) != MX_OK) return st;
        cfg->seed = (uint64_t)seed;
        return MX_OK;
    }
    if (!strcmp(k, "threads")) {
        size_t t;
        if ((st = get_size(item, &t)) != MX_OK) return st;
        cfg->threads = (int)t;
        return MX_OK;
    }
    if (!strcmp(k, "max_steps")) return get_size(item, &cfg->max_steps);
    if (!strcmp(k, "out")) return get_string(item, cfg->out, sizeof cfg->out);
    if (!strcmp(k, "save_every")) return get_size(item, &cfg->save_every);
    if (!strcmp(k, "save_every_unit")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        if (strcmp(text, "steps") && strcmp(text, "epochs"))
            return mx_error_set(MX_ERR_FORMAT, "config: save_every_unit '%s' is not steps or epochs", text);
        cfg->save_every_steps = !strcmp(text, "steps");
        return MX_OK;
    }
    if (!strcmp(k, "keep")) return get_size(item, &cfg->keep);
    if (!strcmp(k, "val_split")) return get_number(item, &cfg->val_split);
    if (!strcmp(k, "log_every")) return get_size(item, &cfg->log_every);
    if (!strcmp(k, "tensorboard")) return get_bool(item, &cfg->tensorboard);
    if (!strcmp(k, "tb_histograms")) return get_bool(item, &cfg->tb_histograms);
    if (!strcmp(k, "sync_bn")) return get_bool(item, &cfg->sync_bn);
    if (!strcmp(k, "augment")) return get_string(item, cfg->augment, sizeof cfg->augment);
    if (!strcmp(k, "normalize")) return get_string(item, cfg->normalize, sizeof cfg->normalize);
    if (!strcmp(k, "stream")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_streaming_parse("config: stream", text, &cfg->stream);
    }
    if (!strcmp(k, "workers")) return get_size(item, &cfg->workers);
    if (!strcmp(k, "image_size")) return get_size(item, &cfg->image_size);
    if (!strcmp(k, "skip_bad_images")) return get_bool(item, &cfg->skip_bad_images);
    if (!strcmp(k, "cutmix_alpha")) return get_number(item, &cfg->cutmix.alpha);
    if (!strcmp(k, "cutmix_switch_prob")) return get_number(item, &cfg->cutmix.switch_prob);
    if (!strcmp(k, "mix_prob")) return get_number(item, &cfg->cutmix.prob);
    if (!strcmp(k, "label")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_label_kind_parse("config: label", text, &cfg->labels);
    }
    if (!strcmp(k, "rescale_stats")) {
        if ((st = get_string(item, text, sizeof text)) != MX_OK) return st;
        return mx_rescale_source_parse("config: rescale_stats", text, &cfg->rescale_stats);
    }
    return mx_error_set(MX_ERR_FORMAT, "config: unknown key '%s'", k);
}

mx_status mx_train_config_from_json(const char *json, mx_train_config *cfg)
{
    mx_train_config_default(cfg);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mx_error_set(MX_ERR_FORMAT, "config: not a JSON object");
    }
    mx_status st = MX_OK;
    for (const cJSON *item = root->child; st == MX_OK && item; item = item->next) st = apply_key(item, cfg);
    cJSON_Delete(root);
    return st;
}

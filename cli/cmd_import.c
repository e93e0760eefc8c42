#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "mixreg/augment.h"
#include "mixreg/parse.h"
#include "mixreg/theta.h"
#include "mixreg/train.h"
#include "mixreg/weights_import.h"

static const char import_help[] =
    "usage: mixreg import FILE.safetensors|FILE.pt --arch ARCH --out RUN_DIR [options]\n"
    "\n"
    "Turns a PyTorch state dict (torchvision's or timm's names; saved with\n"
    "safetensors or torch.save) into a run directory that eval, predict and analyze\n"
    "read. Every tensor of the architecture must be in the file with its shape;\n"
    "F16, BF16 and F64 tensors become float32. A .pt file is read as data, never run.\n"
    "\n"
    "  --arch ARCH            the architecture (resnet50: torchvision's and timm's ResNet-50)\n"
    "  --out RUN_DIR          the new run directory (must not hold a run)\n"
    "  --input CxHxW          the input the model is planned for (default: C from the\n"
    "                         file's first convolution, 224x224)\n"
    "  --classes N            check that the classifier has N classes (default: as the file)\n"
    "  --normalize imagenet|M,M,M/S,S,S  the input normalisation the model was trained\n"
    "                         with (default imagenet: torchvision's values)\n"
    "  --rescale-from DATA    compute the rescaled prediction's x_bar (mean training input)\n"
    "                         and y_bar (class frequencies) from DATA's training split, as\n"
    "                         train does (needs --alpha)\n"
    "  --alpha A              the Mixup alpha the model was trained with: theta_bar\n"
    "  --mix-prob P           the probability a batch was mixed at all (default 1)\n"
    "  --augment SPEC         the training augmentation x_bar is computed under (default\n"
    "                         none: the evaluation images; e.g. rrc,flip for ImageNet)\n"
    "  --label fine|coarse    CIFAR-100's labels, for --rescale-from\n"
    "  --data DATA            the data eval and predict use by default (default: the\n"
    "                         --rescale-from data)\n"
    "  --allow-extra          ignore tensors the architecture does not have\n"
    "  --threads T            (default: all cores)\n";

typedef struct {
    const char *file, *arch, *out, *rescale_from, *data;
    mx_import_options import;
    int have_alpha, threads;
    mx_train_config cfg;
} import_options;

/* A training setting the run records, checked as train checks it. */
static void set_setting(import_options *o, const char *name, const char *value)
{
    if (mx_train_config_set(&o->cfg, name, value) != MX_OK) cli_usage_error("import: %s", mx_error_message());
}

static void parse_input(const char *text, mx_import_options *opt)
{
    size_t dims[3];
    const char *p = text;
    for (size_t n = 0; n < 3; n++) {
        const char *x = strchr(p, 'x');
        size_t len = x ? (size_t)(x - p) : strlen(p);
        /* Exactly three parts: the last one ends the text. */
        if ((n < 2) != (x != NULL) ||
            mx_parse_size_n("--input", p, len, n == 0 ? 1 : 8, n == 0 ? MX_MAX_CHANNELS : 4096, &dims[n]) != MX_OK)
            cli_usage_error("import: --input must be CxHxW (C 1..%d, H and W 8..4096), got '%s'", MX_MAX_CHANNELS, text);
        p = x ? x + 1 : p;
    }
    opt->channels = dims[0];
    opt->height = dims[1];
    opt->width = dims[2];
}

static void parse_import_flags(int argc, char **argv, import_options *o)
{
    cli_args a;
    cli_args_init(&a, "import", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            fputs(import_help, stdout);
            exit(0);
        } else if (cli_flag_value(&a, "--arch")) {
            o->arch = a.value;
            set_setting(o, "model", a.value);
        } else if (cli_flag_value(&a, "--out")) {
            o->out = a.value;
            set_setting(o, "out", a.value);
        } else if (cli_flag_value(&a, "--input")) {
            parse_input(a.value, &o->import);
        } else if (cli_flag_value(&a, "--classes")) {
            o->import.classes = cli_parse_size(&a, "--classes", 1, 1000000);
        } else if (cli_flag_value(&a, "--rescale-from")) {
            o->rescale_from = a.value;
        } else if (cli_flag_value(&a, "--alpha")) {
            o->have_alpha = 1;
            set_setting(o, "mixup-alpha", a.value);
        } else if (cli_flag_value(&a, "--data")) {
            o->data = a.value;
        } else if (cli_flag_value(&a, "--mix-prob")) {
            set_setting(o, "mix-prob", a.value);
        } else if (cli_flag_value(&a, "--normalize")) {
            set_setting(o, "normalize", a.value);
        } else if (cli_flag_value(&a, "--augment")) {
            set_setting(o, "augment", a.value);
        } else if (cli_flag_value(&a, "--label")) {
            set_setting(o, "label", a.value);
        } else if (cli_flag_switch(&a, "--allow-extra")) {
            o->import.allow_extra = 1;
        } else if (cli_flag_value(&a, "--threads")) {
            o->threads = (int)cli_parse_size(&a, "--threads", 1, 1024);
        } else if (cli_current(&a)[0] != '-' && !o->file) {
            o->file = cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!o->file) cli_usage_error("import: missing FILE (see mixreg import --help)");
    if (!o->arch) cli_usage_error("import: missing --arch (e.g. --arch resnet50)");
    if (!o->out) cli_usage_error("import: missing --out RUN_DIR");
    if (!o->rescale_from != !o->have_alpha)
        cli_usage_error("import: --rescale-from and --alpha go together (x_bar and y_bar from the data, theta_bar from alpha)");
    if (!strcmp(o->cfg.normalize, "computed"))
        cli_usage_error("import: --normalize computed: give the normalisation the model was trained with");
    cli_check_data("import", o->rescale_from);
    cli_check_data("import", o->data);
}

/* The run's config: what import was told, so eval and predict load the data as the model expects. */
static void fill_config(import_options *o)
{
    const char *data = o->data ? o->data : o->rescale_from;
    if (data) set_setting(o, "data", data);
    if (o->import.height == o->import.width) {
        char side[32];
        snprintf(side, sizeof side, "%zu", o->import.height);
        set_setting(o, "image-size", side);  /* image folders are brought to this side */
    }
    if (mx_train_config_validate(&o->cfg) != MX_OK) cli_usage_error("import: %s", mx_error_message());
}

/* x_bar, y_bar and theta_bar from DATA's training split, as mixreg train computes them. */
static mx_status rescale_from_data(const import_options *o, mx_run *run, size_t *n_images)
{
    const mx_model_spec *spec = mx_model_get_spec(run->model);
    mx_dataset train = {0};
    mx_status st = mx_train_data_load(&run->config, o->rescale_from, "train", &train);
    if (st == MX_OK && (train.channels != spec->in_channels || train.height != spec->in_height ||
                        train.width != spec->in_width))
        st = mx_error_set(MX_ERR_ARG, "%s: images of %zux%zux%zu, the model takes %zux%zux%zu (--input)", o->rescale_from,
                          train.channels, train.height, train.width, spec->in_channels, spec->in_height, spec->in_width);
    if (st == MX_OK && train.num_classes != spec->num_classes)
        st = mx_error_set(MX_ERR_ARG, "%s has %zu classes, the model %zu", o->rescale_from, train.num_classes,
                          spec->num_classes);
    mx_theta_stats theta;
    if (st == MX_OK) st = mx_theta_stats_mixed(run->config.mixup.alpha, run->config.cutmix.prob, &theta);
    mx_augment_config augment = mx_augment_config_none();
    if (st == MX_OK) st = mx_augment_parse(run->config.augment, &augment);
    if (st == MX_OK)
        st = mx_rescale_stats_compute_augmented(&run->rescale, &train, &run->normalizer, theta.theta_bar, &augment,
                                                run->config.seed, 0);
    /* An image folder's class names go with the model, so eval matches a val/ split by name. */
    if (st == MX_OK && train.class_names) st = mx_class_names_copy(train.class_names, train.num_classes, &run->class_names);
    mx_train_data_report(o->rescale_from, "train", &train);
    *n_images = train.n;
    mx_dataset_free(&train);
    return st;
}

/* Without data: theta_bar 1, which makes the rescaled prediction the plain one. */
static void identity_rescale(mx_run *run)
{
    run->rescale.theta_bar = 1.0;
    for (size_t c = 0; c < run->rescale.num_classes; c++) run->rescale.y_bar[c] = 1.0f / (float)run->rescale.num_classes;
}

int cmd_import(int argc, char **argv)
{
    import_options o;
    memset(&o, 0, sizeof o);
    mx_train_config_default(&o.cfg);
    o.import.height = o.import.width = 224;
    set_setting(&o, "normalize", "imagenet");
    set_setting(&o, "mixup-alpha", "0");  /* unknown unless --alpha says: recorded as no mixing, theta_bar 1 */
    parse_import_flags(argc, argv, &o);
    o.import.arch = o.arch;
    fill_config(&o);
    mx_set_threads(o.threads);

    mx_weights_file wf;
    mx_status st = mx_weights_file_read(o.file, &wf);
    if (st != MX_OK) return cli_report(st);
    mx_run run;
    memset(&run, 0, sizeof run);
    run.config = o.cfg;
    run.best_score = -1;
    st = mx_weights_import(&wf, &o.import, &run.model);
    mx_weights_file_free(&wf);
    if (st != MX_OK) {
        mx_error_wrap(st, "%s", o.file);
        return cli_report(st);
    }
    const mx_model_spec *spec = mx_model_get_spec(run.model);
    size_t channels;
    float mean[MX_MAX_CHANNELS], std[MX_MAX_CHANNELS];
    st = mx_normalize_parse(run.config.normalize, &channels, mean, std);
    if (st == MX_OK && channels != spec->in_channels)
        st = mx_error_set(MX_ERR_ARG, "--normalize %s gives %zu channels, the model takes %zu", run.config.normalize,
                          channels, spec->in_channels);
    if (st == MX_OK) st = mx_normalizer_init(&run.normalizer, channels, mean, std);
    if (st == MX_OK) st = mx_rescale_stats_alloc(&run.rescale, mx_model_input_size(run.model), spec->num_classes);
    size_t n_images = 0;
    if (st == MX_OK && o.rescale_from) st = rescale_from_data(&o, &run, &n_images);
    else if (st == MX_OK) identity_rescale(&run);
    if (st == MX_OK) st = mx_import_save_run(o.out, &run);
    if (st == MX_OK) {
        printf("imported %s (%zux%zux%zu input, %zu classes, %zu parameters) from %s into %s\n", spec->arch,
               spec->in_channels, spec->in_height, spec->in_width, spec->num_classes, mx_model_param_count(run.model),
               o.file, o.out);
        if (o.rescale_from)
            printf("rescaled prediction: theta_bar %.6f (alpha %g), x_bar and y_bar from %zu training images of %s\n",
                   run.rescale.theta_bar, run.config.mixup.alpha, n_images, o.rescale_from);
        else
            printf("no --rescale-from: the rescaled prediction is the plain one (theta_bar 1)\n");
        if (!o.data && !o.rescale_from) printf("the run names no data: give eval and predict --data\n");
    }
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}

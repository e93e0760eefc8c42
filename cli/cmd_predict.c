/* mixreg predict: top-k classes for images (JPEG or PNG) or a dataset's test split,
 * with the paper's rescaled prediction by default for models trained with
 * mixup. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "mixreg/calibration.h"
#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"
#include "mixreg/folder.h"
#include "mixreg/image.h"
#include "mixreg/run.h"
#include "mixreg/source.h"
#include "mixreg/train.h"

static const char predict_help[] =
    "usage: mixreg predict RUN_DIR IMAGE... | --data D [options]\n"
    "\n"
    "Prints the top-k classes (index, and name for a model trained on an image folder)\n"
    "and probabilities for each image, or for the first\n"
    "--limit samples of a dataset's test split. Models trained with mixup use the\n"
    "paper's rescaled prediction unless --no-rescale is given.\n"
    "\n"
    "  --data SOURCE    predict the test split instead of images; SOURCE is one of\n"
    "                   " CLI_DATA_FORMS "\n"
    "  --limit N        samples of --data to predict (default 10)\n"
    "  --top K          classes to print per sample (default 3)\n"
    "  --no-rescale     the plain prediction\n"
    "IMAGE files are JPEG or PNG (recognised by their content). A model trained on an\n"
    "image folder takes any size (the folder's recipe: shorter side resized, centre\n"
    "crop); for other models images must have the model's height and width, and\n"
    "colour is averaged to grey for one-channel models.\n";

/* An image file (JPEG or PNG, recognised by content, decoded as the image
 * folder loader does) as the model's input, channels x height x width uint8.
 * A run trained on an image folder gets the folder's evaluation recipe (any
 * size: shorter side resized, centre crop); other runs' images must have the
 * model's height and width, and are averaged to grey for one-channel models. */
static mx_status load_image(const char *path, const mx_run *run, uint8_t *out)
{
    const mx_model_spec *spec = mx_model_get_spec(run->model);
    size_t channels = spec->in_channels, height = spec->in_height, width = spec->in_width;
    if (!strncmp(run->config.data, "folder:", 7) && channels == 3 && height == width)
        return mx_folder_load_file(path, height, out);
    mx_image img;
    mx_status st = mx_image_read(path, NULL, &img);
    if (st != MX_OK) return st;
    if (img.width != width || img.height != height) {
        st = mx_error_set(MX_ERR_FORMAT, "%s is %zux%zu but the model expects %zux%zu (width x height)", path,
                          img.width, img.height, width, height);
    } else {
        const size_t plane = height * width;
        for (size_t i = 0; i < plane; i++) {
            unsigned r = img.pixels[i], g = img.pixels[plane + i], b = img.pixels[2 * plane + i];
            for (size_t c = 0; c < channels; c++)
                out[c * plane + i] = (uint8_t)(channels == 1 ? (r + g + b + 1) / 3 : img.pixels[(c < 3 ? c : 2) * plane + i]);
        }
    }
    mx_image_free(&img);
    return st;
}

/* "name: c p  c p ...", the class's name in brackets after its index when the model has names. */
static void print_top(const char *name, const float *probs, size_t classes, size_t top, int label, char *const *names)
{
    printf("%s", name);
    if (label >= 0) printf(" (label %d)", label);
    printf(":");
    int used[4096] = {0};
    for (size_t k = 0; k < top && k < classes && classes <= 4096; k++) {
        size_t best = classes;
        for (size_t c = 0; c < classes; c++)
            if (!used[c] && (best == classes || probs[c] > probs[best])) best = c;
        used[best] = 1;
        if (names) printf("  %zu (%s) %.4f", best, names[best], probs[best]);
        else printf("  %zu %.4f", best, probs[best]);
    }
    printf("\n");
}

int cmd_predict(int argc, char **argv)
{
    const char *run_dir = NULL, *data = NULL;
    size_t limit = 10, top = 3, n_images = 0;
    int rescale = 1;
    char **images = calloc((size_t)argc + 1, sizeof *images);
    cli_args a;
    cli_args_init(&a, "predict", argc, argv);
    for (; cli_current(&a); cli_next(&a)) {
        if (cli_flag_switch(&a, "--help") || cli_flag_switch(&a, "-h")) {
            cli_print_help(predict_help);
            free(images);
            return 0;
        } else if (cli_flag_value(&a, "--data")) {
            data = a.value;
        } else if (cli_flag_value(&a, "--limit")) {
            limit = cli_parse_size(&a, "--limit", 1, (size_t)1 << 31);
        } else if (cli_flag_value(&a, "--top")) {
            top = cli_parse_size(&a, "--top", 1, 4096);
        } else if (cli_flag_switch(&a, "--no-rescale")) {
            rescale = 0;
        } else if (cli_current(&a)[0] != '-') {
            if (!run_dir) run_dir = cli_current(&a);
            else images[n_images++] = (char *)cli_current(&a);
        } else {
            cli_unknown_argument(&a);
        }
    }
    if (!run_dir) cli_usage_error("predict: missing RUN_DIR (see mixreg predict --help)");
    if (!n_images == !data) cli_usage_error("predict: give either IMAGE files or --data");
    cli_check_data("predict", data);
    mx_set_threads(0);
    mx_run run;
    mx_status st = mx_run_load(run_dir, 0, &run);  /* the weights; buffers once the batch is known */
    if (st != MX_OK) {
        free(images);
        return cli_report(st);
    }
    const mx_model_spec *spec = mx_model_get_spec(run.model);
    /* Plain where the rescaled prediction is not defined (CutMix, one-sided ablations). */
    const mx_rescale_stats *stats =
        rescale && run.rescale.theta_bar < 1.0 && !mx_train_config_rescale_undefined(&run.config) ? &run.rescale : NULL;
    mx_dataset ds = {0};
    if (data) {
        st = mx_train_data_load(&run.config, data, "test", &ds);
        if (st == MX_OK) st = cli_match_classes(&ds, data, "test", run.class_names, spec->num_classes);
        if (st == MX_OK && ds.n > limit) ds.n = limit;
    } else {
        size_t sample = spec->in_channels * spec->in_height * spec->in_width;
        ds = (mx_dataset){.n = n_images, .channels = spec->in_channels, .height = spec->in_height,
                          .width = spec->in_width, .num_classes = spec->num_classes};
        ds.pixels = malloc(n_images * sample + 1);
        ds.labels = calloc(n_images + 1, sizeof(int32_t));
        if (!ds.pixels || !ds.labels) st = mx_error_set(MX_ERR_NOMEM, "out of memory for %zu images", n_images);
        for (size_t i = 0; st == MX_OK && i < n_images; i++)
            st = load_image(images[i], &run, ds.pixels + i * sample);
    }
    size_t classes = spec->num_classes;
    float *logits = st == MX_OK ? malloc(ds.n * classes * sizeof(float) + 1) : NULL;
    int32_t *labels = st == MX_OK ? malloc(ds.n * sizeof(int32_t) + 1) : NULL;
    /* Inference buffers for batches of 256 samples, or all of them if fewer (within the memory budget). */
    if (st == MX_OK) st = mx_evaluate_plan(run.model, ds.n && ds.n < 256 ? ds.n : 256);
    /* Under mpirun each process predicts a shard; rank 0 gathers and prints. */
    if (st == MX_OK) st = mx_evaluate_logits_sharded(run.model, &ds, &run.normalizer, stats, logits, labels);
    if (st == MX_OK && mx_dist_is_root()) {
        mx_softmax_temperature(logits, ds.n, classes, 1.0, logits);
        printf("%s prediction (theta_bar %.4f)\n", stats ? "rescaled" : "plain", run.rescale.theta_bar);
        char name[64];
        for (size_t i = 0; i < ds.n; i++) {
            snprintf(name, sizeof name, "sample %zu", i);
            print_top(data ? name : images[i], logits + i * classes, classes, top, data ? labels[i] : -1, run.class_names);
        }
    }
    free(logits);
    free(labels);
    free(images);
    mx_dataset_free(&ds);
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}

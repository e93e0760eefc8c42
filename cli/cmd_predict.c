/* mixreg predict: top-k classes for images (PNG) or a dataset's test split,
 * with the paper's rescaled prediction by default for models trained with
 * mixup. */
#include <cairo.h>
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
#include "mixreg/run.h"
#include "mixreg/source.h"
#include "mixreg/train.h"

static const char predict_help[] =
    "usage: mixreg predict RUN_DIR IMAGE.png... | --data D [options]\n"
    "\n"
    "Prints the top-k classes and probabilities for each image, or for the first\n"
    "--limit samples of a dataset's test split. Models trained with mixup use the\n"
    "paper's rescaled prediction unless --no-rescale is given.\n"
    "\n"
    "  --data fashion-mnist|idx:DIR|DIR  predict the test split instead of images\n"
    "  --limit N        samples of --data to predict (default 10)\n"
    "  --top K          classes to print per sample (default 3)\n"
    "  --no-rescale     the plain prediction\n"
    "Images must have the model's height and width; colour is averaged to grey for\n"
    "one-channel models.\n";

/* A PNG as uint8 samples, channels x height x width, through cairo's PNG reader. */
static mx_status load_png(const char *path, size_t channels, size_t height, size_t width, uint8_t *out)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    mx_status st = MX_OK;
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        st = mx_error_set(MX_ERR_FORMAT, "%s: not a readable PNG (%s)", path, cairo_status_to_string(cairo_surface_status(s)));
    } else if ((size_t)cairo_image_surface_get_width(s) != width || (size_t)cairo_image_surface_get_height(s) != height) {
        st = mx_error_set(MX_ERR_ARG, "%s is %dx%d but the model expects %zux%zu", path, cairo_image_surface_get_width(s),
                          cairo_image_surface_get_height(s), width, height);
    } else {
        cairo_surface_flush(s);
        const unsigned char *data = cairo_image_surface_get_data(s);
        int stride = cairo_image_surface_get_stride(s);
        cairo_format_t format = cairo_image_surface_get_format(s);
        for (size_t y = 0; y < height; y++)
            for (size_t x = 0; x < width; x++) {
                unsigned rgb[3];
                if (format == CAIRO_FORMAT_A8) {
                    rgb[0] = rgb[1] = rgb[2] = data[y * (size_t)stride + x];
                } else {
                    uint32_t px;
                    memcpy(&px, data + y * (size_t)stride + 4 * x, 4);
                    rgb[0] = (px >> 16) & 0xFF, rgb[1] = (px >> 8) & 0xFF, rgb[2] = px & 0xFF;
                }
                for (size_t c = 0; c < channels; c++)
                    out[(c * height + y) * width + x] =
                        (uint8_t)(channels == 1 ? (rgb[0] + rgb[1] + rgb[2] + 1) / 3 : rgb[c < 3 ? c : 2]);
            }
    }
    cairo_surface_destroy(s);
    return st;
}

static void print_top(const char *name, const float *probs, size_t classes, size_t top, int label)
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
        printf("  %zu %.4f", best, probs[best]);
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
            fputs(predict_help, stdout);
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
    mx_set_threads(0);
    mx_run run;
    mx_status st = mx_run_load(run_dir, 256, &run);
    if (st != MX_OK) {
        free(images);
        return cli_report(st);
    }
    const mx_model_spec *spec = mx_model_get_spec(run.model);
    const mx_rescale_stats *stats = rescale && run.rescale.theta_bar < 1.0 ? &run.rescale : NULL;
    mx_dataset ds = {0};
    if (data) {
        st = mx_train_data_load(&run.config, data, "test", &ds);
        if (st == MX_OK && ds.n > limit) ds.n = limit;
    } else {
        size_t sample = spec->in_channels * spec->in_height * spec->in_width;
        ds = (mx_dataset){.n = n_images, .channels = spec->in_channels, .height = spec->in_height,
                          .width = spec->in_width, .num_classes = spec->num_classes};
        ds.pixels = malloc(n_images * sample + 1);
        ds.labels = calloc(n_images + 1, sizeof(int32_t));
        for (size_t i = 0; st == MX_OK && i < n_images; i++)
            st = load_png(images[i], spec->in_channels, spec->in_height, spec->in_width, ds.pixels + i * sample);
    }
    size_t classes = spec->num_classes;
    float *logits = st == MX_OK ? malloc(ds.n * classes * sizeof(float) + 1) : NULL;
    int32_t *labels = st == MX_OK ? malloc(ds.n * sizeof(int32_t) + 1) : NULL;
    /* Under mpirun each process predicts a shard; rank 0 gathers and prints. */
    if (st == MX_OK) st = mx_evaluate_logits_sharded(run.model, &ds, &run.normalizer, stats, logits, labels);
    if (st == MX_OK && mx_dist_is_root()) {
        mx_softmax_temperature(logits, ds.n, classes, 1.0, logits);
        printf("%s prediction (theta_bar %.4f)\n", stats ? "rescaled" : "plain", run.rescale.theta_bar);
        char name[64];
        for (size_t i = 0; i < ds.n; i++) {
            snprintf(name, sizeof name, "sample %zu", i);
            print_top(data ? name : images[i], logits + i * classes, classes, top, data ? labels[i] : -1);
        }
    }
    free(logits);
    free(labels);
    free(images);
    mx_dataset_free(&ds);
    mx_run_free(&run);
    return st == MX_OK ? 0 : cli_report(st);
}

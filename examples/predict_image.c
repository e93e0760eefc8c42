/* A small program on the installed library: load a mixreg run and predict an
 * image with the paper's rescaled prediction (the default of `mixreg predict`).
 *
 *   cc predict_image.c $(pkg-config --cflags --libs mixreg) -o predict_image
 *   ./predict_image RUN_DIR IMAGE.png|IMAGE.jpg
 *
 * prints "IMAGE:  class probability" for the three most probable classes, as
 * `mixreg predict RUN_DIR IMAGE` does. The image must have the model's height
 * and width; for a one-channel model its colours are averaged to grey. */
#include <stdio.h>
#include <stdlib.h>

#include <mixreg/mixreg.h>

#define TOP 3

static int fail(const char *what)
{
    fprintf(stderr, "predict_image: %s: %s\n", what, mx_error_message());
    return 1;
}

/* The image's pixels as the network's input: the model's channels (grey as
 * the mean of R, G, B, rounded), normalised as the run was trained. */
static void to_input(const mx_image *img, const mx_normalizer *nz, size_t channels, float *x)
{
    const size_t plane = img->height * img->width;
    for (size_t c = 0; c < channels; c++)
        for (size_t i = 0; i < plane; i++) {
            const uint8_t *p = img->pixels;
            unsigned v = channels == 1 ? (p[i] + p[plane + i] + p[2 * plane + i] + 1) / 3 : p[(c < 3 ? c : 2) * plane + i];
            x[c * plane + i] = nz->lut[c][v];
        }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: predict_image RUN_DIR IMAGE\n");
        return 2;
    }
    mx_run run;
    if (mx_run_load(argv[1], 1, &run) != MX_OK) return fail(argv[1]);
    const mx_model_spec *spec = mx_model_get_spec(run.model);
    mx_image img = {0};
    int status = 0;
    if (mx_image_read(argv[2], NULL, &img) != MX_OK) {
        status = fail(argv[2]);
    } else if (img.height != spec->in_height || img.width != spec->in_width) {
        fprintf(stderr, "predict_image: %s is %zux%zu, the model takes %zux%zu\n", argv[2], img.width, img.height,
                spec->in_width, spec->in_height);
        status = 1;
    } else {
        const size_t size = spec->in_channels * spec->in_height * spec->in_width, classes = spec->num_classes;
        float *x = malloc(size * sizeof *x), *scratch = malloc(size * sizeof *scratch);
        float *logits = malloc(classes * sizeof *logits);
        if (!x || !scratch || !logits) {
            fprintf(stderr, "predict_image: out of memory\n");
            status = 1;
        } else {
            to_input(&img, &run.normalizer, spec->in_channels, x);
            /* x shrunk towards x_bar by theta_bar, the logits un-shrunk: the rescaled prediction. */
            mx_predict_logits(run.model, &run.rescale, x, 1, scratch, logits);
            mx_softmax_temperature(logits, 1, classes, 1.0, logits);
            printf("%s:", argv[2]);
            for (int k = 0; k < TOP && (size_t)k < classes; k++) {
                size_t best = 0;
                for (size_t c = 1; c < classes; c++)
                    if (logits[c] > logits[best]) best = c;
                printf("  %zu %.4f", best, logits[best]);
                logits[best] = -1; /* probabilities are >= 0: the next pass finds the next one */
            }
            printf("\n");
        }
        free(x), free(scratch), free(logits);
    }
    mx_image_free(&img);
    mx_run_free(&run);
    return status;
}

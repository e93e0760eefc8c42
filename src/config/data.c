/* The data a run configuration describes: its splits loaded with the run's
 * settings, and its input normaliser. Here rather than in train/ because
 * evaluation and prediction load data by a saved run's config too. */
#include <stdio.h>
#include <string.h>

#include "mixreg/augment.h"
#include "mixreg/config.h"

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

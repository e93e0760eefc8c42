/* What a run's settings make of its mixing as a whole: in which epochs it
 * mixes (--mixup-off-epoch), the statistics of theta the run carries for
 * the rescaled prediction, and whether that prediction applies at all
 * (method.md sections 2 and 4). Training, eval, predict and the experiment
 * runner ask here, so they agree. */
#include "mixreg/config.h"

int mx_train_config_mixes_in_epoch(const mx_train_config *cfg, size_t epoch)
{
    return cfg->mixup_off_epoch == 0 || epoch <= cfg->mixup_off_epoch;
}

double mx_train_config_mixed_epoch_share(const mx_train_config *cfg)
{
    if (cfg->mixup_off_epoch == 0 || cfg->epochs == 0 || cfg->mixup_off_epoch >= cfg->epochs) return 1.0;
    return (double)cfg->mixup_off_epoch / (double)cfg->epochs;
}

/* The share of all samples of the run that are mixed at all. */
static double mixed_share(const mx_train_config *cfg)
{
    return cfg->cutmix.prob * mx_train_config_mixed_epoch_share(cfg);
}

const char *mx_train_config_rescale_undefined(const mx_train_config *cfg)
{
    int mixup = cfg->mixup.alpha > 0.0, cutmix = mx_cutmix_on(&cfg->cutmix);
    if (!(mixed_share(cfg) > 0.0) || (!mixup && !cutmix)) return NULL; /* nothing mixed: the identity */
    if (cutmix) return mixup ? "trained with CutMix switched with Mixup" : "trained with CutMix";
    if (!cfg->mixup.mix_labels) return "trained with --mixup-only-inputs";
    if (!cfg->mixup.mix_inputs) return "trained with --mixup-only-labels";
    return NULL;
}

mx_status mx_train_config_theta(const mx_train_config *cfg, mx_theta_stats *out)
{
    if (mx_train_config_rescale_undefined(cfg)) return mx_theta_stats_compute(0.0, out);
    /* Unmixed epochs and unmixed batches alike put theta = 1 on their share
     * of the samples: one mixture with the folded Beta on the rest. */
    return mx_theta_stats_mixed(cfg->mixup.alpha, mixed_share(cfg), out);
}

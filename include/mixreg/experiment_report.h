/* The reporting half of `mixreg experiment`: from the files the runner leaves
 * in an experiment's output folder, the summary table (Markdown and CSV), the
 * figures and one self-contained HTML report.
 *
 * Input (written by the runner):
 *   OUT_DIR/manifest.json       {"experiment", "source", "bins", "runs": [{"name",
 *                                "method", "group", "alpha", "seed"}, ...]}
 *   OUT_DIR/runs/<name>/eval.json
 *                               {"bins", "n", "theta_bar", "modes": {"plain": M,
 *                                "rescaled": M, "temperature": M,
 *                                "rescaled+temperature": M}, "temperature_fit": {...}}
 *   with M = {"accuracy", "top5"?, "nll", "ece", "ece_adaptive" (may be null),
 *             "mce", "brier", "n", "temperature", "reliability": {"confidence",
 *             "accuracy", "count"} (bins entries each)}; any mode may be absent.
 * Runs of one group differ only by their seed and are aggregated over seeds
 * (mean and sample standard deviation, n - 1; 0 with one seed). Rows follow
 * the manifest: groups in order of first appearance, then the modes in the
 * order above. */
#ifndef MIXREG_EXPERIMENT_REPORT_H
#define MIXREG_EXPERIMENT_REPORT_H

#include "mixreg/error.h"

/* Reads OUT_DIR/manifest.json and each OUT_DIR/runs/<name>/eval.json and writes
 * OUT_DIR/table.md, OUT_DIR/table.csv, OUT_DIR/figures/ (PNG files) and OUT_DIR/report.html
 * (each atomically). Runs without eval.json are counted as pending (named in
 * the report), not an error.
 *
 * Figures: figures/alpha.png (ECE and accuracy against alpha, log x, for each
 * method with several alphas its plain and rescaled means with std error
 * bars; the groups of the other methods as horizontal lines of their plain
 * mean; only when some method has several alphas), figures/reliability-<group
 * slug>.png per group with results (up to three modes, reliability data
 * pooled over seeds), figures/confidence.png (the plain-mode confidence
 * histogram of each method's group with alpha closest to 1).
 *
 * MX_ERR_FORMAT naming the file for a malformed manifest.json or eval.json
 * (also: eval.json with other bins than the manifest, one group whose runs
 * differ in method or alpha, duplicate or unsafe run names); MX_ERR_IO when
 * a file cannot be read or written; MX_ERR_NOMEM. Releases cairo's and
 * fontconfig's caches (mx_plot_release_caches) before returning. */
mx_status mx_experiment_report(const char *out_dir);

#endif

/* Experiment files: the grid they expand to, and every way to get one wrong
 * rejected with the file and line named. */
#include <string.h>

#include "check.h"
#include "mixreg/experiment.h"

static const char paper_like[] =
    "# shared settings\n"
    "epochs = 3   # trailing comment\n"
    "hidden = 64,32\n"
    "seeds = 0, 1\n"
    "bins = 10\n"
    "\n"
    "[erm]\n"
    "mixup-alpha = 0\n"
    "[ls]\n"
    "mixup-alpha = 0\n"
    "label-smoothing = 0.1\n"
    "[mixup-theta]\n"
    "mixup-alpha = 0.5, 2\n"
    "mixup-theta = true\n"
    "schedule = step:1,2\n";

static void test_grid(void)
{
    mx_experiment e;
    CHECK(mx_experiment_parse("dir/paper.conf", paper_like, &e) == MX_OK);
    CHECK(!strcmp(e.name, "paper"));
    CHECK(e.bins == 10 && e.temperature == 1);
    CHECK(e.count == 8);
    if (e.count == 8) {
        CHECK(!strcmp(e.runs[0].name, "erm_seed=0") && !strcmp(e.runs[1].name, "erm_seed=1"));
        CHECK(!strcmp(e.runs[0].group, "erm") && e.runs[1].config.seed == 1);
        CHECK(e.runs[0].config.epochs == 3 && e.runs[0].config.model.num_hidden == 2 && e.runs[0].config.model.hidden[1] == 32);
        CHECK(e.runs[2].config.mixup.label_smoothing == 0.1 && e.runs[2].line == 9);
        CHECK(!strcmp(e.runs[4].name, "mixup-theta_mixup-alpha=0.5_seed=0"));
        CHECK(!strcmp(e.runs[4].group, "mixup-theta mixup-alpha=0.5"));
        CHECK(!strcmp(e.runs[7].name, "mixup-theta_mixup-alpha=2_seed=1"));
        CHECK(e.runs[7].config.mixup.alpha == 2 && e.runs[7].config.mixup.theta_form == 1);
        CHECK(!strcmp(e.runs[7].config.schedule, "step:1,2"));
        CHECK(e.runs[0].config.mixup.theta_form == 0);
    }
    CHECK(e.source && strstr(e.source, "[erm]") != NULL);
    mx_experiment_free(&e);
}

/* A method's setting overrides the shared one; without seeds there is one run. */
static void test_override(void)
{
    mx_experiment e;
    CHECK(mx_experiment_parse("x.conf", "epochs = 5\ntemperature = off\n[a]\nepochs = 2\n[b]\n", &e) == MX_OK);
    CHECK(e.count == 2 && e.temperature == 0);
    if (e.count == 2) CHECK(e.runs[0].config.epochs == 2 && e.runs[1].config.epochs == 5 && !strcmp(e.runs[1].name, "b"));
    mx_experiment_free(&e);
}

/* --normalize's value holds commas but is one setting, as hidden's; stream is
 * an ordinary key. Both come from the same flag table as the command line. */
static void test_normalize_and_stream(void)
{
    mx_experiment e;
    CHECK(mx_experiment_parse("n.conf", "data = folder:imgs\nnormalize = 0.5,0.4,0.3/0.25,0.2,0.1\nstream = on, off\n[m]\n",
                              &e) == MX_OK);
    CHECK(e.count == 2);
    if (e.count == 2) {
        CHECK(!strcmp(e.runs[0].config.normalize, "0.5,0.4,0.3/0.25,0.2,0.1"));
        CHECK(e.runs[0].config.stream == MX_STREAMING_ON && e.runs[1].config.stream == MX_STREAMING_OFF);
    }
    mx_experiment_free(&e);
    CHECK(mx_experiment_parse("n.conf", "[m]\nnormalize = imagenet\n", &e) == MX_OK);
    if (e.count == 1) CHECK(!strcmp(e.runs[0].config.normalize, "imagenet"));
    mx_experiment_free(&e);
    CHECK(mx_experiment_parse("n.conf", "[m]\nnormalize = 0.5/0\n", &e) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "n.conf:2") && strstr(mx_error_message(), "must be > 0"));
    CHECK(mx_experiment_parse("n.conf", "[m]\nstream = sometimes\n", &e) == MX_ERR_ARG);
    CHECK(strstr(mx_error_message(), "expected auto, on or off") != NULL);
    /* --augment's "crop:4,flip" is one augmentation (the CIFAR recipe), not a grid of two. */
    CHECK(mx_experiment_parse("n.conf", "augment = crop:4,flip\n[m]\n", &e) == MX_OK);
    CHECK(e.count == 1);
    if (e.count == 1) CHECK(!strcmp(e.runs[0].config.augment, "crop:4,flip"));
    mx_experiment_free(&e);
}

static void expect_error(const char *text, const char *needle1, const char *needle2)
{
    mx_experiment e;
    mx_error_clear();
    mx_status st = mx_experiment_parse("bad.conf", text, &e);
    CHECK(st == MX_ERR_ARG);
    const char *msg = mx_error_message();
    int ok = strstr(msg, needle1) && strstr(msg, needle2);
    CHECK(ok);
    if (!ok) fprintf(stderr, "message \"%s\" lacks \"%s\" or \"%s\"\n", msg, needle1, needle2);
}

static void test_errors(void)
{
    expect_error("epochs = 2\n[a]\nmixup-betta = 1\n", "bad.conf:3:", "unknown key 'mixup-betta'");
    expect_error("[a]\nmixup-alpha = 0.5, -1\n", "bad.conf:2:", "--mixup-alpha");
    expect_error("[a]\nepochs = many\n", "bad.conf:2:", "not a whole number");
    expect_error("[a]\n[b]\nlr = 0.1\n[a]\n", "bad.conf:4:", "declared twice (first at line 1)");
    expect_error("[a]\nlr = 0.1\nlr = 0.2\n", "bad.conf:3:", "set twice");
    expect_error("[erm]\nmixup-alpha = 0\n[plain]\nmixup-alpha = 0\n", "bad.conf:3:", "repeats a run of [erm]");
    expect_error("[a]\nmixup-alpha = 1, 1\n", "bad.conf:2:", "appears twice");
    expect_error("[a]\nepochs = 2\nwarmup-epochs = 5\n", "bad.conf:1:", "--warmup-epochs");
    expect_error("[a]\nout = somewhere\n", "bad.conf:2:", "set by the experiment runner");
    expect_error("epochs = 3\n", "bad.conf", "no methods");
    expect_error("[a]\nbins = 3\n", "bad.conf:2:", "before the first section");
    expect_error("[a b]\n", "bad.conf:1:", "may hold only");
    expect_error("[a]\njust words\n", "bad.conf:2:", "key = value");
    expect_error("[a]\nmixup-theta = perhaps\n", "bad.conf:2:", "not true or false");
    expect_error("[a]\nlr = \n", "bad.conf:2:", "no value");
    expect_error("[a]\nmodel = resnet9000\n", "bad.conf:2:", "mlp");
    expect_error("[a\n", "bad.conf:1:", "[name]");
}

int main(void)
{
    test_grid();
    test_override();
    test_normalize_and_stream();
    test_errors();
    CHECK_DONE();
}

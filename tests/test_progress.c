/* The progress bar fits the terminal: at every width its text is shorter
 * than the line (no wrap, so redraws stay on one line), the fullest form
 * that fits is chosen, and what goes first is what matters least. */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "train/progress.h"

static const mx_progress_fields busy = {.epoch = 12, .epochs = 200, .step = 345, .steps = 469, .loss = 0.45678,
                                        .img_per_s = 12345, .eta_seconds = 5025, .fraction = 0.0567};

static int has(const char *line, const char *part) { return strstr(line, part) != NULL; }

static void test_every_width(void)
{
    char line[512];
    int fits = 1, keeps_epoch_and_eta = 1;
    for (size_t width = 0; width <= 300; width++) {
        size_t n = mx_progress_format(line, sizeof line, width, &busy);
        fits &= n == strlen(line) && (width == 0 ? n == 0 : n < width);
        /* "epoch 12/200  ETA 1:23:45" is 26 characters: from 27 columns on it is always there. */
        if (width >= 27) keeps_epoch_and_eta &= has(line, "epoch 12/200") && has(line, "ETA 1:23:45");
    }
    CHECK(fits);
    CHECK(keeps_epoch_and_eta);
}

static void test_forms(void)
{
    char line[512];
    mx_progress_format(line, sizeof line, 200, &busy);
    printf("200 columns: %s\n", line);
    CHECK(has(line, "[#.......................]"));  /* the whole 24-cell bar, 5.67% of it filled */
    CHECK(has(line, "step 345/469") && has(line, "loss 0.4568") && has(line, "12345 img/s") && has(line, "ETA 1:23:45"));
    mx_progress_format(line, sizeof line, 80, &busy);
    printf(" 80 columns: %s\n", line);
    CHECK(strlen(line) < 80 && has(line, "[") && has(line, "img/s") && has(line, "loss"));
    mx_progress_format(line, sizeof line, 40, &busy);
    printf(" 40 columns: %s\n", line);
    CHECK(strlen(line) < 40 && !has(line, "[") && !has(line, "img/s") && has(line, "ETA"));
    /* Narrower than the smallest form: its start, cut. */
    mx_progress_format(line, sizeof line, 10, &busy);
    CHECK(!strcmp(line, "epoch 12/"));
    /* A buffer smaller than the line: cut to the buffer, terminated. */
    char small[16];
    size_t n = mx_progress_format(small, sizeof small, 200, &busy);
    CHECK(n == strlen(small) && n < sizeof small);
}

/* The end-of-epoch evaluation's line: counts with thousands separators, the
 * ETA while it fits (and once it is known), never as wide as the terminal. */
static void test_eval_line(void)
{
    char line[512];
    mx_progress_format_eval(line, sizeof line, 80, "test", 3000, 10000, 4.2);
    CHECK(!strcmp(line, "eval test 3,000/10,000  ETA 0:04"));
    mx_progress_format_eval(line, sizeof line, 80, "val", 0, 1234567, -1);
    CHECK(!strcmp(line, "eval val 0/1,234,567"));
    mx_progress_format_eval(line, sizeof line, 80, "test", 999, 1000, 3725);
    CHECK(!strcmp(line, "eval test 999/1,000  ETA 1:02:05"));
    /* 32 characters with the ETA, 22 without. */
    mx_progress_format_eval(line, sizeof line, 32, "test", 3000, 10000, 4.2);
    CHECK(!strcmp(line, "eval test 3,000/10,000"));
    mx_progress_format_eval(line, sizeof line, 10, "test", 3000, 10000, 4.2);
    CHECK(!strcmp(line, "eval test"));
    int fits = 1;
    for (size_t width = 0; width <= 120; width++) {
        size_t n = mx_progress_format_eval(line, sizeof line, width, "test", 3000, 10000, 4.2);
        fits &= n == strlen(line) && (width == 0 ? n == 0 : n < width);
    }
    CHECK(fits);
    char small[12];
    size_t n = mx_progress_format_eval(small, sizeof small, 200, "test", 3000, 10000, 4.2);
    CHECK(n == strlen(small) && n < sizeof small);
}

static void test_width_source(void)
{
    /* Not a terminal here (ctest pipes stderr): $COLUMNS, else 80. */
    if (isatty(STDERR_FILENO)) return; /* run by hand on a terminal: its own width wins */
    setenv("COLUMNS", "57", 1);
    CHECK(mx_progress_width() == 57);
    setenv("COLUMNS", "57x", 1);
    CHECK(mx_progress_width() == 80);
    unsetenv("COLUMNS");
    CHECK(mx_progress_width() == 80);
}

int main(void)
{
    test_every_width();
    test_forms();
    test_eval_line();
    test_width_source();
    CHECK_DONE();
}

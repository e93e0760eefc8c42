/* Resolves a --data argument to a directory and loads a split from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/folder.h"
#include "mixreg/source.h"

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

typedef enum { SOURCE_IDX, SOURCE_CIFAR10, SOURCE_CIFAR100, SOURCE_FOLDER } source_kind;

/* The kinds of --data with a prefix: the one list the parser reads, and the
 * one mx_data_source_forms prints, so help and parser cannot disagree. */
static const struct {
    const char *prefix;
    source_kind kind;
} prefixed[] = {
    {"idx:", SOURCE_IDX},
    {"cifar10:", SOURCE_CIFAR10},
    {"cifar100:", SOURCE_CIFAR100},
    {"folder:", SOURCE_FOLDER},
};
#define NUM_PREFIXED (sizeof prefixed / sizeof prefixed[0])

const char *mx_data_source_forms(void)
{
    static char forms[256];
    if (!forms[0]) {
        /* fashion-mnist, the prefixed kinds with DIR, and a bare DIR (IDX files). */
        size_t len = (size_t)snprintf(forms, sizeof forms, "fashion-mnist");
        for (size_t i = 0; i < NUM_PREFIXED && len < sizeof forms; i++)
            len += (size_t)snprintf(forms + len, sizeof forms - len, "|%sDIR", prefixed[i].prefix);
        if (len < sizeof forms) snprintf(forms + len, sizeof forms - len, "|DIR");
    }
    return forms;
}

/* Splits spec into its kind and directory; fashion-mnist is an IDX directory. */
static mx_status parse_spec(const char *spec, source_kind *kind, char *dir, size_t cap)
{
    const char *path = spec;
    *kind = SOURCE_IDX;
    size_t i = 0;
    while (i < NUM_PREFIXED && strncmp(spec, prefixed[i].prefix, strlen(prefixed[i].prefix))) i++;
    if (!strcmp(spec, "fashion-mnist")) {
        /* Debian's dataset-fashion-mnist installs here; the variable lets tests and
         * users point elsewhere without a flag. */
        const char *env = getenv("MIXREG_FASHION_MNIST");
        path = env && *env ? env : FASHION_MNIST_DEFAULT_DIR;
    } else if (i < NUM_PREFIXED) {
        path = spec + strlen(prefixed[i].prefix);
        *kind = prefixed[i].kind;
    } else if (strchr(spec, ':') && !strchr(spec, '/')) {
        return mx_error_set(MX_ERR_ARG, "--data: unknown kind in '%s' (expected %s)", spec, mx_data_source_forms());
    }
    if (!*path) return mx_error_set(MX_ERR_ARG, "--data: empty path");
    if ((size_t)snprintf(dir, cap, "%s", path) >= cap) return mx_error_set(MX_ERR_ARG, "--data: path too long");
    return MX_OK;
}

mx_status mx_data_resolve(const char *spec, char *dir, size_t cap)
{
    source_kind kind;
    return parse_spec(spec, &kind, dir, cap);
}

mx_data_options mx_data_options_default(void)
{
    return (mx_data_options){.labels = MX_LABEL_FINE, .image_size = 224, .skip_bad = 0, .skipped = 0,
                             .stream = MX_STREAMING_AUTO, .memory_budget = 0};
}

static const char *const streaming_names[] = {"auto", "on", "off"};

const char *mx_streaming_name(mx_streaming mode) { return (unsigned)mode < 3 ? streaming_names[mode] : "?"; }

mx_status mx_streaming_parse(const char *what, const char *text, mx_streaming *out)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(text, streaming_names[i])) {
            *out = (mx_streaming)i;
            return MX_OK;
        }
    return mx_error_set(MX_ERR_ARG, "%s: unknown '%s' (expected auto, on or off)", what, text);
}

size_t mx_data_memory_budget(void)
{
    const char *env = getenv("MIXREG_MEMORY_BUDGET");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (!*end) return (size_t)v;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    /* Unknown memory: 4 GiB, a size most machines that train on images have. */
    if (pages <= 0 || page <= 0) return (size_t)1 << 32;
    return (size_t)pages / 4 * (size_t)page;
}

/* An image folder's split, streamed or in memory as opts says. */
static mx_status load_folder(const char *dir, const char *split, mx_data_options *opts, mx_dataset *out)
{
    mx_folder_index index;
    mx_status st = mx_folder_index_load(dir, split, &index);
    if (st != MX_OK) return st;
    size_t side = opts->image_size, budget = opts->memory_budget ? opts->memory_budget : mx_data_memory_budget();
    /* In doubles: a huge folder must not wrap round to a small size. */
    double bytes = (double)index.n * 3.0 * (double)side * (double)side;
    int stream = opts->stream == MX_STREAMING_ON || (opts->stream == MX_STREAMING_AUTO && bytes > (double)budget);
    if (stream) st = mx_dataset_stream_folder(&index, side, opts->skip_bad, out);
    else st = mx_folder_index_load_all(&index, side, opts->skip_bad, &opts->skipped, out);
    mx_folder_index_free(&index);
    return st;
}

mx_status mx_data_load_with(const char *spec, const char *split, mx_data_options *opts, mx_dataset *out)
{
    memset(out, 0, sizeof *out);
    char dir[4096];
    source_kind kind;
    mx_status st = parse_spec(spec, &kind, dir, sizeof dir);
    if (st != MX_OK) return st;
    opts->skipped = 0;
    if (opts->labels != MX_LABEL_FINE && kind != SOURCE_CIFAR100)
        return mx_error_set(MX_ERR_ARG, "--label coarse needs cifar100:DIR (--data is '%s')", spec);
    /* The folder's evaluation split is val (or test); its images come out at image_size. */
    if (kind == SOURCE_FOLDER) return load_folder(dir, strcmp(split, "test") ? split : "val", opts, out);
    if (kind != SOURCE_IDX) return mx_dataset_load_cifar(dir, kind == SOURCE_CIFAR100, opts->labels, split, out);
    st = mx_dataset_load_idx(dir, split, out);
    if (st != MX_OK && !strcmp(spec, "fashion-mnist"))
        return mx_error_wrap(st, "Fashion-MNIST (install Debian's dataset-fashion-mnist, or set MIXREG_FASHION_MNIST)");
    return st;
}

mx_status mx_data_load_labels(const char *spec, const char *split, mx_label_kind labels, mx_dataset *out)
{
    mx_data_options opts = mx_data_options_default();
    opts.labels = labels;
    return mx_data_load_with(spec, split, &opts, out);
}

mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out)
{
    return mx_data_load_labels(spec, split, MX_LABEL_FINE, out);
}

mx_status mx_data_class_names(const char *spec, char ***names, size_t *count)
{
    char dir[4096];
    source_kind kind;
    *names = NULL;
    *count = 0;
    mx_status st = parse_spec(spec, &kind, dir, sizeof dir);
    if (st != MX_OK) return st;
    if (kind != SOURCE_FOLDER) return mx_error_set(MX_ERR_ARG, "class names need an image folder (--data folder:DIR)");
    mx_folder_index index;
    if ((st = mx_folder_index_load(dir, "val", &index)) != MX_OK) return st;
    *names = calloc(index.num_classes + 1, sizeof(char *));
    st = *names ? MX_OK : mx_error_set(MX_ERR_NOMEM, "out of memory");
    for (size_t c = 0; st == MX_OK && c < index.num_classes; c++) {
        if (!((*names)[c] = strdup(index.class_names[c]))) st = mx_error_set(MX_ERR_NOMEM, "out of memory");
        (*count)++;
    }
    mx_folder_index_free(&index);
    return st;
}

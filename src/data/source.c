/* Resolves a --data argument to a directory and loads a split from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/source.h"

#define FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

mx_status mx_data_resolve(const char *spec, char *dir, size_t cap)
{
    const char *path = spec;
    if (!strcmp(spec, "fashion-mnist")) {
        /* Debian's dataset-fashion-mnist installs here; the variable lets tests and
         * users point elsewhere without a flag. */
        const char *env = getenv("MIXREG_FASHION_MNIST");
        path = env && *env ? env : FASHION_MNIST_DEFAULT_DIR;
    } else if (!strncmp(spec, "idx:", 4)) {
        path = spec + 4;
    } else if (strchr(spec, ':') && !strchr(spec, '/')) {
        return mx_error_set(MX_ERR_ARG, "--data: unknown kind in '%s' (expected fashion-mnist, idx:DIR or DIR)", spec);
    }
    if (!*path) return mx_error_set(MX_ERR_ARG, "--data: empty path");
    if ((size_t)snprintf(dir, cap, "%s", path) >= cap) return mx_error_set(MX_ERR_ARG, "--data: path too long");
    return MX_OK;
}

mx_status mx_data_load(const char *spec, const char *split, mx_dataset *out)
{
    char dir[4096];
    mx_status st = mx_data_resolve(spec, dir, sizeof dir);
    if (st != MX_OK) return st;
    st = mx_dataset_load_idx(dir, split, out);
    if (st != MX_OK && !strcmp(spec, "fashion-mnist"))
        return mx_error_wrap(st, "Fashion-MNIST (install Debian's dataset-fashion-mnist, or set MIXREG_FASHION_MNIST)");
    return st;
}

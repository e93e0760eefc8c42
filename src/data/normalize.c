/* Given normalisation statistics (--normalize): a named preset or one mean
 * and one standard deviation per channel. */
#include <string.h>

#include "mixreg/data.h"
#include "mixreg/parse.h"

/* Statistics of pixel values: anything beyond is a typo, not a dataset. */
#define MAX_STAT 1e6

/* "v1,v2,...,vk" spanning [s, end) into out: 0, or 1 for an item that is
 * not a number (*bad, *bad_len), 2 for more than MX_MAX_CHANNELS items, or 3
 * for a number out of range. */
static int parse_list(const char *s, const char *end, float *out, size_t *count, const char **bad, size_t *bad_len)
{
    *count = 0;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        size_t len = (size_t)(stop - p);
        *bad = p, *bad_len = len;
        if (*count == MX_MAX_CHANNELS) return 2;
        double v;
        if (!mx_parse_is_number(p, len)) return 1;
        if (mx_parse_double_n("--normalize", p, len, -MAX_STAT, MAX_STAT, &v) != MX_OK) return 3;
        out[(*count)++] = (float)v;
        if (!comma) return 0;
        p = comma + 1;
    }
}

mx_status mx_normalize_parse(const char *text, size_t *channels, float *mean, float *std)
{
    static const char expected[] = "imagenet or MEAN,...,MEAN/STD,...,STD, one of each per channel";
    if (!strcmp(text, "imagenet")) {
        static const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
        memcpy(mean, m, sizeof m);
        memcpy(std, s, sizeof s);
        *channels = 3;
        return MX_OK;
    }
    const char *slash = strchr(text, '/'), *end = text + strlen(text);
    if (!slash || strchr(slash + 1, '/'))
        return mx_error_set(MX_ERR_ARG, "--normalize: '%s' is not %s", text, expected);
    size_t n_mean = 0, n_std = 0, bad_len = 0;
    const char *bad = text;
    int err = parse_list(text, slash, mean, &n_mean, &bad, &bad_len);
    if (!err) err = parse_list(slash + 1, end, std, &n_std, &bad, &bad_len);
    if (err == 2)
        return mx_error_set(MX_ERR_ARG, "--normalize: more than %d values on a side of '%s'", MX_MAX_CHANNELS, text);
    if (err == 3)
        return mx_error_set(MX_ERR_ARG, "--normalize: '%.*s' in '%s' is out of range (each value must be in [%g, %g])",
                            (int)bad_len, bad, text, -MAX_STAT, MAX_STAT);
    if (err)
        return mx_error_set(MX_ERR_ARG, "--normalize: '%.*s' in '%s' is not a number (expected %s)", (int)bad_len, bad,
                            text, expected);
    if (n_mean != n_std)
        return mx_error_set(MX_ERR_ARG, "--normalize: %zu mean%s but %zu std%s in '%s' (one of each per channel)", n_mean,
                            n_mean == 1 ? "" : "s", n_std, n_std == 1 ? "" : "s", text);
    for (size_t c = 0; c < n_std; c++)
        if (!(std[c] > 0))
            return mx_error_set(MX_ERR_ARG, "--normalize: the std of channel %zu is %g in '%s' (must be > 0)", c,
                                (double)std[c], text);
    *channels = n_mean;
    return MX_OK;
}

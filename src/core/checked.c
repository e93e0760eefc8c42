#include <stdint.h>

#include "mixreg/checked.h"

int mx_size_mul(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b) {
        *out = SIZE_MAX;
        return 0;
    }
    *out = a * b;
    return 1;
}

int mx_size_add(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b) {
        *out = SIZE_MAX;
        return 0;
    }
    *out = a + b;
    return 1;
}

int mx_size_product(const size_t *dims, size_t n, size_t *out)
{
    size_t p = 1;
    for (size_t i = 0; i < n; i++)
        if (!dims[i]) {
            *out = 0;  /* exact, however large the other factors */
            return 1;
        }
    for (size_t i = 0; i < n; i++)
        if (!mx_size_mul(p, dims[i], &p)) {
            *out = SIZE_MAX;
            return 0;
        }
    *out = p;
    return 1;
}

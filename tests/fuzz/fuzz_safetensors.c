/* libFuzzer target for the safetensors reader: any bytes must give MX_OK or
 * a clean error, never a crash or an out-of-bounds read (ASan watches). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    mx_safetensors st;
    if (mx_safetensors_parse("fuzz", copy, size, &st) == MX_OK) {
        /* Touch every tensor's bytes so a wrong offset would be caught. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < st.count; i++)
            for (size_t b = 0; b < st.tensors[i].nbytes; b++) sink ^= ((const uint8_t *)st.tensors[i].data)[b];
        (void)sink;
        mx_safetensors_free(&st);
    }
    return 0;
}

/* libFuzzer target for the safetensors reader: any bytes must give MX_OK or
 * a clean error, never a crash or an out-of-bounds read (ASan watches). The
 * input is a file or a header in text form (st_framing.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/safetensors.h"
#include "st_framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t file_size;
    uint8_t *file = fuzz_safetensors_file(data, size, &file_size);
    if (!file) return 0;
    mx_safetensors st;
    if (mx_safetensors_parse("fuzz", file, file_size, &st) == MX_OK) {  /* takes the file either way */
        /* Touch every tensor's bytes so a wrong offset would be caught. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < st.count; i++)
            for (size_t b = 0; b < st.tensors[i].nbytes; b++) sink ^= ((const uint8_t *)st.tensors[i].data)[b];
        (void)sink;
        for (size_t i = 0; i < st.meta_count; i++)
            if (mx_safetensors_meta(&st, st.meta_keys[i]) != st.meta_values[i]) abort();  /* keys are unique */
        mx_safetensors_free(&st);
    }
    return 0;
}

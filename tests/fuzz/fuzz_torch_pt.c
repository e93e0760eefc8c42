/* libFuzzer target for the .pt reader (a torch.save zip archive and its
 * pickle): any bytes must give MX_OK or a clean error, never a crash, an
 * out-of-bounds read or a leak (ASan watches). Seeds: tests/fuzz/seeds/fuzz_torch_pt,
 * files torch.save wrote. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/weights_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    mx_weights_file wf;
    if (mx_weights_file_parse_pt("fuzz", copy, size, &wf) == MX_OK) {  /* takes the copy either way */
        /* Touch every tensor's bytes so a wrong offset would be caught. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < wf.count; i++)
            for (size_t b = 0; b < wf.tensors[i].nbytes; b++) sink ^= ((const uint8_t *)wf.tensors[i].data)[b];
        (void)sink;
        mx_weights_file_free(&wf);
    }
    return 0;
}

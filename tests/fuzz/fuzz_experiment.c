/* libFuzzer target for experiment files (experiment.h): any text must parse
 * or fail with a message, never crash; a parsed experiment has at least one
 * run, each with a name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/experiment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;  /* as mx_experiment_load hands it over */
    mx_experiment e;
    if (mx_experiment_parse("fuzz.conf", text, &e) == MX_OK) {
        if (e.count == 0) abort();
        for (size_t i = 0; i < e.count; i++)
            if (!e.runs[i].name[0]) abort();
        mx_experiment_free(&e);
    }
    free(text);
    return 0;
}

/* libFuzzer target for the stored training config (config.json, and the
 * "mixreg.config" metadata of every checkpoint): any text must be read or
 * refused with a message; a config that is read must be written and read back
 * to the same JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    mx_train_config cfg, again;
    if (mx_train_config_from_json(text, &cfg) == MX_OK) {
        char *json = mx_train_config_to_json(&cfg);
        if (!json) abort();
        if (mx_train_config_from_json(json, &again) != MX_OK) abort();
        char *json2 = mx_train_config_to_json(&again);
        if (!json2 || strcmp(json, json2)) abort();
        free(json);
        free(json2);
    }
    free(text);
    return 0;
}

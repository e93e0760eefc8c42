/* libFuzzer target: class-map files (folder.h) against a fixed set of
 * dataset class names. Any input must parse or fail with a message; when it
 * parses, every mapping must lie in range. */
#include <stdint.h>
#include <stdlib.h>

#include "mixreg/folder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *names[] = {"ant", "bee", "cow", "dog fish", "emu"};
    mx_class_map map;
    if (mx_class_map_parse("fuzz.map", (const char *)data, size, names, 5, 7, &map) != MX_OK) return 0;
    for (size_t d = 0; d < map.num_dataset_classes; d++)
        for (size_t k = map.first[d]; k < map.first[d + 1]; k++)
            if (map.model_class[k] < 0 || map.model_class[k] >= 7 || !mx_class_map_correct(&map, (int32_t)d, map.model_class[k]))
                abort();
    float scores[7] = {0.5f, -1, 3, 2, 2, 0, 1};
    int32_t p = mx_class_map_predict(&map, scores);
    if (p < -1 || p >= 7) abort();
    mx_class_map_free(&map);
    return 0;
}

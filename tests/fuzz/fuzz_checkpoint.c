/* libFuzzer target for loading a run (run.h): the input is written as
 * RUN_DIR/model.safetensors and loaded as eval, predict and analyze load it,
 * through the stored model, normalisation, config and training state. Any
 * bytes must load or fail with a message; never crash, never allocate beyond
 * what the file can describe. The input is a file or a header in text form
 * (st_framing.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/run.h"
#include "st_framing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/mixreg-fuzz-checkpoint-%ld", (long)getpid());
        mx_make_dirs(dir);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, MX_RUN_MODEL_FILE);
    size_t file_size;
    uint8_t *file = fuzz_safetensors_file(data, size, &file_size);
    FILE *f = file ? fopen(path, "wb") : NULL;
    if (f) {
        fwrite(file, 1, file_size, f);
        fclose(f);
    }
    free(file);
    if (!f) return 0;
    mx_run run;
    if (mx_run_load(dir, 2, &run) == MX_OK) mx_run_free(&run);
    return 0;
}

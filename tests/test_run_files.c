/* The readers of a run directory's text files (run_files.h): log trimming on
 * resume and the last epoch line that `mixreg runs` shows, on buffers with
 * NUL bytes, partial lines and lines that do not parse. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/run_files.h"

static void test_trim(void)
{
    static const char log[] = "{\"type\": \"step\", \"step\": 1}\n"
                              "not json\n"
                              "\n"
                              "{\"type\": \"epoch\", \"step\": 2}\n"
                              "{\"type\": \"step\", \"step\": \"3\"}\n"
                              "{\"type\": \"step\", \"step\": 3}\n"
                              "{\"type\": \"step\", \"st";  /* a partial last line */
    char *out;
    size_t size;
    CHECK_OK(mx_run_files_trim_log(log, sizeof log - 1, 2, &out, &size));
    const char want[] = "{\"type\": \"step\", \"step\": 1}\n{\"type\": \"epoch\", \"step\": 2}\n";
    CHECK(size == sizeof want - 1 && out && !memcmp(out, want, size));
    free(out);
    CHECK_OK(mx_run_files_trim_log(log, sizeof log - 1, 0, &out, &size));
    CHECK(size == 0);
    free(out);
    /* A NUL byte inside a line spoils that line only (here: its key). */
    static const char nul[] = "{\"step\": 1}\n{\"st\0ep\": 2}\n{\"step\": 2}";
    CHECK_OK(mx_run_files_trim_log(nul, sizeof nul - 1, 5, &out, &size));
    CHECK(size == 24 && !memcmp(out, "{\"step\": 1}\n{\"step\": 2}\n", 24));
    free(out);
    CHECK_OK(mx_run_files_trim_log("", 0, 5, &out, &size));
    CHECK(size == 0 && out != NULL);
    free(out);
}

static void test_last_epoch(void)
{
    static const char log[] = "{\"type\": \"epoch\", \"epoch\": 1}\n"
                              "{\"type\": \"step\", \"epoch\": 2}\n"
                              "{\"type\": \"epoch\", \"epoch\": 2}\n"
                              "{\"type\": \"epoch\", \"epo";
    cJSON *e = mx_run_files_parse_last_epoch(log, sizeof log - 1);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "epoch");
    CHECK(cJSON_IsNumber(n) && n->valuedouble == 2);
    cJSON_Delete(e);
    CHECK(mx_run_files_parse_last_epoch("{\"type\": 3}\n[]\n", 15) == NULL);
    CHECK(mx_run_files_parse_last_epoch("", 0) == NULL);
    cJSON *j = mx_run_files_parse_json("{\"a\": 1}xyz", 8);  /* only the bytes given */
    CHECK(cJSON_IsObject(j));
    cJSON_Delete(j);
    CHECK(mx_run_files_read_json("/nonexistent-dir", "config.json") == NULL);
    CHECK(mx_run_files_last_epoch("/nonexistent-dir") == NULL);
}

int main(void)
{
    test_trim();
    test_last_epoch();
    CHECK_DONE();
}

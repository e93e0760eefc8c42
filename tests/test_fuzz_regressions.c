/* Inputs the fuzz targets (tests/fuzz, scripts/fuzz.sh) found crashing, each
 * replayed here against the function that crashed: the normal suite, sanitizer
 * build included, keeps them fixed. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "mixreg/train.h"

/* fuzz_config_json: a size_t setting of 2.2e20 was converted to size_t, a
 * seed of 2^64 to uint64_t (undefined behaviour: UBSan stopped in config.c). */
static void test_config_huge_integer(void)
{
    static const char *const cases[] = {
        "{\"epochs\": 218446744073709551616}",
        "{\"batch_size\": 1e300}",
        "{\"max_steps\": 18446744073709551616}",
        "{\"hidden\": [1e20]}",
        "{\"keep\": 9007199254740992}",
        "{\n\t\"seed\":\t18446744073709551616}",  /* and the seed, cast to uint64_t */
        "{\"seed\": -1}",
        "{\"seed\": 0.5}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mx_train_config cfg;
        CHECK(mx_train_config_from_json(cases[i], &cfg) == MX_ERR_FORMAT);
    }
    /* An ordinary value is still read. */
    mx_train_config cfg;
    CHECK_OK(mx_train_config_from_json("{\"max_steps\": 7}", &cfg));
    CHECK(cfg.max_steps == 7);
}

int main(void)
{
    test_config_huge_integer();
    CHECK_DONE();
}

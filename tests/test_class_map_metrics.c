/* Scoring through a class map: unmapped classes left out, the ObjectNet
 * accuracy rule, and probabilities pooled per dataset class (checked by hand). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mixreg/class_map_metrics.h"

static void test_by_hand(void)
{
    char *names[] = {"cat", "dog", "emu"};
    const char text[] = "# dataset class -> model classes\ncat\t0,1\ndog 3\n";
    mx_class_map map;
    CHECK(mx_class_map_parse("map.txt", text, strlen(text), names, 3, 5, &map) == MX_OK);
    /* Sample 0 (cat): model classes 0 and 1 share the mass; the arg-max over
     * mapped classes is 1 -> correct. Sample 1 (dog): the highest mapped class
     * is 0 (cat) -> wrong, though class 4 (unmapped) is higher still. Sample 2
     * (emu) is not mapped: not scored. */
    const float logits[3 * 5] = {1, 2, 0, 0, 0,
                                 3, 0, 0, 1, 9,
                                 0, 0, 0, 0, 0};
    const int32_t labels[3] = {0, 1, 2};
    mx_metrics m;
    double conf[10], acc[10];
    size_t count[10];
    CHECK(mx_metrics_class_mapped(&map, logits, labels, 3, 10, &m, conf, acc, count) == MX_OK);
    CHECK(m.n == 2);
    CHECK(fabs(m.accuracy - 0.5) < 1e-12);
    CHECK(m.top5 < 0);  /* two mapped classes: top-5 is trivial */
    /* Pooled: sample 0: p(cat) = (e^1 + e^2) / (e^1 + e^2 + e^0); sample 1: p(dog) = e^1 / (e^3 + e^0 + e^1). */
    double p0 = (exp(1) + exp(2)) / (exp(1) + exp(2) + 1), p1 = exp(1) / (exp(3) + 1 + exp(1));
    CHECK(fabs(m.nll - 0.5 * (-log(p0) - log(p1))) < 1e-5);
    double brier = 0.5 * (2 * (1 - p0) * (1 - p0) + 2 * (1 - p1) * (1 - p1));
    CHECK(fabs(m.brier - brier) < 1e-5);
    size_t total = 0;
    for (size_t b = 0; b < 10; b++) total += count[b];
    CHECK(total == 2);

    /* No sample of a mapped class: an error, not a division by zero. */
    const int32_t only_emu[1] = {2};
    CHECK(mx_metrics_class_mapped(&map, logits, only_emu, 1, 10, &m, NULL, NULL, NULL) == MX_ERR_ARG);
    mx_class_map_free(&map);
}

int main(void)
{
    test_by_hand();
    CHECK_DONE();
}

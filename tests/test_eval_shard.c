/* Sharded evaluation (mixreg/eval_shard.h) against the one-process functions,
 * bit for bit. Alone it checks the one-process job (every function the plain
 * one); tests/cli_mpi_eval.sh also runs it under mpirun with 2 and 3 ranks,
 * where each rank compares the job's result with its own full evaluation. */
#include <string.h>

#include "check.h"
#include "mixreg/dist.h"
#include "mixreg/eval_shard.h"
#include "mixreg/evaluate.h"
#include "mixreg/rng.h"
#include "mixreg/train.h"

enum { N = 203, SIDE = 4, CLASSES = 5, BATCH = 16 };

static mx_model *make_mlp(void)
{
    mx_model_spec spec = {.arch = "mlp", .in_channels = 1, .in_height = SIDE, .in_width = SIDE, .num_classes = CLASSES,
                          .num_hidden = 1, .hidden = {12}};
    mx_model *m = NULL;
    CHECK_OK(mx_model_create(&spec, BATCH, &m));
    if (m) mx_model_init_params(m, 5);
    return m;
}

/* N random images and labels (the same on every rank: a fixed seed). */
static void make_data(mx_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    ds->n = N, ds->channels = 1, ds->height = SIDE, ds->width = SIDE, ds->num_classes = CLASSES;
    ds->pixels = malloc(N * SIDE * SIDE);
    ds->labels = malloc(N * sizeof(int32_t));
    mx_rng rng;
    mx_rng_init(&rng, 17, 3);
    for (size_t i = 0; i < (size_t)N * SIDE * SIDE; i++) ds->pixels[i] = (uint8_t)mx_rng_below(&rng, 256);
    for (size_t i = 0; i < N; i++) ds->labels[i] = (int32_t)mx_rng_below(&rng, CLASSES);
}

static void test_evaluate(mx_model *m, const mx_dataset *ds, const mx_normalizer *nz, const mx_rescale_stats *rs)
{
    mx_metrics plain, rescaled, plain_job, rescaled_job;
    memset(&plain, 0, sizeof plain), memset(&rescaled, 0, sizeof rescaled);
    memset(&plain_job, 0xff, sizeof plain_job), memset(&rescaled_job, 0xff, sizeof rescaled_job);
    CHECK_OK(mx_evaluate(m, ds, nz, rs, 7, &plain, &rescaled));
    CHECK_OK(mx_evaluate_sharded(m, ds, nz, rs, 7, &plain_job, &rescaled_job));
    CHECK(plain.n == N && plain_job.n == N);
    CHECK(memcmp(&plain, &plain_job, sizeof plain) == 0);  /* every rank: the one-process metrics, bit for bit */
    CHECK(memcmp(&rescaled, &rescaled_job, sizeof rescaled) == 0);
    CHECK(plain.accuracy != rescaled.accuracy || plain.nll != rescaled.nll);  /* two different predictions */
    /* Only one of them asked for. */
    memset(&plain_job, 0xff, sizeof plain_job);
    CHECK_OK(mx_evaluate_sharded(m, ds, nz, NULL, 7, &plain_job, NULL));
    CHECK(memcmp(&plain, &plain_job, sizeof plain) == 0);
    /* A mismatch every rank sees is every rank's error, before any collective. */
    mx_dataset wrong = *ds;
    wrong.num_classes = CLASSES + 1;
    CHECK(mx_evaluate_sharded(m, &wrong, nz, rs, 7, &plain_job, &rescaled_job) == MX_ERR_ARG);
}

static void test_logits(mx_model *m, const mx_dataset *ds, const mx_normalizer *nz, const mx_rescale_stats *rs)
{
    static float one[N * CLASSES], job[N * CLASSES];
    static int32_t labels_one[N], labels_job[N];
    for (int r = 0; r < 2; r++) {
        const mx_rescale_stats *stats = r ? rs : NULL;
        memset(job, 0, sizeof job), memset(labels_job, 0xff, sizeof labels_job);
        CHECK_OK(mx_evaluate_logits(m, ds, nz, stats, one, labels_one));
        CHECK_OK(mx_evaluate_logits_sharded(m, ds, nz, stats, mx_dist_is_root() ? job : NULL,
                                            mx_dist_is_root() ? labels_job : NULL));
        if (mx_dist_is_root()) {
            CHECK(memcmp(one, job, sizeof one) == 0);
            CHECK(memcmp(labels_one, labels_job, sizeof labels_one) == 0);
            CHECK(memcmp(labels_job, ds->labels, sizeof labels_job) == 0);
        }
    }
}

/* Records of doubles arrive on rank 0 in rank order with every bit. */
static void test_gather_records(void)
{
    int rank = mx_dist_rank(), size = mx_dist_size();
    double mine[3][2];
    size_t count = (size_t)rank % 3 + 1;  /* uneven: 1, 2, 3, 1, ... records */
    for (size_t i = 0; i < count; i++) mine[i][0] = rank + 0.1 * (double)i, mine[i][1] = -1.0 / (3.0 + rank);
    double all[64][2];
    CHECK_OK(mx_eval_gather_records(mine, count, sizeof mine[0], all, 64));
    if (mx_dist_is_root()) {
        size_t k = 0;
        for (int r = 0; r < size && r < 16; r++)
            for (size_t i = 0; i < (size_t)r % 3 + 1; i++, k++) {
                double want0 = r + 0.1 * (double)i, want1 = -1.0 / (3.0 + r);
                CHECK(memcmp(&all[k][0], &want0, sizeof want0) == 0 && memcmp(&all[k][1], &want1, sizeof want1) == 0);
            }
    }
    CHECK(mx_eval_gather_records(mine, 1, 6, all, 64) == MX_ERR_ARG);  /* not whole int32 words */
}

/* One rank's failure is every rank's, its own error kept. */
static void test_agree(void)
{
    CHECK(mx_eval_agree(MX_OK) == MX_OK);
    mx_status mine = mx_dist_rank() == mx_dist_size() - 1 ? MX_ERR_NOMEM : MX_OK;
    mx_status agreed = mx_eval_agree(mine);
    if (mine != MX_OK) CHECK(agreed == MX_ERR_NOMEM);
    else CHECK(agreed != MX_OK);
}

int main(int argc, char **argv)
{
    CHECK_OK(mx_dist_init(&argc, &argv));
    mx_set_threads(1);  /* every rank and the one-process reference alike */
    mx_model *m = make_mlp();
    mx_dataset ds;
    make_data(&ds);
    float mean = 0.4f, std = 0.3f;
    mx_normalizer nz;
    CHECK_OK(mx_normalizer_init(&nz, 1, &mean, &std));
    mx_rescale_stats rs;
    CHECK_OK(mx_rescale_stats_alloc(&rs, SIDE * SIDE, CLASSES));
    rs.theta_bar = 0.75;
    for (size_t k = 0; k < SIDE * SIDE; k++) rs.x_bar[k] = 0.05f * (float)k - 0.3f;
    for (size_t c = 0; c < CLASSES; c++) rs.y_bar[c] = 1.0f / CLASSES;
    if (m) {
        test_evaluate(m, &ds, &nz, &rs);
        test_logits(m, &ds, &nz, &rs);
    }
    test_gather_records();
    test_agree();
    mx_rescale_stats_free(&rs);
    mx_dataset_free(&ds);
    mx_model_free(m);
    if (mx_dist_size() > 1) printf("rank %d of %d: ", mx_dist_rank(), mx_dist_size());
    CHECK_DONE();
}

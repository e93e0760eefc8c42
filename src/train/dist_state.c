#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"
#include "train/dist_state.h"

mx_status mx_train_dist_broadcast_state(mx_model *model)
{
    mx_status st = mx_dist_broadcast(mx_model_params(model), mx_model_param_count(model) * sizeof(float));
    const mx_buffer_info *table;
    size_t count = mx_model_buffer_tensors(model, &table);
    for (size_t i = 0; i < count && st == MX_OK; i++) {
        size_t elem = table[i].dtype == MX_BUFFER_F32 ? sizeof(float) : sizeof(int64_t);
        st = mx_dist_broadcast(table[i].data, table[i].numel * elem);
    }
    return st;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

mx_status mx_train_dist_average_running_stats(mx_model *model)
{
    const int size = mx_dist_size();
    if (size == 1) return MX_OK;
    const mx_buffer_info *table;
    size_t count = mx_model_buffer_tensors(model, &table);
    mx_status st = MX_OK;
    for (size_t i = 0; i < count && st == MX_OK; i++) {
        if (table[i].dtype != MX_BUFFER_F32 ||
            !(ends_with(table[i].name, "running_mean") || ends_with(table[i].name, "running_var")))
            continue;
        float *v = table[i].data;
        st = mx_dist_allreduce_sum_float(v, table[i].numel);
        for (size_t k = 0; st == MX_OK && k < table[i].numel; k++) v[k] /= (float)size;
    }
    return st;
}

void mx_train_dist_bn_reduce(void *ctx, double *sums, size_t count)
{
    (void)ctx;
    if (mx_dist_allreduce_sum_double(sums, count) != MX_OK)
        mx_dist_abort("sync batch norm: %s", mx_error_message());
}

mx_status mx_train_dist_agree(mx_status st)
{
    int failed = st != MX_OK ? mx_dist_rank() + 1 : 0;
    mx_status ex = mx_dist_allreduce_max_int(&failed, 1);
    if (st != MX_OK) return st;
    if (ex != MX_OK) return ex;
    if (failed) return mx_error_set(MX_ERR_IO, "process %d of the job failed (its error is printed there)", failed - 1);
    return MX_OK;
}

mx_status mx_train_dist_check_config(const mx_train_config *cfg)
{
    if (mx_dist_size() == 1) return MX_OK;
    char *json = mx_train_config_to_json(cfg);
    if (!json) return mx_train_dist_agree(mx_error_set(MX_ERR_NOMEM, "out of memory comparing configurations"));
    /* FNV-1a of the JSON: rank 0's against each process's own. */
    uint64_t mine = 1469598103934665603ULL;
    for (const char *c = json; *c; c++) mine = (mine ^ (uint8_t)*c) * 1099511628211ULL;
    free(json);
    uint64_t root = mine;
    mx_status st = mx_dist_broadcast(&root, sizeof root);
    if (st == MX_OK && root != mine)
        st = mx_error_set(MX_ERR_ARG, "process %d was given other settings than rank 0: every process of the job must "
                          "run the same command", mx_dist_rank());
    return mx_train_dist_agree(st);
}

/* A bounded ring of batch slots filled by worker threads in batch order. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/dist.h"
#include "mixreg/loader.h"

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY } slot_state;

typedef struct {
    float *x;
    int32_t *labels;
    size_t n, number;      /* this process's rows of batch `number` of the epoch */
    size_t first, total;   /* they are rows first..first+n of that batch of total */
    slot_state state;
    mx_status status;
    char message[512];     /* the fill's error message (errors are per thread) */
} slot;

struct mx_loader {
    mx_batch_fill_fn fill;
    void *ctx;
    size_t sample_size, max_batch, depth, workers;
    int rank, ranks;       /* this process's share of every batch (mx_loader_set_share) */
    slot *slots;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    /* the epoch being produced */
    uint32_t *order;
    size_t order_cap, n, batch, batches, next_fill, next_take;
    uint64_t epoch, generation;
    slot *held;            /* the slot whose batch the caller is using, or NULL */
    int shutting_down;
};

static size_t batch_size_of(const mx_loader *l, size_t number)
{
    size_t first = number * l->batch;
    return l->n - first < l->batch ? l->n - first : l->batch;
}

static void fill_slot(mx_loader *l, slot *s, size_t number)
{
    s->total = batch_size_of(l, number);
    mx_dist_split(s->total, l->rank, l->ranks, &s->first, &s->n);
    s->status = s->n ? l->fill(l->ctx, l->order + number * l->batch + s->first, s->n, l->epoch, s->x, s->labels) : MX_OK;
    if (s->status != MX_OK) snprintf(s->message, sizeof s->message, "%s", mx_error_message());
}

static void *worker_main(void *arg)
{
    mx_loader *l = arg;
    omp_set_num_threads(1); /* the workers are the parallelism; no teams inside them */
    pthread_mutex_lock(&l->mutex);
    for (;;) {
        while (!l->shutting_down &&
               !(l->next_fill < l->batches && l->next_fill < l->next_take + l->depth &&
                 l->slots[l->next_fill % l->depth].state == SLOT_FREE))
            pthread_cond_wait(&l->changed, &l->mutex);
        if (l->shutting_down) break;
        size_t number = l->next_fill++;
        uint64_t generation = l->generation;
        slot *s = &l->slots[number % l->depth];
        s->state = SLOT_FILLING;
        s->number = number;
        pthread_mutex_unlock(&l->mutex);
        fill_slot(l, s, number);
        pthread_mutex_lock(&l->mutex);
        /* A new epoch started meanwhile: this batch is stale. */
        s->state = generation == l->generation ? SLOT_READY : SLOT_FREE;
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->mutex);
    return NULL;
}

mx_status mx_loader_create(mx_batch_fill_fn fill, void *ctx, size_t sample_size, size_t max_batch, size_t workers,
                           size_t depth, mx_loader **out)
{
    *out = NULL;
    if (!fill || !sample_size || !max_batch || depth == 0 || workers > 256)
        return mx_error_set(MX_ERR_ARG, "loader: bad arguments (workers %zu, depth %zu)", workers, depth);
    if (workers == 0) depth = 1;
    mx_loader *l = calloc(1, sizeof *l);
    if (!l) return mx_error_set(MX_ERR_NOMEM, "out of memory for the loader");
    l->fill = fill, l->ctx = ctx, l->sample_size = sample_size, l->max_batch = max_batch, l->depth = depth;
    l->rank = 0, l->ranks = 1;
    l->slots = calloc(depth, sizeof(slot));
    int ok = l->slots != NULL;
    for (size_t i = 0; ok && i < depth; i++) {
        l->slots[i].x = malloc(max_batch * sample_size * sizeof(float));
        l->slots[i].labels = malloc(max_batch * sizeof(int32_t));
        ok = l->slots[i].x && l->slots[i].labels;
    }
    pthread_mutex_init(&l->mutex, NULL);
    pthread_cond_init(&l->changed, NULL);
    l->threads = workers ? calloc(workers, sizeof(pthread_t)) : NULL;
    if (!ok || (workers && !l->threads)) {
        mx_loader_destroy(l);
        return mx_error_set(MX_ERR_NOMEM, "out of memory for the loader's %zu batches", depth);
    }
    for (size_t i = 0; i < workers; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
            mx_loader_destroy(l);
            return mx_error_set(MX_ERR_IO, "loader: could not start worker thread %zu", i + 1);
        }
        l->workers++;
    }
    *out = l;
    return MX_OK;
}

mx_status mx_loader_set_share(mx_loader *l, int rank, int ranks)
{
    if (ranks < 1 || rank < 0 || rank >= ranks)
        return mx_error_set(MX_ERR_ARG, "loader: rank %d of %d out of range", rank, ranks);
    pthread_mutex_lock(&l->mutex);
    l->rank = rank, l->ranks = ranks;
    pthread_mutex_unlock(&l->mutex);
    return MX_OK;
}

mx_status mx_loader_start_epoch(mx_loader *l, const uint32_t *order, size_t n, size_t batch, size_t first,
                                uint64_t epoch)
{
    size_t share = batch ? (batch + (size_t)l->ranks - 1) / (size_t)l->ranks : 0;
    if (batch == 0 || share > l->max_batch) return mx_error_set(MX_ERR_ARG, "loader: batch %zu out of range", batch);
    pthread_mutex_lock(&l->mutex);
    /* Wait for fills in progress (they read the old order), then reset. */
    for (;;) {
        int filling = 0;
        for (size_t i = 0; i < l->depth; i++) filling |= l->slots[i].state == SLOT_FILLING;
        if (!filling) break;
        pthread_cond_wait(&l->changed, &l->mutex);
    }
    mx_status st = MX_OK;
    if (n > l->order_cap) {
        uint32_t *grown = realloc(l->order, n * sizeof(uint32_t));
        if (grown) l->order = grown, l->order_cap = n;
        else st = mx_error_set(MX_ERR_NOMEM, "out of memory for the epoch order");
    }
    if (st == MX_OK) {
        memcpy(l->order, order, n * sizeof(uint32_t));
        for (size_t i = 0; i < l->depth; i++) l->slots[i].state = SLOT_FREE;
        l->held = NULL;
        l->n = n, l->batch = batch, l->batches = (n + batch - 1) / batch, l->epoch = epoch;
        l->next_fill = l->next_take = first;
        l->generation++;
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->mutex);
    return st;
}

mx_status mx_loader_next(mx_loader *l, mx_loader_batch *out)
{
    pthread_mutex_lock(&l->mutex);
    if (l->next_take >= l->batches) {
        pthread_mutex_unlock(&l->mutex);
        return mx_error_set(MX_ERR_ARG, "loader: the epoch has no more batches");
    }
    size_t number = l->next_take;
    slot *s = &l->slots[number % l->depth];
    /* The slot taken last time is given back now that its batch is used. */
    if (l->held) l->held->state = SLOT_FREE;
    l->held = NULL;
    if (l->workers == 0) {
        s->number = number;
        pthread_mutex_unlock(&l->mutex);
        fill_slot(l, s, number);
        pthread_mutex_lock(&l->mutex);
        s->state = SLOT_READY;
    } else {
        pthread_cond_broadcast(&l->changed);
        while (!(s->state == SLOT_READY && s->number == number)) pthread_cond_wait(&l->changed, &l->mutex);
    }
    l->next_take++;
    l->held = s;
    mx_status st = s->status;
    if (st != MX_OK) st = mx_error_set(st, "%s", s->message);
    out->x = s->x, out->labels = s->labels, out->n = s->n, out->first = s->first, out->total = s->total;
    pthread_mutex_unlock(&l->mutex);
    return st;
}

void mx_loader_destroy(mx_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mutex);
    l->shutting_down = 1;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mutex);
    for (size_t i = 0; i < l->workers; i++) pthread_join(l->threads[i], NULL);
    for (size_t i = 0; l->slots && i < l->depth; i++) {
        free(l->slots[i].x);
        free(l->slots[i].labels);
    }
    pthread_mutex_destroy(&l->mutex);
    pthread_cond_destroy(&l->changed);
    free(l->slots);
    free(l->threads);
    free(l->order);
    free(l);
}

mx_status mx_dataset_fill_batch(void *ctx, const uint32_t *idx, size_t n, uint64_t epoch, float *x, int32_t *labels)
{
    const mx_dataset_fill *f = ctx;
    return mx_augment_gather(&f->augment, f->seed, epoch, f->ds, f->nz, idx, n, x, labels);
}

/* The batch loader: worker threads gather, decode and augment the next
 * batches of an epoch while the model trains on the current one (a bounded
 * ring of `depth` batches). Batches come out in order and hold exactly what
 * the fill function makes of (indices, epoch), so results do not depend on
 * the number of workers; with 0 workers each batch is filled in the caller. */
#ifndef MIXREG_LOADER_H
#define MIXREG_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "mixreg/data.h"
#include "mixreg/error.h"
#include "mixreg/augment.h"

/* Fills x (n x sample_size floats) and labels for samples idx[0..n) of the
 * epoch; called from worker threads, concurrently for different batches, so
 * it must not touch shared mutable state. Returns MX_OK or an error status
 * (set with mx_error_set from that thread; the loader passes it on). */
typedef mx_status (*mx_batch_fill_fn)(void *ctx, const uint32_t *idx, size_t n, uint64_t epoch, float *x,
                                      int32_t *labels);

typedef struct {
    const float *x;
    const int32_t *labels;
    size_t n;                 /* rows in x and labels: this process's share of the batch */
    size_t first, total;      /* they are rows first..first+n of a batch of total (0 and n alone) */
} mx_loader_batch;

typedef struct mx_loader mx_loader;

/* workers threads (0: fill in the caller), depth batches in flight (>= 1). */
mx_status mx_loader_create(mx_batch_fill_fn fill, void *ctx, size_t sample_size, size_t max_batch, size_t workers,
                           size_t depth, mx_loader **out);

/* Data-parallel training: from the next epoch on, each batch of the order is
 * split over `ranks` processes as mx_dist_split does and this loader fills
 * only rank `rank`'s rows (max_batch then only needs to hold a share). The
 * default is rank 0 of 1: whole batches. */
mx_status mx_loader_set_share(mx_loader *loader, int rank, int ranks);

/* Starts producing the batches of an epoch: order[0..n) cut into batches of
 * `batch`, beginning with batch number `first` (to resume mid-epoch). The
 * order is copied. Any batches of an earlier epoch not taken are dropped. */
mx_status mx_loader_start_epoch(mx_loader *loader, const uint32_t *order, size_t n, size_t batch, size_t first,
                                uint64_t epoch);

/* The next batch of the epoch, waiting for it if need be; valid until the
 * next call. MX_ERR_ARG past the epoch's end; a fill error is returned with
 * its message. */
mx_status mx_loader_next(mx_loader *loader, mx_loader_batch *batch);

void mx_loader_destroy(mx_loader *loader);

/* The fill function for a dataset, in memory or streamed (decoded here, in
 * the worker threads): normalised and augmented as mx_augment_gather does.
 * ctx points at an mx_dataset_fill. */
typedef struct {
    const mx_dataset *ds;
    const mx_normalizer *nz;
    mx_augment_config augment;
    uint64_t seed;
} mx_dataset_fill;
mx_status mx_dataset_fill_batch(void *ctx, const uint32_t *idx, size_t n, uint64_t epoch, float *x, int32_t *labels);

#endif

/* The CNN graph's memory plan (see cnn_internal.h, docs/backends.md
 * "Memory"): which gradients the backward writes and which it adds into
 * (cnn_assign_slots), the tensors no backward reads and the batch-norm
 * outputs it recomputes in shared buffers, every buffer with the times it is
 * alive, packed so that buffers alive at no common time share memory
 * (build_layout, mem_pack.c), and the one arena holding it all
 * (cnn_plan_arena). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_internal.h"
#include "nn/mem_pack.h"

/* Gradient slots by liveness, walking the nodes as backward will: a tensor's
 * gradient is live from its last consumer's backward (which writes it; earlier
 * consumers add into it, through a scratch buffer: cnn_node.acc_in,
 * scratch_slot) to its producer's (which reads it and frees it). The arena
 * packs the gradients by those times (build_layout); the slots count them
 * and mark the tensors that have one (cnn_tensor.slot >= 0). */
mx_status cnn_assign_slots(cnn_graph *g)
{
    size_t T = g->num_tensors;
    uint8_t *seen = calloc(T, 1);
    int *free_slots = malloc(T * sizeof *free_slots);
    if (!seen || !free_slots) {
        free(seen);
        free(free_slots);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    size_t num_free = 0;
    mx_status st = MX_OK;
    seen[g->nodes[g->num_nodes - 1].out] = 1;  /* the logits: the caller's dlogits */
    for (size_t k = g->num_nodes; k-- > 0 && st == MX_OK;) {
        cnn_node *nd = &g->nodes[k];
        if (!seen[nd->out]) {
            st = mx_error_set(MX_ERR_ARG, "network: the output of layer %zu is never used", k);
            break;
        }
        int inputs[2] = {nd->in, nd->in2}, *acc[2] = {&nd->acc_in, &nd->acc_in2};
        for (int i = 0; i < 2; i++) {
            int t = inputs[i];
            if (t < 0) continue;
            *acc[i] = seen[t];
            if (seen[t]) continue;
            seen[t] = 1;
            if (t > 0) g->tensors[t].slot = num_free ? free_slots[--num_free] : (int)g->num_slots++;
        }
        /* The input gradient a layer adds into another goes to a slot free
         * while this node runs, not to a buffer of its own. */
        nd->scratch_slot = -1;
        if (nd->op != CNN_ADD && nd->acc_in) {
            nd->scratch_slot = num_free ? free_slots[--num_free] : (int)g->num_slots++;
            free_slots[num_free++] = nd->scratch_slot;
        }
        if (k + 1 < g->num_nodes) free_slots[num_free++] = g->tensors[nd->out].slot;
    }
    free(seen);
    free(free_slots);
    return st;
}

/* Whether node nd's backward reads its input t's values: convolution, linear
 * and batch-norm layers do, residual adds do not. */
static int reads_value(const cnn_node *nd, int t)
{
    return (nd->in == t || nd->in2 == t) && (nd->op == CNN_CONV || nd->op == CNN_LINEAR || nd->op == CNN_BN);
}

/* Whether a backward reads tensor t's values (not only its gradient):
 * convolution, linear and batch-norm layers read their input; a layer with a
 * ReLU (batch norm's fused one included) reads its output; the logits are the
 * caller's until the next forward. Max pooling and dropout keep their own
 * index and mask; add and average pooling read nothing; neither does a
 * convolution that keeps its own copy of its input, nor a ReLU whose mask
 * the backend records (cnn_backend.conv_keeps_input, keeps_relu_mask). */
static int backward_reads(const cnn_graph *g, int t)
{
    if (t == g->nodes[g->num_nodes - 1].out) return 1;
    for (size_t k = 0; k < g->num_nodes; k++) {
        const cnn_node *nd = &g->nodes[k];
        if (nd->out == t && nd->relu && !(g->be->keeps_relu_mask && g->be->keeps_relu_mask(g, k))) return 1;
        if (reads_value(nd, t) && !(nd->op == CNN_CONV && g->be->conv_keeps_input && g->be->conv_keeps_input(g, k)))
            return 1;
    }
    return 0;
}

/* Whether every backward reading batch norm node b's output is a
 * convolution that may recompute it into its own input-gradient buffer
 * (cnn_backend.recompute_in_dx). Then each does: a second reader (preact18's
 * downsampling shortcut) costs one more batch-norm pass, and no buffer holds
 * the output across the stretch between the two backwards (preact18 at batch
 * 128: a 32 MiB buffer that found no idle memory there). */
static int recompute_in_each_dx(const cnn_graph *g, size_t b)
{
    if (g->no_recompute_in_dx || !g->be->recompute_in_dx) return 0;
    size_t readers = 0;
    for (size_t j = b + 1; j < g->num_nodes; j++) {
        const cnn_node *nd = &g->nodes[j];
        if (!reads_value(nd, g->nodes[b].out)) continue;
        if (nd->op != CNN_CONV || nd->recompute_bn >= 0 || !g->be->recompute_in_dx(g, b, j)) return 0;
        readers++;
    }
    return readers > 0;
}

/* On a backend that can (cnn_backend.recomputes_bn_output: the cpu
 * backend), the output of batch norm node b with its ReLU need not be kept
 * for the backward: cnn_run_backward recomputes it (bn_recompute: from the
 * input, kept anyway, and the forward's per-channel constants, bit for bit)
 * just before the first backward that reads it, the last convolution,
 * linear or batch norm layer reading it, else b's own. Marks that node and
 * returns 1, or 0 when the output must be kept (the logits, a backend that
 * cannot, or a node that already recomputes another output). Where the
 * backend allows (cnn_backend.recompute_in_dx), the output is recomputed
 * instead before each reader's backward, into the buffer that convolution
 * writes its input gradient to, read there before it is overwritten: the
 * buffer it shares in the forward is then free in the backward, and may lie
 * where gradients go (build_layout; resnet20 at batch 128: 16 MiB fewer). */
static int plan_recompute(cnn_graph *g, size_t b)
{
    const cnn_node *bn = &g->nodes[b];
    if (g->predict_only) return 1; /* no backward: nothing to recompute, nothing kept */
    if (!g->be->recomputes_bn_output || bn->op != CNN_BN || !bn->relu || b + 1 == g->num_nodes) return 0;
    if (recompute_in_each_dx(g, b)) {
        for (size_t j = b + 1; j < g->num_nodes; j++)
            if (reads_value(&g->nodes[j], bn->out)) g->nodes[j].recompute_bn = (int)b, g->nodes[j].recompute_in_dx = 1;
        return 1;
    }
    size_t first = b;
    for (size_t j = b + 1; j < g->num_nodes; j++)
        if (reads_value(&g->nodes[j], bn->out)) first = j;
    if (g->nodes[first].recompute_bn >= 0) return 0;
    g->nodes[first].recompute_bn = (int)b;
    return 1;
}

/* Whether convolution node k's output is recomputed for the backward
 * (cnn_node.recompute_conv): the backend can (recomputes_conv_output), the
 * convolution reads the network's input and has no ReLU (whose backward
 * would read the output), and its output is not the logits. Only the first
 * such convolution: a node takes at most one (plan_conv_recompute). */
static int recomputes_conv(const cnn_graph *g, size_t k)
{
    const cnn_node *nd = &g->nodes[k];
    if (g->no_recompute_conv || !g->be->recomputes_conv_output || nd->op != CNN_CONV || nd->in != 0 || nd->relu ||
        k + 1 == g->num_nodes || !g->be->recomputes_conv_output(g, k))
        return 0;
    for (size_t j = 0; j < k; j++)
        if (g->nodes[j].in == 0 || g->nodes[j].in2 == 0) return 0;
    return 1;
}

/* The backward recomputes convolution c's output (recomputes_conv) before
 * the first event of the backward that needs it: the backward of a layer
 * reading its values, or the recomputation of a batch norm's output from it
 * (plan_recompute). The stem's output is the largest tensor a ResNet keeps
 * (preact18 at batch 128: 32 MiB of the 268 alive when the backward
 * starts), and from 3 input channels the cheapest to make again: preact18's
 * stem is 0.45 GFLOP of a 426 GFLOP step, and took about 9 ms of its 1.33 s
 * (0.7%; 32 MiB written out again). */
static void plan_conv_recompute(cnn_graph *g, size_t c)
{
    const int t = g->nodes[c].out;
    size_t first = c;
    for (size_t j = c + 1; j < g->num_nodes; j++) {
        const int b = g->nodes[j].recompute_bn;
        if (reads_value(&g->nodes[j], t) || (b >= 0 && g->nodes[b].in == t)) first = j;
    }
    g->nodes[first].recompute_conv = (int)c;
}

/* Tensors no backward reads, and batch-norm outputs the backward recomputes
 * (plan_recompute), need their values only while the forward walks from
 * their producer to their last reader (and, recomputed, within that stretch
 * of the backward): each gets a shared buffer, which the packing
 * (build_layout) lets other buffers overlap outside those times: preact18
 * at batch 128 keeps 243 MiB fewer. A model planned for prediction only
 * (g->predict_only) has no backward: every tensor shares, and a few
 * tensors' worth of memory holds the whole forward (resnet20 at 224x224:
 * 15 MiB a sample instead of 72). A tensor holds its buffer from the first
 * node that writes it (cnn_backend.first_writer: a prediction's fused
 * convolution writes its batch norm's or residual add's output) to its last
 * reader; a residual add's output may take over the buffer of an input it
 * reads last (cnn_backend.add_in_place), the one case of two tensors in
 * one buffer. Returns the number of shared buffers; size[b] their element
 * counts per sample. */
static size_t plan_shared(cnn_graph *g, size_t *size)
{
    const size_t T = g->num_tensors, N = g->num_nodes;
    size_t count = 0;
    size_t conv = CNN_NONE; /* the convolution whose output the backward recomputes */
    for (size_t k = 0; k < N; k++)
        g->nodes[k].recompute_bn = g->nodes[k].recompute_conv = -1, g->nodes[k].recompute_in_dx = 0;
    long *busy_until = calloc(T, sizeof *busy_until);  /* per buffer: the last node its tensor is read at */
    if (!busy_until) return 0;                          /* no sharing: every tensor keeps its own buffer */
    for (size_t k = 0; k < N; k++) {
        const int t = g->nodes[k].out;
        g->tensors[t].shared = -1;
        if (backward_reads(g, t) && !plan_recompute(g, k)) {
            if (!recomputes_conv(g, k)) continue;
            conv = k;
        }
        long last = (long)k;
        for (size_t j = k + 1; j < N; j++)
            if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = (long)j;
        /* A residual add's output over an input whose last reader it is,
         * where the backend's kernels allow (cnn_backend.add_in_place). */
        const int may_take_input = g->nodes[k].op == CNN_ADD && g->be->add_in_place && !g->no_adds_in_place;
        int in_place = -1;
        for (int i = 0; i < 2 && in_place < 0 && may_take_input; i++) {
            const int u = i ? g->nodes[k].in2 : g->nodes[k].in;
            if (u > 0 && g->tensors[u].shared >= 0 && busy_until[g->tensors[u].shared] == (long)k &&
                g->be->add_in_place(g, k, u))
                in_place = g->tensors[u].shared;
        }
        size_t b = in_place >= 0 ? (size_t)in_place : count;
        if (b == count) size[count++] = 0;
        busy_until[b] = last;
        if (g->tensors[t].size > size[b]) size[b] = g->tensors[t].size;
        g->tensors[t].shared = (int)b;
    }
    if (conv != CNN_NONE) plan_conv_recompute(g, conv);
    free(busy_until);
    return count;
}

/* ---- the arena's layout: every buffer with the times it is alive, packed
 * (mem_pack.h) so that buffers alive at no common time share memory. The
 * timeline: node k's forward in a training step at time k, its backward at
 * 2N - 1 - k, a prediction's forward at 2N + k. A gradient is alive from
 * its last reader's backward to its producer's, so it takes the memory of
 * activations the backward has read for the last time (preact18 at batch
 * 128: the stage-1 gradients where stages 2-4 kept theirs). ---- */

enum { ITEM_KEPT, ITEM_SHARED, ITEM_GRAD, ITEM_SCRATCH, ITEM_ARGMAX, ITEM_MASK, ITEM_PRED };

typedef struct {
    size_t N, words, count;
    uint64_t *bits;          /* `words` per item */
    mx_pack_item *items;
    unsigned char *kind;     /* ITEM_* */
    size_t *index;           /* the tensor, shared buffer or node it is for */
} layout;

static size_t bw(const layout *L, size_t k) { return 2 * L->N - 1 - k; }
static size_t pr(const layout *L, size_t k) { return 2 * L->N + k; }

static void mark(uint64_t *busy, size_t from, size_t to)
{
    for (size_t t = from; t <= to; t++) busy[t / 64] |= (uint64_t)1 << (t % 64);
}

static uint64_t *add_item(layout *L, int kind, size_t index, size_t bytes)
{
    const size_t i = L->count++;
    L->kind[i] = (unsigned char)kind;
    L->index[i] = index;
    L->items[i] = (mx_pack_item){bytes, L->bits + i * L->words, 0};
    return L->bits + i * L->words;
}

static size_t first_write(const cnn_graph *g, size_t k) { return g->be->first_writer ? g->be->first_writer(g, k) : k; }

/* The last node reading tensor t, produced by node k (k itself if none). */
static size_t last_read(const cnn_graph *g, int t, size_t k)
{
    size_t last = k;
    for (size_t j = k + 1; j < g->num_nodes; j++)
        if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = j;
    return last;
}

static void layout_free(layout *L)
{
    free(L->bits), free(L->items), free(L->kind), free(L->index);
}

/* Every buffer of the arena's packed region (on failure the caller frees
 * what was allocated) for a max batch of B and when
 * it is alive:
 * - a tensor a backward reads: from its first writer to its producer's
 *   backward (the logits: through the whole step, they are the caller's),
 *   and in a prediction from its first writer to its last reader, or
 *   through it all where the backend keeps data there across calls
 *   (cnn_backend.pred_keeps_output);
 * - a shared buffer: its tensors' forwards, in training and prediction
 *   (the backend keeps no data across calls in one), and the backward
 *   stretches where a batch norm's or the first convolution's
 *   output is recomputed into it (plan_recompute, plan_conv_recompute);
 *   always with g->shared_own_memory;
 * - a gradient: from its last reader's backward to its producer's;
 * - a node's scratch gradient (cnn_node.grad_scratch): its backward and
 *   the next one, the residual add that may read it (cnn_run_backward's
 *   `extra`);
 * - max pooling's arg-max and dropout's mask: from their node's forward
 *   to its backward, and in a prediction from its first writer to it;
 * - the backend's prediction region (cnn_graph.pred_region_bytes): every
 *   prediction's forward, never a training step: it may lie in gradients.
 * With g->no_packing every one is alive at all times. */
static mx_status build_layout(const cnn_graph *g, size_t B, size_t num_shared, const size_t *shared_size, layout *L)
{
    const size_t N = g->num_nodes, cap = 2 * g->num_tensors + 2 * N + 1;
    L->N = N, L->words = (3 * N + 63) / 64, L->count = 0;
    L->bits = calloc(cap * L->words, sizeof *L->bits);
    L->items = malloc(cap * sizeof *L->items);
    L->kind = malloc(cap);
    L->index = malloc(cap * sizeof *L->index);
    uint64_t **shared_busy = malloc((num_shared ? num_shared : 1) * sizeof *shared_busy);
    if (!L->bits || !L->items || !L->kind || !L->index || !shared_busy) {
        free(shared_busy);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    for (size_t b = 0; b < num_shared; b++) {
        shared_busy[b] = add_item(L, ITEM_SHARED, b, B * shared_size[b] * sizeof(float));
        if (g->shared_own_memory) mark(shared_busy[b], 0, 3 * N - 1);
    }
    for (size_t k = 0; k < N; k++) {
        const cnn_node *nd = &g->nodes[k];
        const int t = nd->out;
        const cnn_tensor *out = &g->tensors[t];
        const size_t from = first_write(g, k);
        if (out->shared >= 0) {
            const size_t last = last_read(g, t, k);
            mark(shared_busy[out->shared], from, last);
            mark(shared_busy[out->shared], pr(L, from), pr(L, last));
        } else {
            uint64_t *busy = add_item(L, ITEM_KEPT, (size_t)t, B * out->size * cnn_tensor_elem_bytes(g, t));
            mark(busy, from, k + 1 == N ? 2 * N - 1 : bw(L, k));
            if (g->be->pred_keeps_output && g->be->pred_keeps_output(g, k)) mark(busy, pr(L, 0), pr(L, N - 1));
            else mark(busy, pr(L, from), pr(L, last_read(g, t, k)));
        }
        const int r = nd->recompute_bn;
        if (r >= 0 && !nd->recompute_in_dx && g->tensors[g->nodes[r].out].shared >= 0)
            mark(shared_busy[g->tensors[g->nodes[r].out].shared], bw(L, k), bw(L, (size_t)r));
        if (nd->recompute_conv >= 0) /* from this node's backward to the convolution's own */
            mark(shared_busy[g->tensors[g->nodes[nd->recompute_conv].out].shared], bw(L, k),
                 bw(L, (size_t)nd->recompute_conv));
        if (nd->op == CNN_MAXPOOL || nd->op == CNN_DROPOUT) {
            const size_t elem = nd->op == CNN_MAXPOOL ? sizeof(uint32_t) : 1;
            uint64_t *busy = add_item(L, nd->op == CNN_MAXPOOL ? ITEM_ARGMAX : ITEM_MASK, k, B * out->size * elem);
            mark(busy, k, bw(L, k));
            mark(busy, pr(L, from), pr(L, k));
        }
        if (g->predict_only) continue;
        if (out->slot >= 0) {
            uint64_t *busy = add_item(L, ITEM_GRAD, (size_t)t, B * out->size * sizeof(float));
            mark(busy, bw(L, last_read(g, t, k)), bw(L, k));
        }
        if (nd->scratch_slot >= 0) {
            uint64_t *busy = add_item(L, ITEM_SCRATCH, k, B * g->tensors[nd->in].size * sizeof(float));
            mark(busy, bw(L, k), bw(L, k ? k - 1 : k));
        }
    }
    if (!g->predict_only && g->pred_region_bytes)
        mark(add_item(L, ITEM_PRED, 0, g->pred_region_bytes), pr(L, 0), pr(L, N - 1));
    for (size_t i = 0; g->no_packing && i < L->count; i++) mark(L->bits + i * L->words, 0, 3 * N - 1);
    free(shared_busy);
    return MX_OK;
}

static int overlaps(const mx_pack_item *a, const mx_pack_item *b)
{
    return a->offset < b->offset + b->bytes && b->offset < a->offset + a->bytes;
}

/* What the packing shares, for the tests and the executor: shared buffers
 * in memory a gradient takes in the backward (g->shared_over_grads), and
 * whether a gradient takes memory of a tensor the backward reads, which a
 * second backward of the same forward would then read overwritten
 * (g->backward_reuses). */
static void note_sharing(cnn_graph *g, const layout *L)
{
    g->shared_over_grads = 0, g->backward_reuses = 0;
    for (size_t i = 0; i < L->count; i++) {
        if (L->kind[i] == ITEM_GRAD || L->kind[i] == ITEM_SCRATCH || L->kind[i] == ITEM_PRED) continue;
        int over = 0;
        for (size_t j = 0; j < L->count && !over; j++)
            over = (L->kind[j] == ITEM_GRAD || L->kind[j] == ITEM_SCRATCH) && overlaps(&L->items[i], &L->items[j]);
        if (L->kind[i] == ITEM_SHARED) g->shared_over_grads += (size_t)over;
        else g->backward_reuses |= over;
    }
}

/* Points every buffer of the layout into the packed region at base. */
static void place(cnn_graph *g, const layout *L, unsigned char *base)
{
    float **shared = calloc(g->num_tensors, sizeof *shared);
    for (size_t i = 0; i < L->count; i++) {
        void *at = base + L->items[i].offset;
        const size_t x = L->index[i];
        switch (L->kind[i]) {
        case ITEM_KEPT: g->tensors[x].data = at; break;
        case ITEM_SHARED: if (shared) shared[x] = at; break;
        case ITEM_GRAD: g->tensors[x].grad = at; break;
        case ITEM_SCRATCH: g->nodes[x].grad_scratch = at; break;
        case ITEM_ARGMAX: g->nodes[x].argmax = at; break;
        case ITEM_MASK: g->nodes[x].mask = at; break;
        case ITEM_PRED: g->pred_region = at; break;
        }
    }
    for (size_t t = 1; shared && t < g->num_tensors; t++)
        if (g->tensors[t].shared >= 0) g->tensors[t].data = shared[g->tensors[t].shared];
    free(shared);
}

/* The samples the activation buffers hold for a max batch of B: all of them,
 * except where the backend predicts in chunks (cnn_backend.predict_samples). */
static size_t arena_samples(const cnn_graph *g, size_t B, int predict_only)
{
    return predict_only && g->be->predict_samples ? g->be->predict_samples(g, B) : B;
}

/* Lays out the arena for a max batch of B (g->predict_only saying for what):
 * measures it, then with `commit` allocates it and points the tensors, the
 * gradients and the nodes' saved state into it. *bytes: the measured size. */
mx_status cnn_plan_arena(cnn_graph *g, size_t max_batch, int commit, size_t *bytes)
{
    const size_t B = arena_samples(g, max_batch, g->predict_only);
    *bytes = SIZE_MAX;
    /* A bound on every buffer together: each of the layout's at most
     * `largest` floats a sample, with room to spare. */
    if (g->largest > SIZE_MAX / sizeof(float) / B / 4 / (2 * g->num_tensors + 2 * g->num_nodes + 1))
        return mx_error_set(MX_ERR_NOMEM, "network activations too large for batch %zu", max_batch);
    size_t *shared_size = calloc(g->num_tensors, sizeof *shared_size);
    if (!shared_size) return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    const size_t num_shared = plan_shared(g, shared_size);
    layout L = {0};
    mx_status st = build_layout(g, B, num_shared, shared_size, &L);
    free(shared_size);
    const size_t packed = st == MX_OK ? mx_pack(L.items, L.count, L.words) : SIZE_MAX;
    if (st != MX_OK) {
        layout_free(&L);
        return st;
    }
    if (packed == SIZE_MAX) {
        layout_free(&L);
        return mx_error_set(MX_ERR_NOMEM, "network activations too large for batch %zu", max_batch);
    }
    note_sharing(g, &L);
    for (int pass = 0; pass < 1 + commit; pass++) {
        if (pass == 0) {
            mx_arena_measure(&g->arena);
        } else {
            *bytes = g->arena.used;
            if ((st = mx_arena_commit(&g->arena)) != MX_OK) {
                layout_free(&L);
                return mx_error_wrap(st, "network buffers for batch %zu", max_batch);
            }
        }
        unsigned char *base = mx_arena_alloc(&g->arena, packed);
        if (base) place(g, &L, base);
        for (size_t k = 0; k < g->num_nodes; k++) {
            cnn_node *nd = &g->nodes[k];
            if (nd->op != CNN_BN) continue;
            nd->save_mean = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
            nd->save_invstd = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
        }
        g->workspace = mx_arena_alloc(&g->arena, g->workspace_bytes);
        if (g->be->reserve) g->be->reserve(g, &g->arena, B, pass == 1);
    }
    if (!commit) *bytes = g->arena.used;
    layout_free(&L);
    return MX_OK;
}

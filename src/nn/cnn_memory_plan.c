/* The CNN graph's memory plan (see cnn_internal.h, docs/backends.md
 * "Memory"): gradient slots by backward liveness (cnn_assign_slots), the
 * tensors no backward reads and the batch-norm outputs it recomputes in a few
 * shared buffers, those placed in gradient slots idle at their times, and the
 * one arena holding it all (cnn_plan_arena). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cnn_internal.h"

/* Gradient slots by liveness, walking the nodes as backward will: a tensor's
 * gradient is live from its last consumer's backward (which writes it; earlier
 * consumers add into it, through a slot free for the while) to its
 * producer's (which reads it and frees it). */
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
 * 128: a 32 MiB buffer that found no idle gradient slot there). */
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
 * in a gradient slot (place_shared; resnet20 at batch 128: 16 MiB fewer). */
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

/* Tensors no backward reads, and batch-norm outputs the backward recomputes
 * (plan_recompute), need their values only while the forward walks from
 * their producer to their last reader (and, recomputed, within that stretch
 * of the backward), so they share a few buffers: preact18 at batch 128 keeps
 * 243 MiB fewer. A model planned for prediction only (g->predict_only) has
 * no backward: every tensor shares, and a few buffers hold the whole
 * forward (resnet20 at 224x224: 15 MiB a sample instead of 72). A
 * tensor holds its buffer from the first node that writes it
 * (cnn_backend.first_writer: a prediction's fused convolution writes its
 * batch norm's or residual add's output) to its last reader, and a node's
 * output never shares with its inputs, but a residual add's may take over
 * the buffer of an input it reads last (cnn_backend.add_in_place). Returns
 * the number of shared buffers; size[b] their element counts per sample. */
static size_t plan_shared(cnn_graph *g, size_t *size)
{
    const size_t T = g->num_tensors, N = g->num_nodes;
    size_t count = 0;
    for (size_t k = 0; k < N; k++) g->nodes[k].recompute_bn = -1, g->nodes[k].recompute_in_dx = 0;
    long *busy_until = calloc(T, sizeof *busy_until);  /* per buffer: the last node its tensor is read at */
    if (!busy_until) return 0;                          /* no sharing: every tensor keeps its own buffer */
    for (size_t k = 0; k < N; k++) {
        const int t = g->nodes[k].out;
        g->tensors[t].shared = -1;
        if (backward_reads(g, t) && !plan_recompute(g, k)) continue;
        long last = (long)k;
        for (size_t j = k + 1; j < N; j++)
            if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = (long)j;
        const long start = (long)(g->be->first_writer ? g->be->first_writer(g, k) : k);
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
        size_t b = in_place >= 0 ? (size_t)in_place : 0;
        while (in_place < 0 && b < count && busy_until[b] >= start) b++;
        if (b == count) size[count++] = 0;
        busy_until[b] = last;
        if (g->tensors[t].size > size[b]) size[b] = g->tensors[t].size;
        g->tensors[t].shared = (int)b;
    }
    free(busy_until);
    return count;
}

/* Marks in busy[] (one byte per node) the nodes whose backward uses gradient
 * slot s: a tensor's slot from its last reader's backward down to its
 * producer's (cnn_assign_slots), and a node's scratch slot at that node. */
static void slot_busy(const cnn_graph *g, int s, uint8_t *busy)
{
    const size_t N = g->num_nodes;
    memset(busy, 0, N);
    for (size_t p = 0; p + 1 < N; p++) {
        const int t = g->nodes[p].out;
        if (g->nodes[p].scratch_slot == s) busy[p] = 1;
        if (g->tensors[t].slot != s) continue;
        size_t last = p;
        for (size_t j = p + 1; j < N; j++)
            if (g->nodes[j].in == t || g->nodes[j].in2 == t) last = j;
        memset(busy + p, 1, last - p + 1);
    }
    if (g->nodes[N - 1].scratch_slot == s) busy[N - 1] = 1;
}

/* Where each shared buffer lives (plan_shared): inside a gradient slot, or
 * (-1) in memory of its own. Slots hold gradients during the backward alone,
 * and a shared buffer holds its tensors during the forward, except for the
 * batch-norm outputs the backward recomputes into their own buffer (from
 * node `first` down to the batch norm b, plan_recompute): so a buffer fits
 * in a slot that no backward of those stretches uses (resnet20-bf16 at
 * batch 128: 24 MiB fewer, its shared buffers holding forward-only
 * tensors). One buffer per slot; slots are sized for the largest tensor, so
 * any fits. A prediction writes the shared buffers too, so a
 * backend keeps its prediction cache in slot 0 only where none is placed
 * there (cnn_graph.slot0_shared). */
static void place_shared(const cnn_graph *g, size_t num_shared, int *in_slot)
{
    const size_t N = g->num_nodes;
    for (size_t b = 0; b < num_shared; b++) in_slot[b] = -1;
    if (g->predict_only || !g->num_slots || g->shared_own_memory) return;
    uint8_t *busy = malloc(N), *need = malloc(N), *taken = calloc(g->num_slots, 1);
    for (size_t b = 0; busy && need && taken && b < num_shared; b++) {
        memset(need, 0, N);
        for (size_t j = 0; j < N; j++) {
            const int r = g->nodes[j].recompute_bn;
            if (r >= 0 && !g->nodes[j].recompute_in_dx && g->tensors[g->nodes[r].out].shared == (int)b)
                memset(need + r, 1, j - (size_t)r + 1);
        }
        for (size_t s = g->num_slots; s-- > 0 && in_slot[b] < 0;) {
            if (taken[s]) continue;
            slot_busy(g, (int)s, busy);
            size_t k = 0;
            while (k < N && !(busy[k] && need[k])) k++;
            if (k == N) in_slot[b] = (int)s, taken[s] = 1;
        }
    }
    free(busy), free(need), free(taken);
}

/* The samples the activation buffers hold for a max batch of B: all of them,
 * except where the backend predicts in chunks (cnn_backend.predict_samples). */
static size_t arena_samples(const cnn_graph *g, size_t B, int predict_only)
{
    return predict_only && g->be->predict_samples ? g->be->predict_samples(g, B) : B;
}

/* Lays out the arena for a max batch of B (g->predict_only saying for what):
 * measures it, then with `commit` allocates it and points the tensors, the
 * nodes' saved state and the gradient slots into it. *bytes: the measured size. */
mx_status cnn_plan_arena(cnn_graph *g, size_t max_batch, int commit, size_t *bytes)
{
    const size_t B = arena_samples(g, max_batch, g->predict_only);
    *bytes = SIZE_MAX;
    /* A bound on every buffer together: each tensor and slot at most `largest` floats a sample, with room to spare. */
    if (g->largest > SIZE_MAX / sizeof(float) / B / 4 / (g->num_tensors + g->num_slots + 1))
        return mx_error_set(MX_ERR_NOMEM, "network activations too large for batch %zu", max_batch);
    const size_t num_slots = g->predict_only ? 0 : g->num_slots;
    g->slots = commit ? calloc(num_slots ? num_slots : 1, sizeof *g->slots) : NULL;
    size_t *shared_size = calloc(g->num_tensors, sizeof *shared_size);
    float **shared = calloc(2 * g->num_tensors, sizeof *shared); /* the shared buffers, then the slots */
    int *in_slot = calloc(g->num_tensors, sizeof *in_slot);
    if ((commit && !g->slots) || !shared_size || !shared || !in_slot) {
        free(shared_size), free(shared), free(in_slot);
        return mx_error_set(MX_ERR_NOMEM, "out of memory planning the network");
    }
    const size_t num_shared = plan_shared(g, shared_size);
    place_shared(g, num_shared, in_slot);
    g->slot0_shared = 0, g->shared_in_slots = 0;
    for (size_t b = 0; b < num_shared; b++) g->slot0_shared |= in_slot[b] == 0, g->shared_in_slots += in_slot[b] >= 0;
    for (int pass = 0; pass < 1 + commit; pass++) {
        if (pass == 0) {
            mx_arena_measure(&g->arena);
        } else {
            *bytes = g->arena.used;
            mx_status st = mx_arena_commit(&g->arena);
            if (st != MX_OK) {
                free(shared_size), free(shared), free(in_slot);
                return mx_error_wrap(st, "network buffers for batch %zu", max_batch);
            }
        }
        float **slot_at = shared + num_shared; /* the slots' memory, for the buffers placed in them */
        for (size_t s = 0; s < num_slots; s++) {
            slot_at[s] = mx_arena_alloc(&g->arena, B * g->largest * sizeof(float));
            if (g->slots) g->slots[s] = slot_at[s]; /* NULL: measuring only */
        }
        for (size_t b = 0; b < num_shared; b++)
            shared[b] = in_slot[b] >= 0 ? slot_at[in_slot[b]] : mx_arena_alloc(&g->arena, B * shared_size[b] * sizeof(float));
        for (size_t t = 1; t < g->num_tensors; t++)
            g->tensors[t].data = g->tensors[t].shared >= 0
                                     ? shared[g->tensors[t].shared]
                                     : mx_arena_alloc(&g->arena, B * g->tensors[t].size * cnn_tensor_elem_bytes(g, (int)t));
        for (size_t k = 0; k < g->num_nodes; k++) {
            cnn_node *nd = &g->nodes[k];
            if (nd->op == CNN_BN) {
                nd->save_mean = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
                nd->save_invstd = mx_arena_alloc(&g->arena, g->tensors[nd->in].c * sizeof(float));
            } else if (nd->op == CNN_MAXPOOL) {
                nd->argmax = mx_arena_alloc(&g->arena, B * g->tensors[nd->out].size * sizeof(uint32_t));
            } else if (nd->op == CNN_DROPOUT) {
                nd->mask = mx_arena_alloc(&g->arena, B * g->tensors[nd->out].size);
            }
        }
        g->workspace = mx_arena_alloc(&g->arena, g->workspace_bytes);
        if (g->be->reserve) g->be->reserve(g, &g->arena, B, pass == 1);
    }
    if (!commit) *bytes = g->arena.used;
    free(shared_size), free(shared), free(in_slot);
    for (size_t t = 1; commit && t < g->num_tensors; t++)
        g->tensors[t].grad = !g->predict_only && g->tensors[t].slot >= 0 ? g->slots[g->tensors[t].slot] : NULL;
    return MX_OK;
}


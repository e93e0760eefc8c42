/* The oneDNN context (CPU engine, in-order stream, scratch arena) and the
 * helpers every plan uses: error mapping, scratch regions, primitives with a
 * user-managed scratchpad, and ports (caller layout <-> primitive layout). */
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/dnnl/dnnl_internal.h"

#define MXD_ALIGN 64

mx_status mxd_check(dnnl_status_t st, const char *what)
{
    if (st == dnnl_success) return MX_OK;
    return mx_error_set(st == dnnl_out_of_memory ? MX_ERR_NOMEM : MX_ERR_ARG, "oneDNN: %s: %s", what,
                        dnnl_status2str(st));
}

mx_status mx_dnnl_context_create(mx_dnnl_context **out)
{
    *out = NULL;
    mx_dnnl_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return mx_error_set(MX_ERR_NOMEM, "oneDNN context: out of memory");
    mx_status st = mxd_check(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0), "CPU engine");
    if (st == MX_OK) st = mxd_check(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags), "stream");
    if (st == MX_OK) {
        /* Never NULL, so region pointers are always valid arithmetic. */
        ctx->scratch = aligned_alloc(MXD_ALIGN, MXD_ALIGN);
        ctx->scratch_bytes = MXD_ALIGN;
        if (!ctx->scratch) st = mx_error_set(MX_ERR_NOMEM, "oneDNN context: out of memory");
    }
    if (st != MX_OK) {
        mx_dnnl_context_free(ctx);
        return st;
    }
    *out = ctx;
    return MX_OK;
}

void mx_dnnl_context_free(mx_dnnl_context *ctx)
{
    if (!ctx) return;
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    free(ctx->scratch);
    free(ctx);
}

size_t mx_dnnl_context_scratch_bytes(const mx_dnnl_context *ctx) { return ctx->scratch_bytes; }

void *mx_dnnl_context_scratch(const mx_dnnl_context *ctx) { return ctx->scratch; }

/* The old contents are not kept: nothing lives in the scratch from one call
 * to the next. */
mx_status mx_dnnl_context_reserve(mx_dnnl_context *ctx, size_t bytes)
{
    if (bytes <= ctx->scratch_bytes) return MX_OK;
    bytes = (bytes + MXD_ALIGN - 1) / MXD_ALIGN * MXD_ALIGN;
    unsigned char *grown = aligned_alloc(MXD_ALIGN, bytes);
    if (!grown) return mx_error_set(MX_ERR_NOMEM, "oneDNN: %zu bytes of scratch: out of memory", bytes);
    free(ctx->scratch);
    ctx->scratch = grown;
    ctx->scratch_bytes = bytes;
    return MX_OK;
}

size_t mxd_reserve(mxd_plan *plan, size_t bytes)
{
    size_t offset = plan->scratch_bytes;
    plan->scratch_bytes += (bytes + MXD_ALIGN - 1) / MXD_ALIGN * MXD_ALIGN;
    return offset;
}

void mxd_begin_phase(mxd_plan *plan)
{
    if (plan->scratch_bytes > plan->phase_bytes) plan->phase_bytes = plan->scratch_bytes;
    plan->scratch_bytes = 0;
}

mx_status mxd_attr(dnnl_primitive_attr_t *attr)
{
    mx_status st = mxd_check(dnnl_primitive_attr_create(attr), "primitive attribute");
    if (st != MX_OK) return st;
    st = mxd_check(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (st != MX_OK) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return st;
}

/* Makes pr's primitive and scratchpad memory from its pd. */
static mx_status prim_from_pd(mxd_plan *plan, mxd_prim *pr, const char *what)
{
    mx_status st = mxd_check(dnnl_primitive_create(&pr->prim, pr->pd), what);
    if (st != MX_OK) return st;
    const dnnl_memory_desc_t *pad = dnnl_primitive_desc_query_md(pr->pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = pad ? dnnl_memory_desc_get_size(pad) : 0;
    if (bytes) {
        st = mxd_check(dnnl_memory_create(&pr->scratchpad, pad, plan->ctx->engine, DNNL_MEMORY_NONE), what);
        if (st != MX_OK) return st;
        if (bytes > plan->pad_bytes) plan->pad_bytes = bytes;
    }
    return MX_OK;
}

mx_status mxd_prim_create(mxd_plan *plan, mxd_prim *pr, const void *op_desc, const_dnnl_primitive_desc_t hint,
                          const char *what)
{
    return mxd_prim_create_first(plan, pr, &op_desc, 1, hint, NULL, what);
}

mx_status mxd_prim_create_first(mxd_plan *plan, mxd_prim *pr, const void *const *op_descs, size_t count,
                                const_dnnl_primitive_desc_t hint, const_dnnl_post_ops_t post_ops, const char *what)
{
    dnnl_primitive_attr_t attr;
    mx_status st = mxd_attr(&attr);
    if (st != MX_OK) return st;
    if (post_ops) {
        st = mxd_check(dnnl_primitive_attr_set_post_ops(attr, post_ops), what);
        if (st != MX_OK) {
            dnnl_primitive_attr_destroy(attr);
            return st;
        }
    }
    dnnl_status_t made = dnnl_unimplemented;
    for (size_t i = 0; i < count && made == dnnl_unimplemented; i++)
        made = dnnl_primitive_desc_create(&pr->pd, op_descs[i], attr, plan->ctx->engine, hint);
    st = mxd_check(made, what);
    dnnl_primitive_attr_destroy(attr);
    if (st != MX_OK) {
        pr->pd = NULL;
        return st;
    }
    return prim_from_pd(plan, pr, what);
}

void mxd_prim_destroy(mxd_prim *pr)
{
    if (pr->scratchpad) dnnl_memory_destroy(pr->scratchpad);
    if (pr->prim) dnnl_primitive_destroy(pr->prim);
    if (pr->pd) dnnl_primitive_desc_destroy(pr->pd);
    memset(pr, 0, sizeof *pr);
}

const dnnl_memory_desc_t *mxd_md(const mxd_prim *pr, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pr->pd, what, 0);
}

const dnnl_memory_desc_t *mxd_md_at(const mxd_prim *pr, dnnl_query_t what, int index)
{
    return dnnl_primitive_desc_query_md(pr->pd, what, index);
}

const char *mxd_impl(const mxd_prim *pr)
{
    const char *name = NULL;
    if (!pr->pd || dnnl_primitive_desc_query(pr->pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name)
        return "";
    return name;
}

void *mxd_at(const mxd_plan *plan, size_t offset) { return plan->ctx->scratch + offset; }

mx_status mxd_exec(const mxd_plan *plan, const mxd_prim *pr, int nargs, dnnl_exec_arg_t *args, const char *what)
{
    if (pr->scratchpad) {
        mx_status st = mxd_check(dnnl_memory_set_data_handle(pr->scratchpad, mxd_at(plan, plan->pad_offset)), what);
        if (st != MX_OK) return st;
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = pr->scratchpad;
        nargs++;
    }
    return mxd_check(dnnl_primitive_execute(pr->prim, plan->ctx->stream, nargs, args), what);
}

mx_status mxd_plan_finish(mxd_plan *plan)
{
    if (plan->phase_bytes > plan->scratch_bytes) plan->scratch_bytes = plan->phase_bytes;
    plan->pad_offset = mxd_reserve(plan, plan->pad_bytes);
    return mx_dnnl_context_reserve(plan->ctx, plan->scratch_bytes);
}

/* ---- ports -------------------------------------------------------------------- */

/* scaled: the reorder's output scales per index of dimension 0 (input ports). */
static mx_status port_init(mxd_plan *plan, mxd_port *port, const dnnl_memory_desc_t *user_md,
                           const dnnl_memory_desc_t *prim_md, int output, int optional, int scaled)
{
    memset(port, 0, sizeof *port);
    port->output = output;
    dnnl_engine_t engine = plan->ctx->engine;
    const int same = dnnl_memory_desc_equal(user_md, prim_md);
    if (scaled && same) return mx_error_set(MX_ERR_UNSUPPORTED, "oneDNN: no reorder to scale in");
    mx_status st = mxd_check(dnnl_memory_create(&port->user, user_md, engine, DNNL_MEMORY_NONE), "memory");
    if (st != MX_OK) return st;
    if (same) {
        port->mem = port->user;
        if (output && optional) {
            port->offset = mxd_reserve(plan, dnnl_memory_desc_get_size(prim_md));
            port->has_region = 1;
        }
        return MX_OK;
    }
    st = mxd_check(dnnl_memory_create(&port->mem, prim_md, engine, DNNL_MEMORY_NONE), "memory");
    if (st != MX_OK) return st;
    dnnl_primitive_attr_t attr;
    st = mxd_attr(&attr);
    if (st != MX_OK) return st;
    const float runtime = DNNL_RUNTIME_F32_VAL;
    if (scaled) st = mxd_check(dnnl_primitive_attr_set_output_scales(attr, 1, 1 << 0, &runtime), "reorder scales");
    if (st == MX_OK)
        st = mxd_check(dnnl_reorder_primitive_desc_create(&port->reorder.pd, output ? prim_md : user_md, engine,
                                                          output ? user_md : prim_md, engine, attr),
                       "reorder");
    dnnl_primitive_attr_destroy(attr);
    if (st == MX_OK && scaled) {
        const dnnl_dims_t count = {user_md->dims[0]};
        dnnl_memory_desc_t md;
        st = mxd_check(dnnl_memory_desc_init_by_tag(&md, 1, count, dnnl_f32, dnnl_a), "memory descriptor");
        if (st == MX_OK) st = mxd_check(dnnl_memory_create(&port->scales, &md, engine, DNNL_MEMORY_NONE), "memory");
    }
    if (st != MX_OK) {
        if (scaled) mxd_port_destroy(port); /* the caller makes the plain port instead */
        else port->reorder.pd = NULL;
        return scaled ? mx_error_set(MX_ERR_UNSUPPORTED, "oneDNN: no scaled reorder here") : st;
    }
    port->offset = mxd_reserve(plan, dnnl_memory_desc_get_size(prim_md));
    port->has_region = 1;
    return prim_from_pd(plan, &port->reorder, "reorder");
}

mx_status mxd_port_init(mxd_plan *plan, mxd_port *port, const dnnl_memory_desc_t *user_md,
                        const dnnl_memory_desc_t *prim_md, int output, int optional)
{
    return port_init(plan, port, user_md, prim_md, output, optional, 0);
}

mx_status mxd_port_init_scaled(mxd_plan *plan, mxd_port *port, const dnnl_memory_desc_t *user_md,
                               const dnnl_memory_desc_t *prim_md)
{
    return port_init(plan, port, user_md, prim_md, 0, 0, 1);
}

mx_status mxd_port_scales(mxd_port *port, const float *scales)
{
    return mxd_check(dnnl_memory_set_data_handle(port->scales, (void *)(uintptr_t)scales), "memory handle");
}

void mxd_port_destroy(mxd_port *port)
{
    mxd_prim_destroy(&port->reorder);
    if (port->scales) dnnl_memory_destroy(port->scales);
    if (port->mem && port->mem != port->user) dnnl_memory_destroy(port->mem);
    if (port->user) dnnl_memory_destroy(port->user);
    memset(port, 0, sizeof *port);
}

mx_status mxd_port_bind(const mxd_plan *plan, mxd_port *port, const void *buffer)
{
    void *user = (void *)(uintptr_t)buffer; /* oneDNN's handles are not const; inputs are only read */
    if (port->mem == port->user) {
        if (!user && port->has_region) user = mxd_at(plan, port->offset);
        return mxd_check(dnnl_memory_set_data_handle(port->user, user), "memory handle");
    }
    mx_status st = mxd_check(dnnl_memory_set_data_handle(port->user, user), "memory handle");
    if (st != MX_OK) return st;
    return mxd_check(dnnl_memory_set_data_handle(port->mem, mxd_at(plan, port->offset)), "memory handle");
}

static mx_status port_reorder(const mxd_plan *plan, mxd_port *port)
{
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_FROM, port->output ? port->mem : port->user},
                               {DNNL_ARG_TO, port->output ? port->user : port->mem},
                               {DNNL_ARG_ATTR_OUTPUT_SCALES, port->scales}};
    return mxd_exec(plan, &port->reorder, port->scales ? 3 : 2, args, "reorder");
}

mx_status mxd_port_in(const mxd_plan *plan, mxd_port *port)
{
    return port->reorder.prim ? port_reorder(plan, port) : MX_OK;
}

mx_status mxd_port_out(const mxd_plan *plan, mxd_port *port, const void *buffer)
{
    return port->reorder.prim && buffer ? port_reorder(plan, port) : MX_OK;
}

mx_status mxd_plain_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    return mxd_check(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag), "memory descriptor");
}

mx_status mxd_check_batch(const char *op, size_t plan_n, size_t n)
{
    if (n == plan_n) return MX_OK;
    return mx_error_set(MX_ERR_ARG, "%s: batch size %zu, the plan was made for %zu", op, n, plan_n);
}

/* Shared machinery of the oneDNN kernels (src/nn/dnnl/): the context, error
 * mapping, a plan's scratch layout and "ports" (a tensor argument as the
 * caller holds it and as a primitive wants it, with the reorder between). */
#ifndef MIXREG_NN_DNNL_INTERNAL_H
#define MIXREG_NN_DNNL_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>

#include "mixreg/layers.h"
#include "mixreg/layers_dnnl.h"

struct mx_dnnl_context {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    unsigned char *scratch; /* 64-byte aligned; grown by plan creation only */
    size_t scratch_bytes;
};

/* Returns MX_OK for dnnl_success, else records "oneDNN: <what>: <status>". */
mx_status mxd_check(dnnl_status_t st, const char *what);

/* Everything a plan needs to run: its context and its scratch layout (regions
 * handed out by mxd_reserve, then one scratchpad region shared by all its
 * primitives, which run one after another). */
typedef struct {
    mx_dnnl_context *ctx;
    size_t scratch_bytes;   /* regions so far */
    size_t pad_bytes;       /* largest primitive scratchpad */
    size_t pad_offset;      /* set by mxd_plan_finish */
    size_t phase_bytes;     /* the largest earlier phase's regions (mxd_begin_phase) */
} mxd_plan;

/* A primitive, its descriptor and its scratchpad memory (NULL when it needs none). */
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t scratchpad;
} mxd_prim;

/* Offset of a new 64-byte-aligned region of `bytes` in the plan's scratch. */
size_t mxd_reserve(mxd_plan *plan, size_t bytes);

/* Starts a new phase of regions: those reserved from now on are used by
 * other calls than the earlier phases' (a forward's reorders, then the
 * backward's), and the context's scratch holds nothing from one call to the
 * next, so they may take the same bytes. */
void mxd_begin_phase(mxd_plan *plan);

/* An attribute with the user scratchpad mode (the caller destroys it). */
mx_status mxd_attr(dnnl_primitive_attr_t *attr);

/* Creates pr->pd from op_desc (hint: the forward pd of a backward primitive)
 * with a user scratchpad, the primitive, and its scratchpad memory; records
 * the scratchpad size in plan. */
mx_status mxd_prim_create(mxd_plan *plan, mxd_prim *pr, const void *op_desc, const_dnnl_primitive_desc_t hint,
                          const char *what);
/* As mxd_prim_create with the first of op_descs[0..count) that oneDNN
 * implements (the others are alternatives in order of preference, e.g. a
 * Winograd convolution and its direct fallback), and post_ops (NULL: none). */
mx_status mxd_prim_create_first(mxd_plan *plan, mxd_prim *pr, const void *const *op_descs, size_t count,
                                const_dnnl_primitive_desc_t hint, const_dnnl_post_ops_t post_ops, const char *what);
void mxd_prim_destroy(mxd_prim *pr);
/* The pd's memory descriptor for `what` (dnnl_query_src_md ...). */
const dnnl_memory_desc_t *mxd_md(const mxd_prim *pr, dnnl_query_t what);
/* The same for the index-th one (the bias is weights_md 1, diff bias diff_weights_md 1). */
const dnnl_memory_desc_t *mxd_md_at(const mxd_prim *pr, dnnl_query_t what, int index);
/* The pd's implementation name ("" without a pd). */
const char *mxd_impl(const mxd_prim *pr);

/* Executes with args[0..nargs) plus the scratchpad (args must have room for one more). */
mx_status mxd_exec(const mxd_plan *plan, const mxd_prim *pr, int nargs, dnnl_exec_arg_t *args, const char *what);

/* Sets the plan's scratchpad region and grows the context's scratch to fit. */
mx_status mxd_plan_finish(mxd_plan *plan);
/* The plan's region at `offset` in the context's scratch. */
void *mxd_at(const mxd_plan *plan, size_t offset);

/* ---- ports -------------------------------------------------------------------
 * user: a memory on the caller's buffer (handle set at each call); mem: the
 * one a primitive reads or writes, == user when the descriptors agree, else
 * on a scratch region, with `reorder` user -> mem (input) or mem -> user
 * (output). An optional output port also gets a region when there is no
 * reorder, to receive the result the caller did not ask for. */
typedef struct {
    dnnl_memory_t user, mem;
    mxd_prim reorder;
    size_t offset;
    int has_region, output;
    dnnl_memory_t scales;  /* mxd_port_init_scaled: the reorder's output scales, one per index of dimension 0 */
} mxd_port;

mx_status mxd_port_init(mxd_plan *plan, mxd_port *port, const dnnl_memory_desc_t *user_md,
                        const dnnl_memory_desc_t *prim_md, int output, int optional);
/* An input port whose reorder multiplies by a scale per index of the first
 * dimension (a convolution's output channels), given at each call
 * (mxd_port_scales): MX_ERR_UNSUPPORTED, the port left empty, where the
 * descriptors agree (no reorder) or oneDNN has no such reorder. */
mx_status mxd_port_init_scaled(mxd_plan *plan, mxd_port *port, const dnnl_memory_desc_t *user_md,
                               const dnnl_memory_desc_t *prim_md);
mx_status mxd_port_scales(mxd_port *port, const float *scales);
void mxd_port_destroy(mxd_port *port);
/* Binds the caller's buffer (NULL: an unwanted output, into the scratch region). */
mx_status mxd_port_bind(const mxd_plan *plan, mxd_port *port, const void *buffer);
/* Input: reorders the caller's data in (no-op without reorder). */
mx_status mxd_port_in(const mxd_plan *plan, mxd_port *port);
/* Output: reorders the result out to the caller's buffer unless it is NULL. */
mx_status mxd_port_out(const mxd_plan *plan, mxd_port *port, const void *buffer);
/* Whether the port reorders. */
static inline int mxd_port_reorders(const mxd_port *port) { return port->reorder.prim != NULL; }

/* A plain dense float32 memory descriptor (tag: dnnl_nchw, dnnl_oihw, dnnl_nc ...). */
mx_status mxd_plain_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag);

/* The common checks of an execute call. */
mx_status mxd_check_batch(const char *op, size_t plan_n, size_t n);

/* ---- a convolution's input gradient as forward convolutions (conv2d_dx.c) ----
 * From dy in bfloat16 NHWC: stride 1 with padding that keeps the size
 * (SAME: one forward straight into dx), 1x1 stride 2 (SPREAD: one forward
 * on the output's grid, placed at even pixels, zeros between) and 3x3
 * stride 2 padding 1 on even sides (PARITY: four forwards, one per parity
 * of dx's rows and columns). Built only where oneDNN gives the forwards its
 * AMX kernels (brgconv); mode NONE otherwise. */
enum { MXD_DX_NONE = 0, MXD_DX_SAME, MXD_DX_SPREAD, MXD_DX_PARITY };
#define MXD_DX_MAX_TAPS 7
typedef struct {
    mxd_prim prim;
    mxd_port wei;                  /* its weights, float32 [in][out][th][tw] */
    size_t th, tw;                 /* its kernel */
    size_t row[MXD_DX_MAX_TAPS], col[MXD_DX_MAX_TAPS]; /* the layer's kernel row, column under each tap */
    size_t a, b;                   /* the parity of dx's rows, columns it gives (SPREAD, PARITY) */
} mxd_dx_part;
typedef struct {
    int mode;
    size_t parts;
    mxd_dx_part part[4];
    dnnl_memory_t dy, dx;          /* dy as given; the forwards' output (dx, or the grid region) */
    size_t turned_offset, sub_offset; /* scratch regions: a part's weights; the output on dy's grid */
} mxd_dx_forward;

/* For convolution d whose dy has dst_dims and whose caller's dx is dx_user
 * (element type dx_type, NHWC). */
mx_status mxd_dx_forward_build(mxd_plan *plan, mxd_dx_forward *f, const mx_conv2d_desc *d, const dnnl_dims_t dst_dims,
                               const dnnl_memory_desc_t *dx_user, dnnl_data_type_t dx_type);
/* dx (elements of dx_bytes) from weight (float32 OIHW) and dy (bfloat16 NHWC). */
mx_status mxd_dx_forward_run(const mxd_plan *plan, mxd_dx_forward *f, const mx_conv2d_desc *d, size_t n,
                             size_t dx_bytes, const float *weight, void *dy, void *dx);
void mxd_dx_forward_free(mxd_dx_forward *f);
/* The forwards' oneDNN implementation ("" for NONE). */
const char *mxd_dx_forward_impl(const mxd_dx_forward *f);

#endif

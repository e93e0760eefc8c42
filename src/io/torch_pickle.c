/* The pickle subset of torch.save (torch_pickle.h). A state dict pickles as
 *   OrderedDict() MARK  key _rebuild_tensor_v2((persid ('storage',
 *   torch.FloatStorage, '0', 'cpu', numel)), offset, (sizes), (strides),
 *   requires_grad, OrderedDict())  ...  SETITEMS  {'_metadata': ...} BUILD
 * with every repeated object fetched from the memo. The interpreter keeps
 * values in one pool freed at the end; values refer to each other by
 * pointer, so a crafted pickle may make cycles (a dict holding itself):
 * nothing here walks values recursively. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixreg/checked.h"
#include "mixreg/torch_pickle.h"

/* Bounds far above a real state dict's (ResNet-50: ~2,800 memo entries,
 * ~6,000 values), which keep a hostile pickle's memory small. */
#define MAX_VALUES ((size_t)1 << 20)
#define MAX_ITEMS ((size_t)1 << 22)  /* container slots, all containers together */
#define MAX_STACK ((size_t)1 << 20)
#define MAX_MEMO ((size_t)1 << 20)
#define MAX_TENSORS ((size_t)1 << 16)  /* tensor objects, and entries of the state dict (an LLM's: a few thousand) */

typedef enum {
    V_MARK, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR
} vkind;

typedef enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE
} gkind;

typedef struct value value;
struct value {
    vkind kind;
    int64_t i;          /* INT, BOOL; STORAGE: numel */
    const char *s;      /* STR: into the pickle (not NUL-terminated); STORAGE: its key */
    size_t len;
    value **items;      /* TUPLE, LIST; DICT: key, value, key, value ... */
    size_t n, cap;      /* items used (DICT: 2 per entry) and allocated */
    gkind global;       /* GLOBAL */
    mx_dtype dtype;     /* GLOBAL G_STORAGE, STORAGE */
    mx_torch_tensor_ref *ref; /* TENSOR (name empty), allocated apart: most values are small */
};

typedef struct {
    const char *label;
    const uint8_t *start, *p, *end;
    value **pool;
    size_t pool_n, pool_cap;
    size_t items_total, tensors;
    value **stack;
    size_t sp, stack_cap;
    value **memo;
    size_t memo_cap, memo_used;  /* slots, and how many hold a value (MEMOIZE's next index) */
    value mark;
} vm;

static const struct {
    const char *name;
    mx_dtype dtype;
} storages[] = {
    {"FloatStorage", MX_DTYPE_F32}, {"HalfStorage", MX_DTYPE_F16}, {"BFloat16Storage", MX_DTYPE_BF16},
    {"DoubleStorage", MX_DTYPE_F64}, {"LongStorage", MX_DTYPE_I64}, {"IntStorage", MX_DTYPE_I32},
};

static mx_status bad(vm *m, const char *what)
{
    return mx_error_set(MX_ERR_FORMAT, "%s: data.pkl at byte %zu: %s", m->label, (size_t)(m->p - m->start), what);
}

static mx_status grow(void **array, size_t *cap, size_t need, size_t elem, size_t limit)
{
    if (need <= *cap) return MX_OK;
    if (need > limit) return MX_ERR_FORMAT;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) cap2 = cap2 > limit / 2 ? limit : cap2 * 2;
    void *p = realloc(*array, cap2 * elem);
    if (!p) return MX_ERR_NOMEM;
    *array = p;
    *cap = cap2;
    return MX_OK;
}

static value *new_value(vm *m, vkind kind)
{
    if (grow((void **)&m->pool, &m->pool_cap, m->pool_n + 1, sizeof(value *), MAX_VALUES) != MX_OK) return NULL;
    value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    m->pool[m->pool_n++] = v;
    return v;
}

static int add_item(vm *m, value *container, value *item)
{
    if (m->items_total >= MAX_ITEMS) return 0;
    if (grow((void **)&container->items, &container->cap, container->n + 1, sizeof(value *), MAX_ITEMS) != MX_OK)
        return 0;
    container->items[container->n++] = item;
    m->items_total++;
    return 1;
}

static int push(vm *m, value *v)
{
    if (!v || grow((void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof(value *), MAX_STACK) != MX_OK) return 0;
    m->stack[m->sp++] = v;
    return 1;
}

static value *pop(vm *m)
{
    return m->sp && m->stack[m->sp - 1] != &m->mark ? m->stack[--m->sp] : NULL;
}

static value *top(vm *m)
{
    return m->sp && m->stack[m->sp - 1] != &m->mark ? m->stack[m->sp - 1] : NULL;
}

/* The stack index just above the topmost mark, or SIZE_MAX when there is none. */
static size_t find_mark(const vm *m)
{
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i] == &m->mark) return i + 1;
    return SIZE_MAX;
}

static int take(vm *m, size_t n, const uint8_t **bytes)
{
    if ((size_t)(m->end - m->p) < n) return 0;
    *bytes = m->p;
    m->p += n;
    return 1;
}

static uint64_t le(const uint8_t *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | b[i];
    return v;
}

static int str_is(const value *v, const char *text)
{
    return v && v->kind == V_STR && v->len == strlen(text) && !memcmp(v->s, text, v->len);
}

/* A (module, name) pair this reader knows, as a GLOBAL value; NULL (error set) otherwise. */
static value *resolve_global(vm *m, const char *module, size_t module_len, const char *name, size_t name_len)
{
    value mod = {.kind = V_STR, .s = module, .len = module_len}, nm = {.kind = V_STR, .s = name, .len = name_len};
    value *g = NULL;
    if (str_is(&mod, "collections") && str_is(&nm, "OrderedDict")) {
        if ((g = new_value(m, V_GLOBAL))) g->global = G_ORDERED_DICT;
    } else if (str_is(&mod, "torch._utils") && str_is(&nm, "_rebuild_tensor_v2")) {
        if ((g = new_value(m, V_GLOBAL))) g->global = G_REBUILD_TENSOR;
    } else if (str_is(&mod, "torch._utils") && str_is(&nm, "_rebuild_parameter")) {
        if ((g = new_value(m, V_GLOBAL))) g->global = G_REBUILD_PARAMETER;
    } else if (str_is(&mod, "torch")) {
        for (size_t k = 0; k < sizeof storages / sizeof storages[0]; k++)
            if (str_is(&nm, storages[k].name) && (g = new_value(m, V_GLOBAL))) {
                g->global = G_STORAGE;
                g->dtype = storages[k].dtype;
            }
    }
    if (!g) {
        int ml = module_len > 60 ? 60 : (int)module_len, nl = name_len > 60 ? 60 : (int)name_len;
        char what[200];
        snprintf(what, sizeof what, "refusing the global '%.*s.%.*s' (only a state dict's tensors are read)", ml, module,
                 nl, name);
        for (char *c = what; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7F) *c = '?';
        mx_error_set(MX_ERR_FORMAT, "%s: data.pkl: %s", m->label, what);
    }
    return g;
}

/* A non-negative INT that fits in size_t (and 2^53, as PyTorch's sizes do). */
static int as_size(const value *v, size_t *out)
{
    if (!v || v->kind != V_INT || v->i < 0 || v->i > ((int64_t)1 << 53)) return 0;
    *out = (size_t)v->i;
    return 1;
}

static int int_tuple(const value *v, size_t *out, size_t *n)
{
    if (!v || v->kind != V_TUPLE || v->n > MX_ST_MAX_NDIM) return 0;
    for (size_t i = 0; i < v->n; i++)
        if (!as_size(v->items[i], &out[i])) return 0;
    *n = v->n;
    return 1;
}

/* BINPERSID: ('storage', storage class, key, location, numel). */
static value *persistent_load(vm *m, const value *pid)
{
    if (!pid || pid->kind != V_TUPLE || pid->n != 5 || !str_is(pid->items[0], "storage") ||
        pid->items[1]->kind != V_GLOBAL || pid->items[1]->global != G_STORAGE || pid->items[2]->kind != V_STR ||
        pid->items[2]->len == 0 || pid->items[2]->len >= sizeof ((mx_torch_tensor_ref *)0)->storage ||
        pid->items[3]->kind != V_STR)
        return NULL;
    size_t numel;
    if (!as_size(pid->items[4], &numel)) return NULL;
    for (size_t i = 0; i < pid->items[2]->len; i++)
        if (pid->items[2]->s[i] == '/' || (unsigned char)pid->items[2]->s[i] < 0x20) return NULL;
    value *s = new_value(m, V_STORAGE);
    if (!s) return NULL;
    s->dtype = pid->items[1]->dtype;
    s->s = pid->items[2]->s;
    s->len = pid->items[2]->len;
    s->i = (int64_t)numel;
    return s;
}

/* REDUCE: callable(*args) for the three callables this reader knows. */
static value *reduce(vm *m, const value *f, const value *args)
{
    if (!f || f->kind != V_GLOBAL || !args || args->kind != V_TUPLE) return NULL;
    if (f->global == G_ORDERED_DICT) return args->n == 0 ? new_value(m, V_DICT) : NULL;
    if (f->global == G_REBUILD_PARAMETER)  /* (tensor, requires_grad, backward_hooks): the tensor */
        return args->n == 3 && args->items[0]->kind == V_TENSOR ? args->items[0] : NULL;
    if (f->global != G_REBUILD_TENSOR || (args->n != 6 && args->n != 7)) return NULL;
    /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
    const value *storage = args->items[0];
    if (storage->kind != V_STORAGE || m->tensors >= MAX_TENSORS) return NULL;
    value *t = new_value(m, V_TENSOR);
    if (!t || !(t->ref = calloc(1, sizeof *t->ref))) return NULL;
    m->tensors++;
    mx_torch_tensor_ref *r = t->ref;
    size_t stride_n;
    if (!as_size(args->items[1], &r->offset) || !int_tuple(args->items[2], r->shape, &r->ndim) ||
        !int_tuple(args->items[3], r->stride, &stride_n) || stride_n != r->ndim || args->items[4]->kind != V_BOOL)
        return NULL;
    r->dtype = storage->dtype;
    memcpy(r->storage, storage->s, storage->len);
    r->storage[storage->len] = '\0';
    r->storage_numel = (size_t)storage->i;
    return t;
}

static mx_status run(vm *m, value **result)
{
    const uint8_t *b;
    while (m->p < m->end) {
        uint8_t op = *m->p++;
        value *v = NULL, *k, *x;
        size_t mark, n;
        switch (op) {
        case 0x80: /* PROTO */
            if (!take(m, 1, &b) || b[0] > 5) return bad(m, "unsupported pickle protocol");
            continue;
        case 0x95: /* FRAME: a length hint, nothing to do */
            if (!take(m, 8, &b)) return bad(m, "truncated");
            continue;
        case '.': /* STOP */
            if (!(*result = pop(m))) return bad(m, "STOP with nothing on the stack");
            return MX_OK;
        case '(': v = &m->mark; break;
        case '}': v = new_value(m, V_DICT); break;
        case ']': v = new_value(m, V_LIST); break;
        case ')': v = new_value(m, V_TUPLE); break;
        case 'N': v = new_value(m, V_NONE); break;
        case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
            if ((v = new_value(m, V_BOOL))) v->i = op == 0x88;
            break;
        case 'K': case 'M': case 'J': /* BININT1, BININT2, BININT */
            n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (!take(m, n, &b)) return bad(m, "truncated");
            if ((v = new_value(m, V_INT))) v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)le(b, 4) : (int64_t)le(b, n);
            break;
        case 0x8a: /* LONG1: n bytes of two's complement, at most 8 here */
            if (!take(m, 1, &b) || b[0] > 8) return bad(m, "integer out of range");
            n = b[0];
            if (!take(m, n, &b)) return bad(m, "truncated");
            if ((v = new_value(m, V_INT))) {
                uint64_t u = le(b, n);
                if (n && n < 8 && (b[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);  /* sign-extend */
                v->i = (int64_t)u;
            }
            break;
        case 'G': /* BINFLOAT: a checkpoint's loss or accuracy; its value is never used */
            if (!take(m, 8, &b)) return bad(m, "truncated");
            if ((v = new_value(m, V_FLOAT))) v->i = 0;
            break;
        case 'X': case 0x8c: case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
            n = op == 'X' ? 4 : op == 0x8c ? 1 : 8;
            if (!take(m, n, &b)) return bad(m, "truncated");
            {
                uint64_t len = le(b, n);
                if (len > (uint64_t)(m->end - m->p)) return bad(m, "a string runs past the end");
                if ((v = new_value(m, V_STR))) {
                    v->s = (const char *)m->p;
                    v->len = (size_t)len;
                }
                m->p += len;
            }
            break;
        case 'c': { /* GLOBAL: "module\nname\n" */
            const uint8_t *mod = m->p, *nl1 = memchr(mod, '\n', (size_t)(m->end - mod));
            const uint8_t *nm = nl1 ? nl1 + 1 : NULL, *nl2 = nm ? memchr(nm, '\n', (size_t)(m->end - nm)) : NULL;
            if (!nl2) return bad(m, "truncated GLOBAL");
            m->p = nl2 + 1;
            if (!(v = resolve_global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)nm, (size_t)(nl2 - nm))))
                return MX_ERR_FORMAT;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            x = pop(m), k = pop(m);
            if (!k || !x || k->kind != V_STR || x->kind != V_STR) return bad(m, "STACK_GLOBAL needs two strings");
            if (!(v = resolve_global(m, k->s, k->len, x->s, x->len))) return MX_ERR_FORMAT;
            break;
        case 't': case 'l': case 'd': /* TUPLE, LIST, DICT from the mark */
            if ((mark = find_mark(m)) == SIZE_MAX) return bad(m, "no MARK");
            if (op == 'd' && (m->sp - mark) % 2) return bad(m, "DICT with an odd number of items");
            if (!(v = new_value(m, op == 't' ? V_TUPLE : op == 'l' ? V_LIST : V_DICT))) break;
            for (size_t i = mark; i < m->sp; i++)
                if (!add_item(m, v, m->stack[i])) return bad(m, "too many objects");
            m->sp = mark - 1;
            break;
        case 0x85: case 0x86: case 0x87: /* TUPLE1..3 */
            n = (size_t)(op - 0x84);
            if (m->sp < n || (find_mark(m) != SIZE_MAX && find_mark(m) > m->sp - n)) return bad(m, "stack underflow");
            if (!(v = new_value(m, V_TUPLE))) break;
            for (size_t i = m->sp - n; i < m->sp; i++)
                if (!add_item(m, v, m->stack[i])) return bad(m, "too many objects");
            m->sp -= n;
            break;
        case 'a': /* APPEND */
            x = pop(m), k = top(m);
            if (!x || !k || k->kind != V_LIST || !add_item(m, k, x)) return bad(m, "APPEND to a non-list");
            continue;
        case 'e': case 'u': /* APPENDS, SETITEMS */
            if ((mark = find_mark(m)) == SIZE_MAX || mark < 2 || m->stack[mark - 2] == &m->mark) return bad(m, "no MARK");
            k = m->stack[mark - 2];
            if (k->kind != (op == 'e' ? V_LIST : V_DICT) || (op == 'u' && (m->sp - mark) % 2))
                return bad(m, op == 'e' ? "APPENDS to a non-list" : "SETITEMS on a non-dict");
            for (size_t i = mark; i < m->sp; i++)
                if (!add_item(m, k, m->stack[i])) return bad(m, "too many objects");
            m->sp = mark - 1;
            continue;
        case 's': /* SETITEM */
            x = pop(m), k = pop(m), v = top(m);
            if (!x || !k || !v || v->kind != V_DICT || !add_item(m, v, k) || !add_item(m, v, x))
                return bad(m, "SETITEM on a non-dict");
            continue;
        case 'Q': /* BINPERSID */
            if (!(v = persistent_load(m, pop(m)))) return bad(m, "a persistent id that is not a tensor storage");
            break;
        case 'R': /* REDUCE */
            x = pop(m), k = pop(m);
            if (!(v = reduce(m, k, x))) return bad(m, "REDUCE of something other than a tensor or an OrderedDict");
            break;
        case 'b': /* BUILD: only a dict's attributes (a state dict's _metadata), which are dropped */
            x = pop(m), k = top(m);
            if (!x || !k || k->kind != V_DICT) return bad(m, "BUILD on something other than a dict");
            continue;
        case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            size_t index;
            if (op == 0x94) {
                index = m->memo_used;
            } else {
                if (!take(m, op == 'q' ? 1 : 4, &b)) return bad(m, "truncated");
                index = (size_t)le(b, op == 'q' ? 1 : 4);
            }
            if (!(x = top(m))) return bad(m, "memo of nothing");
            size_t old = m->memo_cap;
            if (index >= MAX_MEMO ||
                grow((void **)&m->memo, &m->memo_cap, index + 1, sizeof(value *), MAX_MEMO) != MX_OK)
                return bad(m, "memo index out of range");
            memset(m->memo + old, 0, (m->memo_cap - old) * sizeof(value *));
            if (!m->memo[index]) m->memo_used++;
            m->memo[index] = x;
            continue;
        }
        case 'h': case 'j': { /* BINGET, LONG_BINGET */
            if (!take(m, op == 'h' ? 1 : 4, &b)) return bad(m, "truncated");
            size_t index = (size_t)le(b, op == 'h' ? 1 : 4);
            if (index >= m->memo_cap || !(v = m->memo[index])) return bad(m, "memo entry that was never stored");
            break;
        }
        default: {
            char what[80];
            snprintf(what, sizeof what, "opcode 0x%02x is not one a state dict uses", op);
            m->p--;
            return bad(m, what);
        }
        }
        if (!push(m, v)) return bad(m, "too many objects");
    }
    return bad(m, "no STOP");
}

/* The state dict: the top dict, or its "state_dict" / "model" entry. */
static const value *state_dict_of(const value *root)
{
    if (!root || root->kind != V_DICT) return NULL;
    for (size_t i = 0; i < root->n; i += 2)
        if ((str_is(root->items[i], "state_dict") || str_is(root->items[i], "model")) &&
            root->items[i + 1]->kind == V_DICT)
            return root->items[i + 1];
    return root;
}

static int compare_refs(const void *a, const void *b)
{
    return strcmp(((const mx_torch_tensor_ref *)a)->name, ((const mx_torch_tensor_ref *)b)->name);
}

static mx_status collect(const char *label, const value *sd, mx_torch_tensor_ref **refs, size_t *count)
{
    size_t n = sd->n / 2;
    if (n == 0) return mx_error_set(MX_ERR_FORMAT, "%s: the state dict holds no tensors", label);
    if (n > MAX_TENSORS)
        return mx_error_set(MX_ERR_FORMAT, "%s: the state dict has %zu entries, more than the %zu read", label, n,
                            MAX_TENSORS);
    mx_torch_tensor_ref *out = calloc(n, sizeof *out), *sorted = calloc(n, sizeof *sorted);
    mx_status st = out && sorted ? MX_OK : mx_error_set(MX_ERR_NOMEM, "%s: out of memory", label);
    for (size_t i = 0; st == MX_OK && i < n; i++) {
        const value *k = sd->items[2 * i], *v = sd->items[2 * i + 1];
        int printable = k->kind == V_STR && k->len > 0 && k->len < sizeof out[i].name;
        for (size_t c = 0; printable && c < k->len; c++)
            if ((unsigned char)k->s[c] < 0x20 || (unsigned char)k->s[c] == 0x7F) printable = 0;
        if (!printable) {
            st = mx_error_set(MX_ERR_FORMAT, "%s: state dict entry %zu: the key is not a name of 1 to %zu printable "
                              "bytes", label, i, sizeof out[i].name - 1);
        } else if (v->kind != V_TENSOR) {
            st = mx_error_set(MX_ERR_FORMAT, "%s: state dict entry '%.*s' is not a tensor", label, (int)k->len, k->s);
        } else {
            out[i] = *v->ref;
            memcpy(out[i].name, k->s, k->len);
            out[i].name[k->len] = '\0';
        }
    }
    if (st == MX_OK) {
        memcpy(sorted, out, n * sizeof *out);
        qsort(sorted, n, sizeof *sorted, compare_refs);
        for (size_t i = 1; st == MX_OK && i < n; i++)
            if (!strcmp(sorted[i - 1].name, sorted[i].name))
                st = mx_error_set(MX_ERR_FORMAT, "%s: the state dict names '%s' twice", label, sorted[i].name);
    }
    free(sorted);
    if (st != MX_OK) {
        free(out);
        return st;
    }
    *refs = out;
    *count = n;
    return MX_OK;
}

mx_status mx_torch_pickle_parse(const char *label, const uint8_t *pkl, size_t size, mx_torch_tensor_ref **refs,
                                size_t *count)
{
    *refs = NULL;
    *count = 0;
    if (size > MX_TORCH_PICKLE_MAX_BYTES)
        return mx_error_set(MX_ERR_FORMAT, "%s: data.pkl is %zu bytes, more than the %zu read", label, size,
                            MX_TORCH_PICKLE_MAX_BYTES);
    vm m;
    memset(&m, 0, sizeof m);
    m.label = label;
    m.start = m.p = pkl;
    m.end = pkl + size;
    m.mark.kind = V_MARK;
    value *root = NULL;
    mx_status st = run(&m, &root);
    if (st == MX_OK && m.sp != 0) st = bad(&m, "objects left on the stack after STOP");
    const value *sd = st == MX_OK ? state_dict_of(root) : NULL;
    if (st == MX_OK && !sd) st = mx_error_set(MX_ERR_FORMAT, "%s: data.pkl does not hold a dict (a state dict)", label);
    if (st == MX_OK) st = collect(label, sd, refs, count);
    for (size_t i = 0; i < m.pool_n; i++) {
        free(m.pool[i]->items);
        free(m.pool[i]->ref);
        free(m.pool[i]);
    }
    free(m.pool);
    free(m.stack);
    free(m.memo);
    return st;
}

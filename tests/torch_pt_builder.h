/* Builds torch.save-style .pt files byte by byte for the reader's tests and
 * the fuzz seeds: a pickle assembled from opcodes, stored in a zip archive
 * ("<prefix>/data.pkl", "<prefix>/data/<key>") written here, so each test can
 * break exactly one thing. Header-only. */
#ifndef MIXREG_TEST_TORCH_PT_BUILDER_H
#define MIXREG_TEST_TORCH_PT_BUILDER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct {
    uint8_t *b;
    size_t n, cap;
} pt_buf;

static void pt_put(pt_buf *p, const void *data, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        if (!p->b) abort();
    }
    memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void pt_byte(pt_buf *p, uint8_t v) { pt_put(p, &v, 1); }

static void pt_le(pt_buf *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++) pt_byte(p, (uint8_t)(v >> (8 * i)));
}

/* ---- pickle opcodes ---- */
static void pk_str(pt_buf *p, const char *s)  /* BINUNICODE */
{
    pt_byte(p, 'X');
    pt_le(p, strlen(s), 4);
    pt_put(p, s, strlen(s));
}

static void pk_global(pt_buf *p, const char *module, const char *name)
{
    pt_byte(p, 'c');
    pt_put(p, module, strlen(module));
    pt_byte(p, '\n');
    pt_put(p, name, strlen(name));
    pt_byte(p, '\n');
}

static void pk_int(pt_buf *p, uint32_t v)  /* BININT1, BININT2 or BININT */
{
    if (v < 256) {
        pt_byte(p, 'K');
        pt_byte(p, (uint8_t)v);
    } else if (v < 65536) {
        pt_byte(p, 'M');
        pt_le(p, v, 2);
    } else {
        pt_byte(p, 'J');
        pt_le(p, v, 4);
    }
}

/* _rebuild_tensor_v2(storage(key, numel), offset, (dims), (strides), False, OrderedDict()) for a 1-D tensor. */
static void pk_tensor1d(pt_buf *p, const char *storage_class, const char *key, uint32_t storage_numel, uint32_t offset,
                        uint32_t size, uint32_t stride)
{
    pk_global(p, "torch._utils", "_rebuild_tensor_v2");
    pt_byte(p, '(');
    pt_byte(p, '(');
    pk_str(p, "storage");
    pk_global(p, "torch", storage_class);
    pk_str(p, key);
    pk_str(p, "cpu");
    pk_int(p, storage_numel);
    pt_byte(p, 't');
    pt_byte(p, 'Q');          /* BINPERSID */
    pk_int(p, offset);
    pk_int(p, size);
    pt_byte(p, 0x85);         /* TUPLE1 */
    pk_int(p, stride);
    pt_byte(p, 0x85);
    pt_byte(p, 0x89);         /* NEWFALSE */
    pk_global(p, "collections", "OrderedDict");
    pt_byte(p, ')');
    pt_byte(p, 'R');
    pt_byte(p, 't');
    pt_byte(p, 'R');
}

/* ---- the zip archive ---- */
typedef struct {
    const char *name;
    const void *data;
    size_t size;
    int method;       /* 0 stored; anything else is written as declared (the data is not compressed) */
    int bad_crc;      /* declare a CRC one off */
} pt_entry;

/* Local headers with data, then the central directory and the end record. */
static pt_buf pt_zip(const pt_entry *e, size_t count)
{
    pt_buf z = {0};
    size_t offsets[64];
    for (size_t i = 0; i < count && i < 64; i++) {
        offsets[i] = z.n;
        uint32_t crc = (uint32_t)crc32(0L, e[i].data, (uInt)e[i].size) + (uint32_t)e[i].bad_crc;
        pt_le(&z, 0x04034b50u, 4);
        pt_le(&z, 20, 2);
        pt_le(&z, 0, 2);
        pt_le(&z, (uint64_t)e[i].method, 2);
        pt_le(&z, 0, 4);      /* time, date */
        pt_le(&z, crc, 4);
        pt_le(&z, e[i].size, 4);
        pt_le(&z, e[i].size, 4);
        pt_le(&z, strlen(e[i].name), 2);
        pt_le(&z, 0, 2);
        pt_put(&z, e[i].name, strlen(e[i].name));
        pt_put(&z, e[i].data, e[i].size);
    }
    size_t cd = z.n;
    for (size_t i = 0; i < count && i < 64; i++) {
        uint32_t crc = (uint32_t)crc32(0L, e[i].data, (uInt)e[i].size) + (uint32_t)e[i].bad_crc;
        pt_le(&z, 0x02014b50u, 4);
        pt_le(&z, 20, 2);
        pt_le(&z, 20, 2);
        pt_le(&z, 0, 2);
        pt_le(&z, (uint64_t)e[i].method, 2);
        pt_le(&z, 0, 4);
        pt_le(&z, crc, 4);
        pt_le(&z, e[i].size, 4);
        pt_le(&z, e[i].size, 4);
        pt_le(&z, strlen(e[i].name), 2);
        pt_le(&z, 0, 2);      /* extra */
        pt_le(&z, 0, 2);      /* comment */
        pt_le(&z, 0, 2);      /* disk */
        pt_le(&z, 0, 2);
        pt_le(&z, 0, 4);
        pt_le(&z, offsets[i], 4);
        pt_put(&z, e[i].name, strlen(e[i].name));
    }
    size_t cd_size = z.n - cd;
    pt_le(&z, 0x06054b50u, 4);
    pt_le(&z, 0, 2);
    pt_le(&z, 0, 2);
    pt_le(&z, count, 2);
    pt_le(&z, count, 2);
    pt_le(&z, cd_size, 4);
    pt_le(&z, cd, 4);
    pt_le(&z, 0, 2);
    return z;
}

/* The pickle of {"w": FloatTensor [1, 2]} (storage "0"), as torch.save writes it. */
static pt_buf pt_simple_pickle(void)
{
    pt_buf p = {0};
    pt_byte(&p, 0x80);
    pt_byte(&p, 2);
    pk_global(&p, "collections", "OrderedDict");
    pt_byte(&p, 'q');
    pt_byte(&p, 0);
    pt_byte(&p, ')');
    pt_byte(&p, 'R');
    pt_byte(&p, '(');
    pk_str(&p, "w");
    pk_tensor1d(&p, "FloatStorage", "0", 2, 0, 2, 1);
    pt_byte(&p, 'u');
    pt_byte(&p, '.');
    return p;
}

#endif

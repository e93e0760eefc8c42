#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mixreg/fileio.h"
#include "mixreg/tfevents.h"

#define HISTOGRAM_BUCKETS 30

struct mx_tfevents {
    int fd;
    char path[4096];
};

/* ---- CRC-32C, reflected polynomial 0x82F63B78, one table ---- */

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0);
        crc_table[i] = c;
    }
}

uint32_t mx_crc32c(const void *data, size_t size)
{
    if (!crc_table[1]) crc_init();
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t mx_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf encoding into a growable buffer ---- */

typedef struct {
    uint8_t *data;
    size_t size, cap;
    int failed;
} pbuf;

static void put_bytes(pbuf *b, const void *p, size_t n)
{
    if (b->failed || n == 0) return; /* an empty message has no bytes (and may have no buffer) */
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        while (cap < b->size + n) cap *= 2;
        uint8_t *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

static void put_varint(pbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    put_bytes(b, tmp, n);
}

static void put_key(pbuf *b, unsigned field, unsigned wire) { put_varint(b, ((uint64_t)field << 3) | wire); }

/* `bytes` little-endian bytes of `bits` (protobuf's fixed32/fixed64 encoding). */
static void put_fixed(pbuf *b, uint64_t bits, int bytes)
{
    uint8_t le[8];
    for (int i = 0; i < bytes; i++) le[i] = (uint8_t)(bits >> (8 * i));
    put_bytes(b, le, (size_t)bytes);
}

static void put_double(pbuf *b, unsigned field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    put_key(b, field, 1);
    put_fixed(b, bits, 8);
}

static void put_float(pbuf *b, unsigned field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_key(b, field, 5);
    put_fixed(b, bits, 4);
}

static void put_message(pbuf *b, unsigned field, const pbuf *inner)
{
    put_key(b, field, 2);
    put_varint(b, inner->size);
    put_bytes(b, inner->data, inner->size);
    if (inner->failed) b->failed = 1;
}

static void put_string(pbuf *b, unsigned field, const char *s)
{
    pbuf tmp = {(uint8_t *)s, strlen(s), strlen(s), 0};
    put_message(b, field, &tmp);
}

/* ---- records ---- */

/* One TFRecord (length, masked CRC of it, payload, masked CRC of it) built
 * whole in memory and appended as one record: a failed write leaves the file
 * ending at the previous record, never inside one. */
static mx_status write_record(mx_tfevents *w, const pbuf *event)
{
    if (event->failed) return mx_error_set(MX_ERR_NOMEM, "%s: out of memory encoding an event", w->path);
    pbuf record = {0};
    uint8_t header[12], footer[4];
    uint64_t len = event->size;
    for (int i = 0; i < 8; i++) header[i] = (uint8_t)(len >> (8 * i));
    uint32_t crc = mx_crc32c_mask(mx_crc32c(header, 8));
    for (int i = 0; i < 4; i++) header[8 + i] = (uint8_t)(crc >> (8 * i));
    crc = mx_crc32c_mask(mx_crc32c(event->data, event->size));
    for (int i = 0; i < 4; i++) footer[i] = (uint8_t)(crc >> (8 * i));
    put_bytes(&record, header, 12);
    put_bytes(&record, event->data, event->size);
    put_bytes(&record, footer, 4);
    mx_status st = record.failed ? mx_error_set(MX_ERR_NOMEM, "%s: out of memory encoding an event", w->path)
                                 : mx_file_append_record(w->fd, w->path, record.data, record.size);
    free(record.data);
    return st;
}

/* Event{wall_time = 1, step = 2, summary = 5 { value = 1 { tag = 1, ... } } } around one value. */
static mx_status write_value_event(mx_tfevents *w, int64_t step, double wall_time, const pbuf *value)
{
    pbuf summary = {0}, event = {0};
    put_message(&summary, 1, value);
    put_double(&event, 1, wall_time);
    put_key(&event, 2, 0);
    put_varint(&event, (uint64_t)step);
    put_message(&event, 5, &summary);
    mx_status st = write_record(w, &event);
    free(summary.data);
    free(event.data);
    return st;
}

mx_status mx_tfevents_scalar(mx_tfevents *w, const char *tag, int64_t step, double wall_time, double value)
{
    pbuf v = {0};
    put_string(&v, 1, tag);
    put_float(&v, 2, (float)value);
    mx_status st = write_value_event(w, step, wall_time, &v);
    free(v.data);
    return st;
}

mx_status mx_tfevents_histogram(mx_tfevents *w, const char *tag, int64_t step, double wall_time, const float *values,
                                size_t n)
{
    double lo = INFINITY, hi = -INFINITY, sum = 0, sum_sq = 0;
    size_t finite = 0;
    for (size_t i = 0; i < n; i++) {
        double x = values[i];
        if (!isfinite(x)) continue;
        finite++;
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += x, sum_sq += x * x;
    }
    if (!finite) lo = hi = 0;
    /* Equal-width buckets over [lo, hi]; a degenerate range gets one bucket. */
    size_t buckets = hi > lo ? HISTOGRAM_BUCKETS : 1;
    double limits[HISTOGRAM_BUCKETS], counts[HISTOGRAM_BUCKETS] = {0};
    for (size_t k = 0; k < buckets; k++) limits[k] = buckets == 1 ? hi : lo + (hi - lo) * (double)(k + 1) / (double)buckets;
    for (size_t i = 0; i < n; i++) {
        double x = values[i];
        if (!isfinite(x)) continue;
        size_t k = buckets == 1 ? 0 : (size_t)((x - lo) / (hi - lo) * (double)buckets);
        counts[k < buckets ? k : buckets - 1] += 1;
    }
    pbuf histo = {0}, packed_limits = {0}, packed_counts = {0}, v = {0};
    put_double(&histo, 1, lo);
    put_double(&histo, 2, hi);
    put_double(&histo, 3, (double)finite);
    put_double(&histo, 4, sum);
    put_double(&histo, 5, sum_sq);
    for (size_t k = 0; k < buckets; k++) {
        uint64_t bits;
        memcpy(&bits, &limits[k], 8);
        put_fixed(&packed_limits, bits, 8);
        memcpy(&bits, &counts[k], 8);
        put_fixed(&packed_counts, bits, 8);
    }
    put_message(&histo, 6, &packed_limits);
    put_message(&histo, 7, &packed_counts);
    put_string(&v, 1, tag);
    put_message(&v, 5, &histo);
    mx_status st = write_value_event(w, step, wall_time, &v);
    free(histo.data);
    free(packed_limits.data);
    free(packed_counts.data);
    free(v.data);
    return st;
}

/* Field numbers of the messages mx_tfevents_hparams writes. */
enum {
    VALUE_TAG = 1, VALUE_TENSOR = 8, VALUE_METADATA = 9,              /* Summary.Value */
    METADATA_PLUGIN_DATA = 1, METADATA_DATA_CLASS = 4,               /* SummaryMetadata */
    PLUGIN_NAME = 1, PLUGIN_CONTENT = 2,                             /* SummaryMetadata.PluginData */
    DATA_CLASS_TENSOR = 2,
    TENSOR_DTYPE = 1, TENSOR_SHAPE = 2, SHAPE_DIM = 2, DT_FLOAT = 1, /* TensorProto, TensorShapeProto */
    HPARAMS_SESSION_START_INFO = 3,                                  /* HParamsPluginData (version 1 = 0: omitted) */
    START_HPARAMS = 1, START_TIME_SECS = 5,                          /* SessionStartInfo */
    ENTRY_KEY = 1, ENTRY_VALUE = 2,                                  /* a map<string, Value> entry */
    PB_NUMBER = 2, PB_STRING = 3, PB_BOOL = 4                        /* google.protobuf.Value */
};

mx_status mx_tfevents_hparams(mx_tfevents *w, double wall_time, const mx_hparam *list, size_t count)
{
    pbuf start = {0}, content = {0}, plugin = {0}, metadata = {0}, shape = {0}, dim = {0}, tensor = {0}, v = {0};
    for (size_t i = 0; i < count; i++) {
        pbuf value = {0}, entry = {0};
        if (list[i].kind == MX_HPARAM_NUMBER) {
            put_double(&value, PB_NUMBER, list[i].number);
        } else if (list[i].kind == MX_HPARAM_BOOL) {
            put_key(&value, PB_BOOL, 0);
            put_varint(&value, list[i].on ? 1 : 0);
        } else {
            put_string(&value, PB_STRING, list[i].text ? list[i].text : "");
        }
        put_string(&entry, ENTRY_KEY, list[i].name);
        put_message(&entry, ENTRY_VALUE, &value);
        put_message(&start, START_HPARAMS, &entry);
        free(value.data);
        free(entry.data);
    }
    put_double(&start, START_TIME_SECS, wall_time);
    put_message(&content, HPARAMS_SESSION_START_INFO, &start);
    put_string(&plugin, PLUGIN_NAME, "hparams");
    put_message(&plugin, PLUGIN_CONTENT, &content);
    put_message(&metadata, METADATA_PLUGIN_DATA, &plugin);
    put_key(&metadata, METADATA_DATA_CLASS, 0);
    put_varint(&metadata, DATA_CLASS_TENSOR);
    /* The empty float vector TensorBoard stores with metadata-only summaries:
     * shape (0,), a dim whose size 0 is the default and so omitted. */
    put_message(&shape, SHAPE_DIM, &dim);
    put_key(&tensor, TENSOR_DTYPE, 0);
    put_varint(&tensor, DT_FLOAT);
    put_message(&tensor, TENSOR_SHAPE, &shape);
    put_string(&v, VALUE_TAG, "_hparams_/session_start_info");
    put_message(&v, VALUE_TENSOR, &tensor);
    put_message(&v, VALUE_METADATA, &metadata);
    mx_status st = write_value_event(w, 0, wall_time, &v);
    pbuf *all[] = {&start, &content, &plugin, &metadata, &shape, &dim, &tensor, &v};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]->data);
    return st;
}

mx_status mx_tfevents_open(const char *dir, mx_tfevents **out)
{
    *out = NULL;
    mx_status st = mx_make_dirs(dir);
    if (st != MX_OK) return st;
    mx_tfevents *w = calloc(1, sizeof *w);
    if (!w) return mx_error_set(MX_ERR_NOMEM, "out of memory for the event writer");
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.%ld.mixreg", dir, (long long)time(NULL), host,
             (long)getpid());
    /* A new file, never an existing one nor through a symbolic link. */
    w->fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        st = mx_error_set(MX_ERR_IO, "%s: cannot create: %s", w->path,
                          errno == EEXIST ? "it exists already (refusing to write into or through it)" : strerror(errno));
        free(w);
        return st;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pbuf event = {0};
    put_double(&event, 1, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
    put_string(&event, 3, "brain.Event:2");
    st = write_record(w, &event);
    free(event.data);
    if (st == MX_OK) st = mx_tfevents_flush(w);
    if (st != MX_OK) {
        mx_tfevents_close(w);
        return st;
    }
    *out = w;
    return MX_OK;
}

mx_status mx_tfevents_flush(mx_tfevents *w)
{
    (void)w; /* records go to the file as they are written: nothing is buffered */
    return MX_OK;
}

void mx_tfevents_close(mx_tfevents *w)
{
    if (!w) return;
    close(w->fd);
    free(w);
}

const char *mx_tfevents_path(const mx_tfevents *w) { return w->path; }

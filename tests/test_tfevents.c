/* TensorBoard event files: CRC-32C vectors, TFRecord framing read back, and a
 * scalar event decoded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mixreg/fileio.h"
#include "mixreg/tfevents.h"
#include "test_tmp.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static uint64_t varint(const uint8_t **p)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return v;
    }
}

int main(void)
{
    CHECK(mx_crc32c("123456789", 9) == 0xE3069283u);
    uint8_t zeros[32] = {0};
    CHECK(mx_crc32c(zeros, 32) == 0x8A9136AAu);
    CHECK(mx_crc32c("", 0) == 0);

    make_temp_root_for("tfevents");
    mx_tfevents *w;
    CHECK_OK(mx_tfevents_open(g_tmp, &w));
    if (!w) CHECK_DONE();
    CHECK_OK(mx_tfevents_scalar(w, "test/accuracy", 300, 1700000000.5, 0.875));
    float values[5] = {-1, 0, 0.5, 2, 3};
    CHECK_OK(mx_tfevents_histogram(w, "weights/1.weight", 300, 1700000001.0, values, 5));
    CHECK_OK(mx_tfevents_histogram(w, "weights/empty", 300, 1700000001.0, values, 0));
    char path[4200];
    snprintf(path, sizeof path, "%s", mx_tfevents_path(w));
    mx_tfevents_close(w);

    char *data;
    size_t size;
    CHECK_OK(mx_file_read_all(path, 1 << 20, &data, &size));
    const uint8_t *p = (const uint8_t *)data, *end = p + size;
    int records = 0, found_scalar = 0;
    while (p + 12 <= end) {
        uint64_t len = le32(p) | (uint64_t)le32(p + 4) << 32;
        CHECK(le32(p + 8) == mx_crc32c_mask(mx_crc32c(p, 8)));
        CHECK(p + 16 + len <= end);
        if (p + 16 + len > end) break;
        const uint8_t *payload = p + 12;
        CHECK(le32(payload + len) == mx_crc32c_mask(mx_crc32c(payload, len)));
        if (records == 1) {
            /* Event: wall_time (field 1, fixed64), step (2, varint), summary (5). */
            const uint8_t *q = payload;
            CHECK(*q++ == 0x09);
            double wall;
            memcpy(&wall, q, 8);
            CHECK(wall == 1700000000.5);
            q += 8;
            CHECK(*q++ == 0x10);
            CHECK(varint(&q) == 300);
            CHECK(*q++ == 0x2a);
            varint(&q);              /* summary length */
            CHECK(*q++ == 0x0a);     /* Summary.value */
            varint(&q);
            CHECK(*q++ == 0x0a);     /* Value.tag */
            uint64_t tag_len = varint(&q);
            CHECK(tag_len == strlen("test/accuracy") && !memcmp(q, "test/accuracy", tag_len));
            q += tag_len;
            CHECK(*q++ == 0x15);     /* simple_value, fixed32 */
            float v;
            memcpy(&v, q, 4);
            CHECK(v == 0.875f);
            found_scalar = 1;
        }
        records++;
        p += 16 + len;
    }
    CHECK(p == end);
    CHECK(records == 4);  /* file_version, scalar, two histograms */
    CHECK(found_scalar);
    free(data);
    remove(path);
    remove(g_tmp);

    /* An unwritable place is an I/O error naming it. */
    CHECK(mx_tfevents_open("/proc/no-such-dir/tb", &w) == MX_ERR_IO);
    CHECK(w == NULL);
    CHECK_DONE();
}

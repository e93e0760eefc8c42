#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mixreg/arena.h"

int main(void)
{
    mx_arena a;
    size_t sizes[3] = {10, 64, 1000};
    void *p[3];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) mx_arena_measure(&a);
        else CHECK_OK(mx_arena_commit(&a));
        for (int i = 0; i < 3; i++) p[i] = mx_arena_alloc(&a, sizes[i]);
        if (pass == 0) {
            CHECK(p[0] == NULL);
            CHECK(a.used == 64 + 64 + 1024);
        }
    }
    for (int i = 0; i < 3; i++) {
        CHECK(p[i] != NULL);
        CHECK((uintptr_t)p[i] % MX_ARENA_ALIGN == 0);
    }
    /* Disjoint and zero-filled. */
    CHECK((char *)p[1] >= (char *)p[0] + 10 && (char *)p[2] >= (char *)p[1] + 64);
    CHECK(((unsigned char *)p[2])[999] == 0);
    memset(p[2], 0xff, 1000);
    /* An allocation the plan did not measure is refused, not overrun. */
    CHECK(mx_arena_alloc(&a, 1) == NULL);
    mx_arena_free(&a);
    CHECK(a.base == NULL);
    CHECK_DONE();
}

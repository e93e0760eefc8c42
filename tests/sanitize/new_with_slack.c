/* C++'s operator new and delete for the sanitizer build's executables
 * (linked into every one of them by CMakeLists.txt when MIXREG_SANITIZE is
 * on, and into the fuzz targets by scripts/fuzz.sh; never into a released
 * binary): every block gets 16 bytes more than it asked for.
 *
 * Why: oneDNN 2.6.3's AMX brgemm kernel generator, for kernels that skip
 * padded rows (a row mask), reads one size_t past the end of a
 * std::vector<size_t> with one entry per row, when it steps past the last
 * block (jit_brgemm_amx_uker.cpp, skipped_bd_mask(inp_bd_) in the row loop's
 * rewind). It makes such kernels for the bfloat16 3x3 convolutions whose
 * output is at most 3x3 (seen: every one tried from 1x1 to 3x3, 16 to 512
 * channels; none at 4x4), as in resnet50's last stages on 32x32 images.
 * Behind a small block glibc's malloc has either the block's own unused
 * tail or the next chunk's header, never an unmapped page, so released
 * builds read 8 bytes of mapped memory and drop them. AddressSanitizer's
 * allocator packs blocks end to end and maps them 64 KiB at a time: when the
 * vector is the last block of its mapping, the read lands on an unmapped page
 * and the test dies with SEGV inside libdnnl (test_predict_bf16, about one
 * run in four). libdnnl is not instrumented, so the extra bytes hide nothing
 * the sanitizers would see: they only keep that read on a mapped page.
 *
 * The executable's definitions come first in the symbol lookup, before the
 * sanitizer runtime's and libstdc++'s, so libdnnl and libstdc++ get these.
 * Every form allocates with malloc (or aligned_alloc) and frees with free,
 * so no block crosses from one allocator to another. */
#include <stdlib.h>

#define NEW_SLACK 16

static void *allocate(size_t bytes, size_t align, int may_fail)
{
    void *p;
    if (align <= 16) {
        p = malloc(bytes + NEW_SLACK);
    } else {
        /* aligned_alloc wants a multiple of the alignment */
        size_t padded = (bytes + NEW_SLACK + align - 1) / align * align;
        p = aligned_alloc(align, padded);
    }
    if (!p && !may_fail) abort(); /* no exception to throw from C: the process stops, as new_handler-less new would */
    return p;
}

/* The names are the Itanium C++ ABI's manglings of the standard forms. */
void *_Znwm(size_t n);
void *_Znam(size_t n);
void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag);
void *_ZnamRKSt9nothrow_t(size_t n, const void *tag);
void *_ZnwmSt11align_val_t(size_t n, size_t align);
void *_ZnamSt11align_val_t(size_t n, size_t align);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag);
void _ZdlPv(void *p);
void _ZdaPv(void *p);
void _ZdlPvm(void *p, size_t n);
void _ZdaPvm(void *p, size_t n);
void _ZdlPvRKSt9nothrow_t(void *p, const void *tag);
void _ZdaPvRKSt9nothrow_t(void *p, const void *tag);
void _ZdlPvSt11align_val_t(void *p, size_t align);
void _ZdaPvSt11align_val_t(void *p, size_t align);
void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align);
void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag);

void *_Znwm(size_t n) { return allocate(n, 0, 0); }
void *_Znam(size_t n) { return allocate(n, 0, 0); }
void *_ZnwmRKSt9nothrow_t(size_t n, const void *tag) { (void)tag; return allocate(n, 0, 1); }
void *_ZnamRKSt9nothrow_t(size_t n, const void *tag) { (void)tag; return allocate(n, 0, 1); }
void *_ZnwmSt11align_val_t(size_t n, size_t align) { return allocate(n, align, 0); }
void *_ZnamSt11align_val_t(size_t n, size_t align) { return allocate(n, align, 0); }
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag)
{
    (void)tag;
    return allocate(n, align, 1);
}
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *tag)
{
    (void)tag;
    return allocate(n, align, 1);
}

void _ZdlPv(void *p) { free(p); }
void _ZdaPv(void *p) { free(p); }
void _ZdlPvm(void *p, size_t n) { (void)n, free(p); }
void _ZdaPvm(void *p, size_t n) { (void)n, free(p); }
void _ZdlPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag, free(p); }
void _ZdaPvRKSt9nothrow_t(void *p, const void *tag) { (void)tag, free(p); }
void _ZdlPvSt11align_val_t(void *p, size_t align) { (void)align, free(p); }
void _ZdaPvSt11align_val_t(void *p, size_t align) { (void)align, free(p); }
void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align) { (void)n, (void)align, free(p); }
void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align) { (void)n, (void)align, free(p); }
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) { (void)align, (void)tag, free(p); }
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *tag) { (void)align, (void)tag, free(p); }

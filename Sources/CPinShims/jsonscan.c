#include "pinshims.h"
#if defined(__x86_64__)
#include <emmintrin.h>
#include <immintrin.h>
#endif

#if defined(__x86_64__)
/* 32 bytes a step with AVX2 (checked once at run time); the SSE2 loop below takes the rest. */
__attribute__((target("avx2")))
static size_t plain_run_avx2(const uint8_t *p, size_t n) {
    size_t i = 0;
    const __m256i quote = _mm256_set1_epi8('"');
    const __m256i backslash = _mm256_set1_epi8('\\');
    const __m256i ctl = _mm256_set1_epi8(0x1f);
    while (i + 32 <= n) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i m = _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash));
        m = _mm256_or_si256(m, _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctl), v));
        unsigned mask = (unsigned)_mm256_movemask_epi8(m) | (unsigned)_mm256_movemask_epi8(v);
        if (mask) return i + (size_t)__builtin_ctz(mask);
        i += 32;
    }
    return i;
}
static int plain_avx2 = -1;
#endif

size_t pb_json_plain_run(const uint8_t *p, size_t n) {
    size_t i = 0;
#if defined(__x86_64__)
    if (n >= 32) {
        int a = __atomic_load_n(&plain_avx2, __ATOMIC_RELAXED);
        if (a < 0) { __builtin_cpu_init(); a = __builtin_cpu_supports("avx2") ? 1 : 0; __atomic_store_n(&plain_avx2, a, __ATOMIC_RELAXED); }
        if (a) {
            i = plain_run_avx2(p, n);
            if (i + 32 <= n) return i;  /* stopped at a special byte */
        }
    }
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        m = _mm_or_si128(m, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v));  /* v <= 0x1f, unsigned */
        int mask = _mm_movemask_epi8(m) | _mm_movemask_epi8(v);        /* high bit: not ASCII */
        if (mask) return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    for (; i < n; i++) {
        uint8_t b = p[i];
        if (b == '"' || b == '\\' || b < 0x20 || b >= 0x80) return i;
    }
    return n;
}

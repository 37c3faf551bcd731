// Base64 encoding, AVX2: 24 input bytes become 32 characters per step (W. Mula and D. Lemire, "Faster
// Base64 Encoding and Decoding using AVX2 Instructions", ACM TOW 2018; the reshuffle and translate steps
// below follow that paper). The caller encodes the tail with its scalar code.
#include "pinshims.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static inline __m256i enc_reshuffle(__m256i input) {
    const __m256i in = _mm256_shuffle_epi8(input, _mm256_set_epi8(
        10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
        14, 15, 13, 14, 11, 12, 10, 11, 8, 9, 7, 8, 5, 6, 4, 5));
    const __m256i t0 = _mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00));
    const __m256i t1 = _mm256_mulhi_epu16(t0, _mm256_set1_epi32(0x04000040));
    const __m256i t2 = _mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0));
    const __m256i t3 = _mm256_mullo_epi16(t2, _mm256_set1_epi32(0x01000010));
    return _mm256_or_si256(t1, t3);
}

__attribute__((target("avx2")))
static inline __m256i enc_translate(__m256i in) {
    const __m256i lut = _mm256_setr_epi8(
        65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0,
        65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    __m256i indices = _mm256_subs_epu8(in, _mm256_set1_epi8(51));
    const __m256i mask = _mm256_cmpgt_epi8(in, _mm256_set1_epi8(25));
    indices = _mm256_sub_epi8(indices, mask);
    return _mm256_add_epi8(in, _mm256_shuffle_epi8(lut, indices));
}

__attribute__((target("avx2")))
static size_t encode_avx2(const uint8_t *src, size_t n, uint8_t *dst) {
    size_t i = 0;
    if (n < 28) return 0;
    // The first load starts 4 bytes before src: those 4 bytes are masked out (never read).
    __m256i v = _mm256_maskload_epi32((const int *)(const void *)(src - 4),
        _mm256_set_epi32((int)0x80000000, (int)0x80000000, (int)0x80000000, (int)0x80000000,
                         (int)0x80000000, (int)0x80000000, (int)0x80000000, 0));
    size_t o = 0;
    for (;;) {
        _mm256_storeu_si256((__m256i *)(void *)(dst + o), enc_translate(enc_reshuffle(v)));
        i += 24;
        o += 32;
        if (i + 28 > n) break;  // the next load reads src[i-4 ..< i+28]
        v = _mm256_loadu_si256((const __m256i *)(const void *)(src + i - 4));
    }
    return i;
}

static int have_avx2 = -1;

size_t pb_base64_encode_simd(const uint8_t *src, size_t n, uint8_t *dst) {
    int a = __atomic_load_n(&have_avx2, __ATOMIC_RELAXED);
    if (a < 0) {
        __builtin_cpu_init();
        a = __builtin_cpu_supports("avx2") ? 1 : 0;
        __atomic_store_n(&have_avx2, a, __ATOMIC_RELAXED);
    }
    return a ? encode_avx2(src, n, dst) : 0;
}
#else
size_t pb_base64_encode_simd(const uint8_t *src, size_t n, uint8_t *dst) {
    (void)src; (void)n; (void)dst;
    return 0;
}
#endif

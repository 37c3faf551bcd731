#define _GNU_SOURCE
#include "pinshims.h"
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t table[8][256];
static int table_ready = 0;

static void build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) { c = table[0][c & 0xff] ^ (c >> 8); table[k][n] = c; }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t pb_crc32c_sw(uint32_t crc, const void *data, size_t len) {
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) build_tables();
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) { c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8); len--; }
    while (len >= 8) {
        uint64_t w; memcpy(&w, p, 8);
        w ^= c;
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
            table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8; len -= 8;
    }
    while (len--) c = table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Three independent crc32 streams hide the instruction's 3-cycle latency; the streams' CRCs are then
   combined by shifting through LONG (or SHORT) zero bytes with precomputed tables (Mark Adler's method,
   crc32c.c, zlib license). */
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t crc_long[4][256];
static uint32_t crc_short[4][256];
static int shift_ready = 0;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) { if (vec & 1) sum ^= *mat; vec >>= 1; mat++; }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends len zero bytes (len a power of two) to a raw CRC register. */
static void zeros_op(uint32_t *even, size_t len) {
    uint32_t odd[32];
    odd[0] = 0x82F63B78u;
    uint32_t row = 1;
    for (int n = 1; n < 32; n++) { odd[n] = row; row <<= 1; }
    gf2_square(even, odd);
    gf2_square(odd, even);
    do {
        gf2_square(even, odd);
        len >>= 1;
        if (len == 0) return;
        gf2_square(odd, even);
        len >>= 1;
    } while (len);
    for (int n = 0; n < 32; n++) even[n] = odd[n];
}

static void zeros_table(uint32_t zeros[][256], size_t len) {
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static pthread_once_t shift_once = PTHREAD_ONCE_INIT;
static void build_shift_tables(void) {
    zeros_table(crc_long, CRC_LONG);
    zeros_table(crc_short, CRC_SHORT);
    __atomic_store_n(&shift_ready, 1, __ATOMIC_RELEASE);
}

static inline uint32_t crc_shift(uint32_t zeros[][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

/* Runs of three blocks of `block` bytes: three crc32 streams side by side, then combined. */
__attribute__((target("sse4.2")))
static inline uint64_t crc_3way(uint64_t c, const unsigned char **pp, size_t *lenp, size_t block, uint32_t zeros[][256]) {
    const unsigned char *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *end = p + block;
        do {
            uint64_t a, b, d;
            memcpy(&a, p, 8); memcpy(&b, p + block, 8); memcpy(&d, p + 2 * block, 8);
            c = _mm_crc32_u64(c, a); c1 = _mm_crc32_u64(c1, b); c2 = _mm_crc32_u64(c2, d);
            p += 8;
        } while (p < end);
        c = crc_shift(zeros, (uint32_t)c) ^ (uint32_t)c1;
        c = crc_shift(zeros, (uint32_t)c) ^ (uint32_t)c2;
        p += 2 * block;
        len -= 3 * block;
    }
    *pp = p;
    *lenp = len;
    return c;
}

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint64_t c = (uint32_t)~crc;
    while (len && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); len--; }
    if (len >= 3 * CRC_SHORT) {
        if (!__atomic_load_n(&shift_ready, __ATOMIC_ACQUIRE)) pthread_once(&shift_once, build_shift_tables);
        c = crc_3way(c, &p, &len, CRC_LONG, crc_long);
        c = crc_3way(c, &p, &len, CRC_SHORT, crc_short);
    }
    while (len >= 8) { uint64_t w; memcpy(&w, p, 8); c = _mm_crc32_u64(c, w); p += 8; len -= 8; }
    while (len--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int hw_state = -1;
int pb_crc32c_hw_available(void) {
    int s = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);
    if (s < 0) { __builtin_cpu_init(); s = __builtin_cpu_supports("sse4.2") ? 1 : 0; __atomic_store_n(&hw_state, s, __ATOMIC_RELAXED); }
    return s;
}
uint32_t pb_crc32c(uint32_t crc, const void *data, size_t len) {
    if (pb_crc32c_hw_available()) return crc32c_hw(crc, data, len);
    return pb_crc32c_sw(crc, data, len);
}
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
int pb_crc32c_hw_available(void) { return 1; }
uint32_t pb_crc32c(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    uint32_t c = ~crc;
    while (len >= 8) { uint64_t w; memcpy(&w, p, 8); c = __crc32cd(c, w); p += 8; len -= 8; }
    while (len--) c = __crc32cb(c, *p++);
    return ~c;
}
#else
int pb_crc32c_hw_available(void) { return 0; }
uint32_t pb_crc32c(uint32_t crc, const void *data, size_t len) { return pb_crc32c_sw(crc, data, len); }
#endif

int pb_pin_thread_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int pb_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int pb_usable_cpus(void) {
    int n = pb_cpu_count();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a > 0 && a < n) n = a;
    }
    /* cgroup v2: "max 100000" or "<quota> <period>" */
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char q[32] = {0};
        long period = 0;
        if (fscanf(f, "%31s %ld", q, &period) == 2 && strcmp(q, "max") != 0 && period > 0) {
            long quota = atol(q);
            if (quota > 0) {
                long c = (quota + period - 1) / period;
                if (c >= 1 && c < n) n = (int)c;
            }
        }
        fclose(f);
    }
    return n > 0 ? n : 1;
}

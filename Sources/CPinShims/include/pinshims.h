#ifndef PINSHIMS_H
#define PINSHIMS_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), hardware (SSE4.2 / ARMv8 CRC) when the CPU has it, else slicing-by-8 tables.
/// `crc` is the running value (start with 0); the result is the final CRC (already inverted).
uint32_t pb_crc32c(uint32_t crc, const void *data, size_t len);
/// The software path alone, for tests and the benchmark.
uint32_t pb_crc32c_sw(uint32_t crc, const void *data, size_t len);
/// 1 when pb_crc32c uses the hardware instruction.
int pb_crc32c_hw_available(void);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int pb_pin_thread_to_cpu(int cpu);
/// Number of CPUs online.
int pb_cpu_count(void);
/// CPUs this process may use: the online count, cut to the affinity mask and to the cgroup v2 CPU quota
/// (cpu.max, rounded up).
int pb_usable_cpus(void);

/// JSON string scanning: the offset of the first byte in p[0..n) that is a quote, a backslash, a control
/// character (< 0x20) or not ASCII (>= 0x80); n when there is none. SSE2 (16 bytes per step) on x86-64.
size_t pb_json_plain_run(const uint8_t *p, size_t n);

/// Base64 (standard alphabet) of a prefix of src[0..n): encodes whole 24-byte blocks with AVX2 when the CPU
/// has it and returns how many input bytes it consumed (a multiple of 24; 0 without AVX2 or when n < 28).
/// dst receives consumed / 3 * 4 characters. The caller encodes the rest.
size_t pb_base64_encode_simd(const uint8_t *src, size_t n, uint8_t *dst);

/// An eventfd (non-blocking, close-on-exec), or -1 with errno set (sys/eventfd.h is not in Swift's Glibc).
int pb_eventfd(void);
/// poll(2) with a nanosecond timeout (ppoll needs _GNU_SOURCE).
int pb_poll_ns(void *fds, unsigned long nfds, int64_t timeout_ns);

/// Asks the kernel to stamp each packet arriving on socket `fd` with its arrival time (SO_TIMESTAMPNS).
/// Returns 0 or an errno value.
int pb_stamp_arrivals(int fd);
/// recv(2) that also returns, in *arrival_ns, when the last bytes it read reached the socket, as a
/// CLOCK_MONOTONIC time (the kernel's CLOCK_REALTIME stamp moved by the two clocks' offset now, and never
/// later than now); 0 when the socket gave no stamp. The cmsg macros it needs are not reachable from Swift.
long pb_recv_stamped(int fd, void *buf, size_t len, int flags, uint64_t *arrival_ns);

/// Sleeps while the 32-bit word at `word` holds `expected`, until woken (pb_futex_wake_one) or the
/// CLOCK_MONOTONIC time `deadline_ns` (absolute). Returns 0 when woken, else an errno value: ETIMEDOUT,
/// EAGAIN (the word no longer held `expected`), EINTR. syscall(2) is variadic: Swift cannot call it.
int pb_futex_wait_until(void *word, uint32_t expected, uint64_t deadline_ns);
/// Wakes one thread sleeping in pb_futex_wait_until on `word`.
void pb_futex_wake_one(void *word);
#endif

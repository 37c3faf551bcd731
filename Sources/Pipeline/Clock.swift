#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic nanoseconds (CLOCK_MONOTONIC): for schedules and latencies.
@inline(__always)
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Wall-clock milliseconds since the epoch: Kafka record timestamps.
@inline(__always)
public func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Sleeps until the monotonic clock reaches `deadline`: nanosleep for the bulk, a short spin at the end.
@inline(__always)
public func sleepUntil(_ deadline: UInt64) {
    while true {
        let now = monotonicNanos()
        if now >= deadline { return }
        let left = deadline - now
        if left > 200_000 {
            var ts = timespec(tv_sec: 0, tv_nsec: Int(left - 100_000))
            if left - 100_000 >= 1_000_000_000 { ts = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: 0) }
            nanosleep(&ts, nil)
        } else if left > 20_000 {
            sched_yield()
        }
    }
}

/// CPU seconds used by this process so far (user + system).
public func processCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

/// Peak resident set size in bytes.
public func peakRSSBytes() -> Int {
    var ru = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
    return Int(ru.ru_maxrss) * 1024
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The one clock of pinbench. Monotonic time for schedules, latencies, deadlines and timeouts; wall-clock time
// only where a value leaves the process (Kafka record timestamps, SigV4 dates, file names, reports).

/// Nanoseconds of one of the system's clocks.
@inline(__always)
@usableFromInline
func clockNanos(_ clock: clockid_t) -> UInt64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Monotonic nanoseconds (CLOCK_MONOTONIC): schedules and latencies.
@inline(__always)
public func monotonicNanos() -> UInt64 { clockNanos(CLOCK_MONOTONIC) }

/// Monotonic milliseconds (fractional): deadlines, linger and backoff timers.
@inline(__always)
public func monotonicMs() -> Double { Double(monotonicNanos()) / 1e6 }

/// Monotonic seconds (fractional): durations of whole jobs.
@inline(__always)
public func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

/// Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME): Kafka record timestamps (CreateTime).
@inline(__always)
public func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000
}

/// Wall-clock whole seconds since the Unix epoch.
@inline(__always)
public func wallSeconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
}

/// Sleeps about `ms` milliseconds (negative or zero: returns at once).
public func sleepMs(_ ms: Double) {
    guard ms > 0 else { return }
    let ns = min(ms, 3_600_000) * 1e6
    var ts = timespec(tv_sec: Int(ns / 1e9), tv_nsec: Int(ns.truncatingRemainder(dividingBy: 1e9)))
    var left = timespec()
    while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
}

/// CPU seconds used by this process so far (user + system).
public func processCPUSeconds() -> Double {
    var ru = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
    return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6 + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
}

/// CPU nanoseconds the calling thread has used so far (user + system, CLOCK_THREAD_CPUTIME_ID): what a stage's
/// own work costs, apart from the time it spends waiting (a system call, not the vDSO: read it per chunk, not per record).
public func threadCPUNanos() -> UInt64 { clockNanos(CLOCK_THREAD_CPUTIME_ID) }

/// Peak resident set size in bytes.
public func peakRSSBytes() -> Int {
    var ru = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &ru)
    return Int(ru.ru_maxrss) * 1024
}

/// Sleeps until the monotonic clock reaches `deadline` (ns) with one absolute-deadline sleep
/// (`clock_nanosleep(TIMER_ABSTIME)`): no spinning, and no drift from computing a relative interval.
public func sleepUntilAbsolute(_ deadline: UInt64) {
    var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}

/// How long an idle stage may sleep before a timer of its own is due: until `dueNs` (monotonic; `.max` when
/// nothing is due), at least 0.1 ms and at most 50 ms, so that stop requests are still seen. ns.
public func idleSleepNs(until dueNs: UInt64, now: UInt64 = monotonicNanos()) -> Int {
    guard dueNs > now else { return 100_000 }
    return max(100_000, Int(min(dueNs - now, 50_000_000)))
}

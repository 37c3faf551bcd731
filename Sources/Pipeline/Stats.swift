import Platform
import RingBuffers
import Synchronization

/// Counters shared between stage threads and the progress line. Updated once per chunk or batch.
public final class LiveStats: Sendable {
    public let recordsIn = Atomic<Int>(0)
    public let recordsOut = Atomic<Int>(0)
    public let payloadBytesOut = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    public let generatorStalls = Atomic<Int>(0)
    public let stop = Atomic<Bool>(false)
    /// Why the flood stopped early (`StopReason.rawValue`; the first reason wins).
    public let stopReason = Atomic<Int>(0)
    /// Payload bytes generated (what `--max-bytes` and the free-space check count).
    public let payloadBytesIn = Atomic<Int>(0)
    /// The scheduled time of the last post handed to the sink stage (monotonic ns): the schedule's lag is now minus it.
    public let lastScheduledNs = Atomic<UInt64>(0)
    /// When the last generator stopped (monotonic ns).
    public let generatorsEndNs = Atomic<UInt64>(0)
    /// Nanoseconds generators spent generating (not sleeping for the schedule, not blocked on a full ring).
    public let generatorBusyNs = Atomic<Int>(0)
    /// Nanoseconds generators were blocked because the ring to the sink stage was full (backpressure).
    public let generatorBlockedNs = Atomic<Int>(0)
    /// CPU nanoseconds of the generator threads (with the sink stage generating: of its generation).
    public let generatorCpuNs = Atomic<Int>(0)
    /// Nanoseconds the sink stages spent in the sink's calls with chunks and at close (wall: on the CPU or
    /// waiting inside them for the broker, the service, a full queue or a CPU); the rest they waited for input.
    public let sinkCallNs = Atomic<Int>(0)
    /// CPU nanoseconds of those calls.
    public let sinkCallCpuNs = Atomic<Int>(0)
    /// CPU nanoseconds of the sink stage threads in all (their calls and the polls while idle; not generation).
    public let sinkCpuNs = Atomic<Int>(0)
    /// Latency so far as Prometheus buckets (cumulative counts per `LiveStats.latencyBucketsSeconds`, sum in
    /// seconds, count), published by the sink stage about once a second when someone watches (`--metrics-listen`).
    public let latencySnapshot = Mutex<(buckets: [Int], sumSeconds: Double, count: Int)>(([], 0, 0))
    public static let latencyBucketsSeconds: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Failed records and retries by error code so far (published with the latency).
    public let codesSnapshot = Mutex<(failed: [String: Int], retries: [String: Int])>(([:], [:]))
    /// Records waiting between the generators and the sink stage (sampled once a second).
    public let queueDepth = Atomic<Int>(0)
    /// Rung by `requestStop`: the stages that sleep (a stop is seen at once).
    let stopBells = Mutex<[Doorbell]>([])
    public init() {}

    /// Stops the flood (what was generated is still sent) and records why, unless a reason was recorded first.
    public func requestStop(_ reason: StopReason) {
        _ = stopReason.compareExchange(expected: 0, desired: reason.rawValue, ordering: .relaxed)
        stop.store(true, ordering: .relaxed)
        for b in stopBells.withLock({ $0 }) { b.ring() }
    }

    public var reason: StopReason? { StopReason(rawValue: stopReason.load(ordering: .relaxed)) }

    /// Runs one of the sink's calls on a sink stage thread, counting its wall time and CPU time (the difference
    /// is time it waited inside: for the broker or service, a full queue, or a CPU).
    @inline(__always)
    func timedSinkCall<R>(_ call: () -> R) -> R {
        let t = monotonicNanos(), c = threadCPUNanos()
        let r = call()
        sinkCallCpuNs.add(Int(threadCPUNanos() &- c), ordering: .relaxed)
        sinkCallNs.add(Int(monotonicNanos() &- t), ordering: .relaxed)
        return r
    }
}

/// Why a flood ended before its `--count` or `--duration`.
public enum StopReason: Int, Sendable {
    case interrupted = 1, terminated, maxBytes, diskWouldFill, fatal

    /// For reports and the summary.
    public var name: String {
        switch self {
        case .interrupted: "interrupted"
        case .terminated: "terminated"
        case .maxBytes: "max-bytes reached"
        case .diskWouldFill: "the disk would fill"
        case .fatal: "fatal sink error"
        }
    }
}

import Synchronization

/// Counters shared between stage threads and the progress line. Updated once per chunk or batch.
public final class LiveStats: Sendable {
    public let recordsIn = Atomic<Int>(0)
    public let recordsOut = Atomic<Int>(0)
    public let payloadBytesOut = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    public let generatorStalls = Atomic<Int>(0)
    public let stop = Atomic<Bool>(false)
    /// Nanoseconds generators spent generating (not sleeping for the schedule, not blocked on a full ring).
    public let generatorBusyNs = Atomic<Int>(0)
    /// Nanoseconds generators were blocked because the ring to the sink stage was full (backpressure).
    public let generatorBlockedNs = Atomic<Int>(0)
    /// Nanoseconds the sink stage spent working on chunks (the rest it waited for input).
    public let sinkBusyNs = Atomic<Int>(0)
    public init() {}
}

import Synchronization

/// Counters shared between stage threads and the progress line. Updated once per chunk or batch.
public final class LiveStats: Sendable {
    public let recordsIn = Atomic<Int>(0)
    public let recordsOut = Atomic<Int>(0)
    public let payloadBytesOut = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    public let generatorStalls = Atomic<Int>(0)
    public let stop = Atomic<Bool>(false)
    public init() {}
}

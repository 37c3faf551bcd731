import Bytes
import Synchronization

/// A slab of consecutive posts, handed from a generator to the log stage and back for reuse.
/// Holds the three topics' JSON back to back with the end offset of each record, and each post's
/// scheduled send time. Allocated once per run (a fixed pool per generator), never per record.
public final class Chunk: @unchecked Sendable {
    public var seq = 0
    public var firstIndex = 0
    public var count = 0
    /// The three topics' JSON, back to back, one buffer each (`let` properties rather than an array: an array
    /// element is retained and released at each use, a `let` property is borrowed).
    public let pin: ByteBuffer, geo: ByteBuffer, user: ByteBuffer
    /// `ends[kind][i]`: end offset of post i's record of that kind in `buffer(kind)`.
    public let ends: [UnsafeMutablePointer<Int32>]
    /// Scheduled send time (monotonic ns) of post i.
    public let scheduled: UnsafeMutablePointer<UInt64>
    /// The partition of post i's three records (embedded log floods: murmur2 of the key, made by the
    /// generator so that each sink stage only compares it with the slots it owns).
    public let partition: UnsafeMutablePointer<Int32>
    public let capacity: Int
    /// Sink stages that have yet to finish with the chunk: the last one gives it back to its generator.
    let holders = Atomic<Int>(0)

    public init(capacity: Int) {
        self.capacity = capacity
        (pin, geo, user) = (ByteBuffer(capacity: capacity * 700), ByteBuffer(capacity: capacity * 700), ByteBuffer(capacity: capacity * 700))
        ends = (0..<3).map { _ in UnsafeMutablePointer<Int32>.allocate(capacity: capacity) }
        scheduled = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        partition = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
    }

    deinit {
        for e in ends { e.deallocate() }
        scheduled.deallocate()
        partition.deallocate()
    }

    public func reset(seq: Int, firstIndex: Int) {
        self.seq = seq
        self.firstIndex = firstIndex
        count = 0
        pin.reset()
        geo.reset()
        user.reset()
    }

    /// The buffer of a record kind (`RecordKind.rawValue`: pin 0, geo 1, user 2).
    @inline(__always)
    public func buffer(_ kind: Int) -> ByteBuffer { kind == 0 ? pin : (kind == 1 ? geo : user) }

    /// The JSON of post `i`'s record of `kind`.
    @inline(__always)
    public func record(_ kind: Int, _ i: Int) -> UnsafeRawBufferPointer {
        let start = i == 0 ? 0 : Int(ends[kind][i - 1])
        return UnsafeRawBufferPointer(start: buffer(kind).base + start, count: Int(ends[kind][i]) - start)
    }

    public var payloadBytes: Int { pin.count + geo.count + user.count }
}

import CPinShims

/// Asks the kernel to stamp what arrives on socket `fd` with its arrival time, for `receiveStamped`.
/// False when the socket refuses (the reads then carry no stamp).
@discardableResult
public func stampArrivals(_ fd: Int32) -> Bool { pb_stamp_arrivals(fd) == 0 }

/// `recv(2)`, and when the last bytes it read reached the socket (monotonic ns, as `monotonicNanos`;
/// 0 without a stamp). A reader that takes an answer some time after it came still knows when it came.
@inline(__always)
public func receiveStamped(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int, flags: Int32) -> (count: Int, arrivalNs: UInt64) {
    var at: UInt64 = 0
    let r = pb_recv_stamped(fd, p, n, flags, &at)
    return (r, at)
}

/// SplitMix64: tiny, fast, and good enough to shape synthetic data; seeded per post so any post can be
/// generated alone, on any thread, in any order; also the producers' cheap choices (a sticky partition)
/// where a system random number (a getrandom call) per use would cost a syscall.
@frozen
public struct SplitMix64: RandomNumberGenerator {
    @usableFromInline var state: UInt64

    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0), by multiply-shift.
    @inlinable
    public mutating func below(_ n: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(n).multipliedFullWidth(by: next())).high)
    }

    /// Uniform in [0, 1).
    @inlinable
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// True with probability p.
    @inlinable
    public mutating func chance(_ p: Double) -> Bool { unit() < p }
}

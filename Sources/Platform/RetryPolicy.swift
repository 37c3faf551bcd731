/// The one retry policy: exponential backoff with jitter, used by the Kafka producer, the Kinesis
/// producer and the AWS control plane. Attempt 0 is the first retry.
public struct RetryPolicy: Sendable, Equatable {
    public enum Jitter: Sendable, Equatable {
        /// AWS's "full jitter": uniform in [0, the exponential delay].
        case full
        /// Uniform in ±fraction around the exponential delay (Kafka's clients use 0.2).
        case proportional(Double)
    }

    /// Delay of the first retry (before jitter), ms.
    public var baseMs: Double
    /// The exponential delay never grows past this, ms.
    public var capMs: Double
    public var jitter: Jitter

    public init(baseMs: Double, capMs: Double, jitter: Jitter) {
        self.baseMs = baseMs
        self.capMs = capMs
        self.jitter = jitter
    }

    /// AWS SDK defaults (full jitter, 100 ms base).
    public static func aws(baseMs: Double = 100, capMs: Double = 20_000) -> RetryPolicy {
        RetryPolicy(baseMs: baseMs, capMs: capMs, jitter: .full)
    }

    /// Kafka's `retry.backoff.ms` growing to `retry.backoff.max.ms`, ±20%.
    public static func kafka(backoffMs: Double = 100, maxMs: Double = 1000) -> RetryPolicy {
        RetryPolicy(baseMs: backoffMs, capMs: maxMs, jitter: .proportional(0.2))
    }

    /// The exponential delay of `attempt` before jitter: base · 2^attempt, capped.
    public func ceilingMs(attempt: Int) -> Double {
        min(capMs, baseMs * Double(1 << min(max(attempt, 0), 30)))
    }

    /// The delay to wait before retry `attempt` (0-based), jitter applied.
    public func delayMs(attempt: Int) -> Double {
        var g = SystemRandomNumberGenerator()
        return delayMs(attempt: attempt, using: &g)
    }

    public func delayMs<G: RandomNumberGenerator>(attempt: Int, using g: inout G) -> Double {
        let d = ceilingMs(attempt: attempt)
        switch jitter {
        case .full: return Double.random(in: 0...1, using: &g) * d
        case .proportional(let f): return d * Double.random(in: (1 - f)...(1 + f), using: &g)
        }
    }
}

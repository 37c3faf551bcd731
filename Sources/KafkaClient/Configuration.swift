import Codecs
import Platform

/// Producer settings. Defaults follow the Java client (Kafka 4.0) unless noted; `validate()` refuses
/// combinations Kafka refuses.
public struct ProducerConfiguration: Sendable {
    /// Brokers to bootstrap from.
    public var bootstrap: [BrokerAddress]
    /// `client.id` (default "pinbench").
    public var clientId: String = "pinbench"
    /// `acks`: -1 (all, the default), 1 (leader) or 0 (none: fire and forget, no delivery information).
    public var acks: Int16 = -1
    /// `enable.idempotence` (default true): producer id, epoch and sequence numbers; retries cannot duplicate.
    public var idempotence: Bool = true
    /// `compression.type` (default none).
    public var compression: CompressionCodec = .none
    public var compressionLevel: Int32? = nil
    /// `batch.size`: a partition's batch is sent when it reaches this many bytes (default 16384).
    public var batchBytes: Int = 16_384
    /// `linger.ms`: ... or when its first record has waited this long (default 5).
    public var lingerMs: Double = 5
    /// `max.in.flight.requests.per.connection` (default 5; at most 5 with idempotence).
    public var maxInFlight: Int = 5
    /// `delivery.timeout.ms`: a record not acknowledged within this time is reported failed (default 120000).
    public var deliveryTimeoutMs: Int = 120_000
    /// `request.timeout.ms` (default 30000).
    public var requestTimeoutMs: Int32 = 30_000
    /// `retry.backoff.ms` (default 100), growing to `retry.backoff.max.ms` (default 1000) with jitter.
    public var retryBackoffMs: Int = 100
    public var retryBackoffMaxMs: Int = 1000
    /// The backoff policy these two make (±20% jitter, as the Java client).
    public var retryPolicy: RetryPolicy { .kafka(backoffMs: Double(retryBackoffMs), maxMs: Double(retryBackoffMaxMs)) }
    /// `buffer.memory`: bytes of sealed batches waiting for the network before `send` blocks (default 32 MiB).
    public var bufferMemory: Int = 32 << 20
    /// `security.protocol` with its TLS and SASL settings (default PLAINTEXT).
    public var security: ConnectionSecurity = .plaintext
    /// `message.max.bytes` a record may take (default 1048588).
    public var maxRecordBytes: Int = 1_048_588
    /// Threads that compress sealed batches before the sender takes them (each owns some partitions, so a
    /// partition's batches keep their order); nil: half the usable CPUs, at most 8, when compressing; 0: the
    /// sender compresses (before a batch's first send).
    public var compressionThreads: Int? = nil
    /// The owner compresses each batch as it seals it (no compression threads, none on the sender): the
    /// records go from the batch being filled straight into the compressed batch, on the core that just wrote
    /// them, with no uncompressed copy. For an owner with time to spare between records (a paced flood);
    /// under load it would slow `send`.
    public var compressOnSeal = false

    /// One I/O thread per broker connection (as librdkafka): it sends the Produce requests and reads the
    /// answers while the sender seals, stamps and dispatches. nil: when this process may use more than one
    /// CPU; false: the sender does its own I/O (fewer thread hand-offs, for a flood paced well below its capacity).
    public var ioThreads: Bool? = nil

    /// No sender thread: the owner does the sender's work itself, in `poll`, `flush`, `close` and its waits
    /// (`KafkaProducer.wait(on:timeoutNs:until:)`, which sleeps on the brokers' sockets too), with no compression
    /// or I/O threads. For an owner that wakes on its own schedule with time to spare (a paced flood): each
    /// tick's batches go out from the thread that sealed them, and no thread is woken to hand them over.
    /// Default off.
    public var inlineSender = false

    /// Whether a producer with these settings starts an I/O thread per broker.
    public var effectiveIOThreads: Bool { !inlineSender && (ioThreads ?? (usableCPUs() > 1)) }

    /// Whether a producer with these settings compresses each batch as its owner seals it.
    public var compressesOnSeal: Bool { compressOnSeal && compression != .none }

    /// The compression threads a producer with these settings starts.
    public var effectiveCompressionThreads: Int {
        guard compression != .none, !compressOnSeal, !inlineSender else { return 0 }
        return max(0, min(64, compressionThreads ?? min(8, usableCPUs() / 2)))
    }

    public init(bootstrap: [BrokerAddress]) {
        self.bootstrap = bootstrap
    }

    public func validate() throws(KafkaClientError) {
        if bootstrap.isEmpty { throw KafkaClientError(.config, "no bootstrap brokers given") }
        if ![-1, 0, 1].contains(acks) { throw KafkaClientError(.config, "acks must be all, 1 or 0") }
        if idempotence && acks != -1 {
            throw KafkaClientError(.config, "idempotence needs acks=all (got acks=\(acks)); use --idempotence false")
        }
        if idempotence && maxInFlight > 5 { throw KafkaClientError(.config, "idempotence allows at most 5 requests in flight") }
        if maxInFlight < 1 { throw KafkaClientError(.config, "max in flight must be ≥ 1") }
        if batchBytes < 64 || batchBytes > 64 << 20 { throw KafkaClientError(.config, "batch size must be in 64 B ... 64 MiB") }
        if !(lingerMs >= 0 && lingerMs <= 3_600_000) { throw KafkaClientError(.config, "linger.ms must be in 0 ... 3600000 (an hour)") }
        if deliveryTimeoutMs < 1 { throw KafkaClientError(.config, "delivery timeout must be ≥ 1 ms") }
        if inlineSender && ((compressionThreads ?? 0) > 0 || ioThreads == true) {
            throw KafkaClientError(.config, "without a sender thread the owner sends the batches itself: no compression threads and no I/O threads (--sender-thread false takes neither --compression-threads N nor --io-threads true)")
        }
    }
}

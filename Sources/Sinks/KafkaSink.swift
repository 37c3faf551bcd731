import KafkaClient
import KafkaWire
import PinModel
import RingBuffers
import Bytes
import Synchronization

/// A Kafka cluster as a sink: the owning thread holds the producer's accumulator (partitioner, per-partition
/// batches, linger); its sender thread compresses, stamps sequences and talks to the brokers. Every batch
/// ends in one delivery report, turned into one outcome (partition and base offset, or the broker's error).
public final class KafkaSink: RecordSink {
    public var onOutcome: ((SinkOutcome) -> Void)?
    let producer: KafkaProducer
    let handles: [TopicHandle]
    let counts: [Int]
    let topics: [String]
    let kindOfTopic: [String: RecordKind]
    let options: KafkaOptions
    var parts: [PartitionKey: (records: Int, batches: Int)] = [:]
    var stored = 0
    var batches = 0
    /// Changed per record on the stage's thread only (no runtime exclusivity check).
    @exclusivity(unchecked) public private(set) var pending = 0

    struct PartitionKey: Hashable {
        var kind: Int
        var partition: Int32
    }

    /// `role: .flood` makes the producer's reports quiet (`KafkaProducer.quietReports`): the flood's sink stage
    /// takes them when it wakes for its next chunk or linger, and each outcome carries the time of the broker's
    /// answer (`SinkOutcome.doneNs`), so latency is the same. The ingest writer answers HTTP requests on its
    /// outcomes: it is woken for each report.
    public init(settings: SinkSettings, options: KafkaOptions, role: SinkRole = .ingest, bell: Doorbell = Doorbell()) throws(SinkFailure) {
        self.options = options
        let pc = try options.producerConfiguration(settings)
        let topics = RecordKind.topics(prefix: settings.topicPrefix)
        self.topics = topics
        kindOfTopic = Dictionary(uniqueKeysWithValues: RecordKind.allCases.map { ($0.topic(prefix: settings.topicPrefix), $0) })
        do {
            producer = try KafkaProducer(config: pc, reportBell: bell)
            producer.quietReports = role == .flood
        } catch {
            throw SinkFailure(.kafka(error.kind), "cannot start the Kafka producer: \(error)", isFatal: true)
        }
        var handles: [TopicHandle] = [], counts: [Int] = []
        do throws(KafkaClientError) {
            if options.createTopics { try producer.createTopics(topics, partitions: Int32(settings.partitions)) }
            for t in topics {
                handles.append(try producer.topic(t))
                counts.append(try producer.partitionCount(t))
            }
        } catch {
            try? producer.close { _ in }
            throw SinkFailure(.kafka(error.kind), "\(error)", isFatal: true)
        }
        self.handles = handles
        self.counts = counts
    }

    public var latencyEndpoint: String { "broker acknowledgement (acks=\(options.acks.rawValue))" }

    public var destination: String {
        "Kafka \(options.bootstrap.map { "\($0.host):\($0.port)" }.joined(separator: ",")), topics \(topics.joined(separator: ", ")) (\(counts.map(String.init).joined(separator: "/")) partitions)"
            + (options.security.securityProtocol == .plaintext ? "" : ", \(options.security.description)")
    }

    public func partitionCount(_ kind: RecordKind) -> Int? { counts[kind.rawValue] }

    public func send(_ kind: RecordKind, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?,
                     timestamp: Int64, token: UInt64) {
        pending += 1
        do {
            try producer.send(to: handles[kind.rawValue], partition: partition.map { Int($0) }, key: key, value: value,
                              timestamp: timestamp, token: token, onDelivery: { self.delivered($0) })  // a closure literal: a method reference retains self per record
        } catch {
            pending -= 1
            let f = SinkFailure(.kafka(error.kind), error.message, isFatal: !error.isRetriable)
            withUnsafePointer(to: token) { t in
                onOutcome?(SinkOutcome(kind: kind, tokens: UnsafeBufferPointer(start: t, count: 1), payloadBytes: value.count, status: .failed(f)))
            }
        }
    }

    public func poll(noInputBeforeNs ns: UInt64) {
        do { try producer.poll(noInputBeforeNs: ns, onDelivery: delivered) } catch { /* reports carry the errors; a poll error repeats in flush */ }
    }

    /// Until the oldest open batch's linger ends: delivery reports ring the bell (unless quiet: a flood's).
    public var idleWaitNs: Int { producer.idleWaitNs }

    public func wait(on bell: Doorbell, atMostNs: Int, until ready: () -> Bool) {
        producer.wait(on: bell, timeoutNs: min(producer.idleWaitNs, atMostNs), until: ready)
    }

    public func flush() {
        do { try producer.flush(onDelivery: delivered) } catch {}
    }

    public func close() -> String? {
        do {
            try producer.close(onDelivery: delivered)
            return nil
        } catch {
            return "close: \(error)"
        }
    }

    public var report: SinkReport {
        var r = SinkReport()
        r.partitions = parts.sorted { ($0.key.kind, $0.key.partition) < ($1.key.kind, $1.key.partition) }.map {
            PartitionCount(topic: topics[$0.key.kind], partition: Int($0.key.partition), records: $0.value.records, batches: $0.value.batches, nextOffset: -1)
        }
        r.storedBytes = stored
        r.batches = batches
        r.requests = producer.stats.requests.load(ordering: .relaxed)
        r.retries = producer.stats.retries.load(ordering: .relaxed)
        r.retriesByCode = producer.stats.retriesByReason.withLock { $0 }
        return r
    }

    func delivered(_ r: DeliveryReport) {
        let b = r.batch
        guard let kind = kindOfTopic[b.topic] else { return }
        pending -= b.records
        let status: SinkOutcome.Status
        if let e = r.error {
            status = .failed(SinkFailure(.kafka(e.kind), e.message, isFatal: false))
        } else {
            stored += b.bytes.count
            batches += 1
            let key = PartitionKey(kind: kind.rawValue, partition: b.partition)
            let prev = parts[key] ?? (0, 0)
            parts[key] = (prev.records + b.records, prev.batches + 1)
            status = .stored(.offsets(partition: b.partition, baseOffset: r.baseOffset))
        }
        b.tokens.withUnsafeBufferPointer { t in
            onOutcome?(SinkOutcome(kind: kind, tokens: t, payloadBytes: b.payloadBytes, status: status, doneNs: r.ackNs))
        }
    }
}

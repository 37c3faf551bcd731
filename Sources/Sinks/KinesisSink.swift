import AWSClient
import Bytes
import PinModel
import RingBuffers
import AWSAuth

/// Kinesis as a sink: the owning thread holds the PutRecords producer and its curl multi handle (no other
/// thread). Keys follow `KinesisOptions.partitionKey`; a record sent without a key gets one of its own (its
/// token in decimal). Outcomes: accepted (with shard id and sequence number behind the ingest API) or
/// failed for good with Kinesis's code.
public final class KinesisSink: RecordSink {
    public var onOutcome: ((SinkOutcome) -> Void)?
    let options: KinesisOptions
    let client: KinesisClient
    let producer: KinesisProducer
    let key = ByteBuffer(capacity: 64)
    let fixedKey: [UInt8]
    var perStream = [Int](repeating: 0, count: RecordKind.allCases.count)
    public private(set) var pending = 0
    /// The streams this sink sends to (all, unless it is one of a flood's sink stages).
    public let kinds: [RecordKind]

    /// A flood's sink stage `s` of `stages` owns the streams of the kinds with `kind % stages == s`, so one
    /// stream's records (and each key's) keep one thread, one curl handle and their order.
    @inline(__always)
    public static func stage(of kind: RecordKind, stages: Int) -> Int { kind.rawValue % stages }

    public init(settings: SinkSettings, options: KinesisOptions, role: SinkRole, bell: Doorbell = Doorbell(),
                kinds: [RecordKind] = RecordKind.allCases) throws(SinkFailure) {
        try options.validate()
        self.options = options
        self.kinds = kinds
        do { client = try KinesisClient(config: options.aws) } catch { throw SinkFailure(.kinesis(KinesisErrorCode(error.code)), error.message, isFatal: true) }
        let streams = RecordKind.allCases.map { options.stream($0) }
        var pc = KinesisProducerConfig(streams: streams)
        var shards: [Int] = []
        for (k, s) in streams.enumerated() {
            // Another stage's stream: never sent to here (its slot keeps the producer's indexes by kind).
            guard kinds.contains(where: { $0.rawValue == k }) else { shards.append(1); continue }
            do {
                let summary = options.createStreams ? try client.ensureStream(s, shards: options.shards) : try client.describeStreamSummary(s)
                shards.append(summary.openShards)
                if let kib = summary.maxRecordSizeKiB { pc.maxRecordBytes = max(pc.maxRecordBytes, kib * 1024) }
            } catch {
                if case .service(_, "ResourceNotFoundException") = error.kind {
                    throw SinkFailure(.kinesis(.resourceNotFound), "Kinesis stream \(s) does not exist (add --create-streams): \(error.message)", isFatal: true)
                }
                throw SinkFailure(.kinesis(KinesisErrorCode(error.code)), error.message, isFatal: true)
            }
        }
        pc.maxInFlight = options.inFlight
        pc.ordered = options.ordered
        pc.aggregate = options.aggregate
        // Behind the ingest API each request waits for its batch: a short linger keeps its answer quick.
        pc.lingerMs = settings.lingerMs ?? (role == .ingest ? SinkSettings.defaultLingerMs : SinkSettings.defaultKinesisLingerMs)
        pc.shapeShards = options.shape ? shards : nil
        pc.deliveryTimeoutMs = Double(options.deliveryTimeoutMs)
        pc.requestTimeoutMs = options.requestTimeoutMs
        pc.reportEntries = role == .ingest
        producer = KinesisProducer(service: client.service, config: pc)
        fixedKey = Array(options.fixedKey.utf8)
        // The owner sleeps in curl (`wait`): whoever rings its bell wakes that poll.
        bell.wakes(with: producer.wakeUp)
        producer.onDelivery = { [unowned self] stream, tokens, bytes, delivery in
            guard let kind = RecordKind(rawValue: stream) else { return }
            pending -= tokens.count
            let status: SinkOutcome.Status
            switch delivery {
            case .accepted(let shard, let sequence):
                perStream[stream] += tokens.count
                status = .stored(.shard(id: shard, sequence: sequence))
            case .failed(let code, let message):
                status = .failed(SinkFailure(.kinesis(code), message, isFatal: code.isFatal))
            }
            onOutcome?(SinkOutcome(kind: kind, tokens: tokens, payloadBytes: bytes, status: status))
        }
    }

    public var latencyEndpoint: String { "Kinesis PutRecords acceptance" }

    public var destination: String {
        "Kinesis streams \(kinds.map { options.stream($0) }.joined(separator: ", ")) at \(options.aws.endpoint ?? "AWS \(options.aws.region)")"
    }

    public func partitionCount(_ kind: RecordKind) -> Int? { nil }

    public func send(_ kind: RecordKind, key given: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?,
                     timestamp: Int64, token: UInt64) {
        guard kinds.count == RecordKind.allCases.count || kinds.contains(kind) else {
            // Another stage's stream: the flood routes by `stage(of:stages:)`, so this is a caller's mistake,
            // and the record is failed, never lost.
            let f = SinkFailure.config("stream \(options.stream(kind)) belongs to another sink stage")
            withUnsafePointer(to: token) { t in
                onOutcome?(SinkOutcome(kind: kind, tokens: UnsafeBufferPointer(start: t, count: 1), payloadBytes: value.count, status: .failed(f)))
            }
            return
        }
        pending += 1
        switch options.partitionKey {
        case .index:
            if let given, !given.isEmpty {
                producer.send(stream: kind.rawValue, key: given, data: value, token: token)
                return
            }
            key.reset()
            key.appendDecimal(Int(truncatingIfNeeded: token))
        case .fixed:
            key.reset()
            key.append(contentsOf: fixedKey)
        case .random:
            key.reset()
            key.appendHex(Digest.randomUInt64())
            key.appendHex(Digest.randomUInt64())
        }
        producer.send(stream: kind.rawValue, key: key.bytes, data: value, token: token)
    }

    public func poll(noInputBeforeNs ns: UInt64) { producer.poll(timeoutMs: 0, noInputBeforeNs: ns) }

    /// Until the producer's next timer (linger, backoff): answers end the wait sooner.
    public var idleWaitNs: Int { producer.idleWaitNs }

    public func wait(on bell: Doorbell, atMostNs: Int, until ready: () -> Bool) {
        bell.wait(timeoutNs: min(producer.idleWaitNs, atMostNs), until: ready) { ns in producer.waitForEvents(timeoutNs: ns) }
    }

    public func flush() { producer.flush() }

    public func close() -> String? {
        producer.flush()
        return nil
    }

    public var report: SinkReport {
        let st = producer.stats
        var r = SinkReport()
        r.partitions = kinds.map {
            PartitionCount(topic: options.stream($0), partition: -1, records: perStream[$0.rawValue], batches: 0, nextOffset: -1)
        }
        r.storedBytes = st.payloadBytes
        r.batches = st.requests
        r.requests = st.requests
        r.retries = st.retried.values.reduce(0, +)
        r.retriesByCode = st.retried
        return r
    }
}

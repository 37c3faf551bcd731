// One place per message: the request's fields and the response's fields by version, following Apache
// Kafka's `clients/src/main/resources/common/message/*.json`.

// MARK: ApiVersions

public enum ApiVersionsMessage {
    public static func encodeRequest(_ w: ProtocolWriter, version: Int16, softwareName: String, softwareVersion: String) {
        if version >= 3 {
            w.string(softwareName)
            w.string(softwareVersion)
            w.tags()
        }
    }

    public struct Response: Sendable {
        public var errorCode: KafkaErrorCode
        public var versions: [Int16: ClosedRange<Int16>]
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version: Int16) throws(ProtocolError) -> Response {
        let err = KafkaErrorCode(try r.int16())
        var versions: [Int16: ClosedRange<Int16>] = [:]
        let n = try r.arrayCount()
        for _ in 0..<n {
            let key = try r.int16(), lo = try r.int16(), hi = try r.int16()
            if lo <= hi { versions[key] = lo...hi }
            try r.tags()
        }
        // (v1+: throttle_time_ms and, v3+, tagged fields follow; not needed.)
        return Response(errorCode: err, versions: versions)
    }
}

// MARK: SASL

/// SaslHandshake v1: the mechanism the client wants; the broker answers with the ones it enables.
public enum SaslHandshakeMessage {
    public static func encodeRequest(_ w: ProtocolWriter, mechanism: String) { w.string(mechanism) }

    public static func decodeResponse(_ r: inout ProtocolReader) throws(ProtocolError) -> (errorCode: KafkaErrorCode, mechanisms: [String]) {
        let err = KafkaErrorCode(try r.int16())
        let n = try r.arrayCount()
        var names: [String] = []
        for _ in 0..<n { names.append(try r.string()) }
        return (err, names)
    }
}

/// SaslAuthenticate v0–v2: one round of the mechanism's bytes; v1+ answers carry the session lifetime.
public enum SaslAuthenticateMessage {
    public struct Response: Sendable {
        public var errorCode: KafkaErrorCode
        public var errorMessage: String?
        public var authBytes: [UInt8]
        /// 0: no limit (v0, or a broker without `connections.max.reauth.ms`).
        public var sessionLifetimeMs: Int64
    }

    public static func encodeRequest(_ w: ProtocolWriter, authBytes: [UInt8]) {
        authBytes.withUnsafeBytes { w.bytes($0) }
        w.tags()
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version: Int16) throws(ProtocolError) -> Response {
        let err = KafkaErrorCode(try r.int16())
        let msg = try r.nullableString()
        let bytes = try r.nullableBytes().map { Array($0) } ?? []
        let life = version >= 1 ? try r.int64() : 0
        return Response(errorCode: err, errorMessage: msg, authBytes: bytes, sessionLifetimeMs: life)
    }
}

// MARK: Metadata

public struct BrokerInfo: Sendable, Hashable {
    public var nodeId: Int32
    public var host: String
    public var port: Int32

    public init(nodeId: Int32, host: String, port: Int32) {
        self.nodeId = nodeId
        self.host = host
        self.port = port
    }
}

public struct PartitionInfo: Sendable {
    public var errorCode: KafkaErrorCode
    public var partition: Int32
    public var leader: Int32
    public var leaderEpoch: Int32
}

public struct TopicInfo: Sendable {
    public var errorCode: KafkaErrorCode
    public var name: String
    public var partitions: [PartitionInfo]
}

public enum MetadataMessage {
    /// `topics == nil` asks for every topic.
    public static func encodeRequest(_ w: ProtocolWriter, version: Int16, topics: [String]?, allowAutoCreate: Bool = false) {
        w.arrayLength(topics?.count)
        for t in topics ?? [] {
            if version >= 10 { w.uuid((0, 0)) }
            w.string(t)
            w.tags()
        }
        if version >= 4 { w.bool(allowAutoCreate) }
        if version >= 8 && version <= 10 { w.bool(false) }  // include_cluster_authorized_operations
        if version >= 8 { w.bool(false) }  // include_topic_authorized_operations
        w.tags()
    }

    public struct Response: Sendable {
        public var brokers: [BrokerInfo]
        public var controllerId: Int32
        public var topics: [TopicInfo]
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version v: Int16) throws(ProtocolError) -> Response {
        if v >= 3 { _ = try r.int32() }  // throttle
        var brokers: [BrokerInfo] = []
        for _ in 0..<(try r.arrayCount()) {
            let id = try r.int32()
            let host = try r.string()
            let port = try r.int32()
            _ = try r.nullableString()  // rack (v1+)
            try r.tags()
            brokers.append(BrokerInfo(nodeId: id, host: host, port: port))
        }
        if v >= 2 { _ = try r.nullableString() }  // cluster id
        let controller = try r.int32()
        var topics: [TopicInfo] = []
        for _ in 0..<(try r.arrayCount()) {
            let err = KafkaErrorCode(try r.int16())
            let name = try r.nullableString() ?? ""
            if v >= 10 { _ = try r.uuid() }
            _ = try r.bool()  // is_internal
            var parts: [PartitionInfo] = []
            for _ in 0..<(try r.arrayCount()) {
                let perr = KafkaErrorCode(try r.int16())
                let idx = try r.int32()
                let leader = try r.int32()
                let epoch = v >= 7 ? try r.int32() : -1
                for _ in 0..<(try r.arrayCount()) { _ = try r.int32() }  // replicas
                for _ in 0..<(try r.arrayCount()) { _ = try r.int32() }  // isr
                if v >= 5 { for _ in 0..<(try r.arrayCount()) { _ = try r.int32() } }  // offline
                try r.tags()
                parts.append(PartitionInfo(errorCode: perr, partition: idx, leader: leader, leaderEpoch: epoch))
            }
            if v >= 8 { _ = try r.int32() }  // topic authorized operations
            try r.tags()
            topics.append(TopicInfo(errorCode: err, name: name, partitions: parts.sorted { $0.partition < $1.partition }))
        }
        if v >= 8 && v <= 10 { _ = try r.int32() }
        try r.tags()
        return Response(brokers: brokers, controllerId: controller, topics: topics)
    }
}

// MARK: InitProducerId

public enum InitProducerIdMessage {
    public static func encodeRequest(_ w: ProtocolWriter, version: Int16, producerId: Int64 = -1, producerEpoch: Int16 = -1) {
        w.nullableString(nil)  // transactional id
        w.int32(60_000)  // transaction timeout (unused without transactions)
        if version >= 3 {
            w.int64(producerId)
            w.int16(producerEpoch)
        }
        w.tags()
    }

    public struct Response: Sendable {
        public var errorCode: KafkaErrorCode
        public var producerId: Int64
        public var producerEpoch: Int16
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version: Int16) throws(ProtocolError) -> Response {
        _ = try r.int32()
        let err = KafkaErrorCode(try r.int16())
        let pid = try r.int64()
        let epoch = try r.int16()
        try r.tags()
        return Response(errorCode: err, producerId: pid, producerEpoch: epoch)
    }
}

// MARK: Produce

public struct ProducePartitionResult: Sendable {
    public var topic: String
    public var partition: Int32
    public var errorCode: KafkaErrorCode
    public var baseOffset: Int64
    public var errorMessage: String?
}

public enum ProduceMessage {
    /// One topic-partition's sealed batch.
    public struct Entry {
        public var topic: String
        public var partition: Int32
        public var batch: UnsafeRawBufferPointer
        public init(topic: String, partition: Int32, batch: UnsafeRawBufferPointer) {
            self.topic = topic
            self.partition = partition
            self.batch = batch
        }
    }

    /// `entries` must be grouped by topic (consecutive entries of one topic share a topic block).
    public static func encodeRequest(_ w: ProtocolWriter, version: Int16, acks: Int16, timeoutMs: Int32, entries: [Entry]) {
        w.nullableString(nil)  // transactional id
        w.int16(acks)
        w.int32(timeoutMs)
        var groups: [(String, [Entry])] = []
        for e in entries {
            if let last = groups.indices.last, groups[last].0 == e.topic { groups[last].1.append(e) } else { groups.append((e.topic, [e])) }
        }
        w.arrayLength(groups.count)
        for (topic, es) in groups {
            w.string(topic)
            w.arrayLength(es.count)
            for e in es {
                w.int32(e.partition)
                w.bytes(e.batch)
                w.tags()
            }
            w.tags()
        }
        w.tags()
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version v: Int16) throws(ProtocolError) -> [ProducePartitionResult] {
        var out: [ProducePartitionResult] = []
        for _ in 0..<(try r.arrayCount()) {
            let topic = try r.string()
            for _ in 0..<(try r.arrayCount()) {
                let idx = try r.int32()
                let err = KafkaErrorCode(try r.int16())
                let base = try r.int64()
                _ = try r.int64()  // log append time (v2+)
                if v >= 5 { _ = try r.int64() }  // log start offset
                var message: String? = nil
                if v >= 8 {
                    for _ in 0..<(try r.arrayCount()) {
                        _ = try r.int32()
                        _ = try r.nullableString()
                        try r.tags()
                    }
                    message = try r.nullableString()
                }
                try r.tags()
                out.append(ProducePartitionResult(topic: topic, partition: idx, errorCode: err, baseOffset: base, errorMessage: message))
            }
            try r.tags()
        }
        _ = try r.int32()  // throttle
        try r.tags()
        return out
    }
}

// MARK: Fetch

public struct FetchPartitionResult {
    public var topic: String
    public var partition: Int32
    public var errorCode: KafkaErrorCode
    public var highWatermark: Int64
    /// Raw record batches, a view into the response buffer.
    public var records: UnsafeRawBufferPointer?
}

public enum FetchMessage {
    public struct Request {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var maxBytes: Int32
        public init(topic: String, partition: Int32, offset: Int64, maxBytes: Int32 = 1 << 20) {
            self.topic = topic
            self.partition = partition
            self.offset = offset
            self.maxBytes = maxBytes
        }
    }

    public static func encodeRequest(_ w: ProtocolWriter, version v: Int16, maxWaitMs: Int32, minBytes: Int32, maxBytes: Int32, partitions: [Request]) {
        w.int32(-1)  // replica id
        w.int32(maxWaitMs)
        w.int32(minBytes)
        w.int32(maxBytes)
        w.int8(0)  // isolation: read uncommitted
        if v >= 7 {
            w.int32(0)  // session id
            w.int32(-1)  // session epoch: full fetch, no session
        }
        var groups: [(String, [Request])] = []
        for p in partitions {
            if let last = groups.indices.last, groups[last].0 == p.topic { groups[last].1.append(p) } else { groups.append((p.topic, [p])) }
        }
        w.arrayLength(groups.count)
        for (topic, ps) in groups {
            w.string(topic)
            w.arrayLength(ps.count)
            for p in ps {
                w.int32(p.partition)
                if v >= 9 { w.int32(-1) }  // current leader epoch
                w.int64(p.offset)
                if v >= 5 { w.int64(-1) }  // log start offset
                w.int32(p.maxBytes)
            }
        }
        if v >= 7 { w.arrayLength(0) }  // forgotten topics
        if v >= 11 { w.string("") }  // rack id
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version v: Int16) throws(ProtocolError) -> (KafkaErrorCode, [FetchPartitionResult]) {
        _ = try r.int32()  // throttle
        var top = KafkaErrorCode.none
        if v >= 7 {
            top = KafkaErrorCode(try r.int16())
            _ = try r.int32()  // session id
        }
        var out: [FetchPartitionResult] = []
        for _ in 0..<(try r.arrayCount()) {
            let topic = try r.string()
            for _ in 0..<(try r.arrayCount()) {
                let idx = try r.int32()
                let err = KafkaErrorCode(try r.int16())
                let hw = try r.int64()
                _ = try r.int64()  // last stable offset (v4+)
                if v >= 5 { _ = try r.int64() }  // log start offset
                for _ in 0..<(try r.arrayCount()) {  // aborted transactions (v4+)
                    _ = try r.int64()
                    _ = try r.int64()
                }
                if v >= 11 { _ = try r.int32() }  // preferred read replica
                let records = try r.nullableBytes()
                out.append(FetchPartitionResult(topic: topic, partition: idx, errorCode: err, highWatermark: hw, records: records))
            }
        }
        return (top, out)
    }
}

// MARK: ListOffsets

public enum ListOffsetsMessage {
    public static let latest: Int64 = -1
    public static let earliest: Int64 = -2

    public static func encodeRequest(_ w: ProtocolWriter, version v: Int16, topic: String, partitions: [Int32], timestamp: Int64) {
        w.int32(-1)  // replica id
        if v >= 2 { w.int8(0) }  // isolation level
        w.arrayLength(1)
        w.string(topic)
        w.arrayLength(partitions.count)
        for p in partitions {
            w.int32(p)
            if v >= 4 { w.int32(-1) }  // current leader epoch
            w.int64(timestamp)
            w.tags()
        }
        w.tags()
        w.tags()
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version v: Int16) throws(ProtocolError) -> [(partition: Int32, error: KafkaErrorCode, offset: Int64)] {
        if v >= 2 { _ = try r.int32() }
        var out: [(Int32, KafkaErrorCode, Int64)] = []
        for _ in 0..<(try r.arrayCount()) {
            _ = try r.string()
            for _ in 0..<(try r.arrayCount()) {
                let idx = try r.int32()
                let err = KafkaErrorCode(try r.int16())
                _ = try r.int64()  // timestamp
                let off = try r.int64()
                if v >= 4 { _ = try r.int32() }
                try r.tags()
                out.append((idx, err, off))
            }
            try r.tags()
        }
        try r.tags()
        return out
    }
}

// MARK: CreateTopics

public enum CreateTopicsMessage {
    public static func encodeRequest(_ w: ProtocolWriter, version v: Int16, topics: [(name: String, partitions: Int32, replication: Int16)], timeoutMs: Int32) {
        w.arrayLength(topics.count)
        for t in topics {
            w.string(t.name)
            w.int32(t.partitions)
            w.int16(t.replication)
            w.arrayLength(0)  // assignments
            w.arrayLength(0)  // configs
            w.tags()
        }
        w.int32(timeoutMs)
        w.bool(false)  // validate only (v1+)
        w.tags()
    }

    public static func decodeResponse(_ r: inout ProtocolReader, version v: Int16) throws(ProtocolError) -> [(name: String, error: KafkaErrorCode, message: String?)] {
        _ = try r.int32()  // throttle (v2+)
        var out: [(String, KafkaErrorCode, String?)] = []
        for _ in 0..<(try r.arrayCount()) {
            let name = try r.string()
            if v >= 7 { _ = try r.uuid() }
            let err = KafkaErrorCode(try r.int16())
            let msg = try r.nullableString()  // v1+
            if v >= 5 {
                _ = try r.int32()
                _ = try r.int16()
                let n = try r.length(wide: true)
                if n > 0 {
                    for _ in 0..<n {
                        _ = try r.string()
                        _ = try r.nullableString()
                        _ = try r.bool()
                        _ = try r.int8()
                        _ = try r.bool()
                        try r.tags()
                    }
                }
            }
            try r.tags()
            out.append((name, err, msg))
        }
        try r.tags()
        return out
    }
}

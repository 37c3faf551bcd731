#if canImport(Glibc)
import Glibc
#endif
@testable import AWSClient
import Bytes
@testable import IngestServer
import NIOCore
import NIOEmbedded
import Codecs
import JSON
import KafkaLog
import KafkaWire
import PinModel
import Platform
@testable import TableStore

/// The fuzz targets (issue 16): each takes any bytes and must return, never trap, whatever they hold. The
/// libFuzzer driver (Tests/Fuzz, built with -sanitize=fuzzer,address) calls `run` for the target named in
/// PINBENCH_FUZZ_TARGET; the test suite replays the checked-in corpus and every crash kept as a regression
/// (Tests/Fuzz/Corpus, Tests/Fuzz/Regressions) through the same calls.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The JSON reader (JSONValue), the validating scanner, and the three record decoders.
    case json
    /// RecordBatch v2: header, CRC, records, every codec (decompression bounded).
    case recordBatch = "record-batch"
    /// Every Kafka response the clients read: byte 0 picks the message, byte 1 the version, byte 2 flexible.
    case kafkaResponse = "kafka-response"
    /// A segment file: scanned, then opened by a partition log (recovery: truncation, salvage, quarantine).
    case segment
    /// A Parquet file: footer (Thrift compact), schema, every column read as every type.
    case parquet
    /// The KPL aggregated-record de-aggregator.
    case kpl
    /// The PutRecords answer scanner.
    case putRecords = "put-records"
    /// The ingest API's HTTP/1.1 request decoder (byte 0: how the rest is cut into reads).
    case http

    public func run(_ data: UnsafeRawBufferPointer) {
        switch self {
        case .json: Self.json(data)
        case .recordBatch: Self.recordBatch(data)
        case .kafkaResponse: Self.kafkaResponse(data)
        case .segment: Self.segment(data)
        case .parquet: Self.parquet(data)
        case .kpl: _ = KPLAggregator.deaggregate(Array(data))
        case .putRecords: Self.putRecords(data)
        case .http: Self.http(data)
        }
    }

    static func json(_ data: UnsafeRawBufferPointer) {
        _ = try? JSONValue.parse(data)
        _ = try? validateJSONObject(data)
        _ = try? PinRecord.decode(data)
        _ = try? GeoRecord.decode(data)
        _ = try? UserRecord.decode(data)
    }

    nonisolated(unsafe) static let codec: Codec = {
        let c = Codec()
        c.maxDecompressedBytes = 16 << 20
        return c
    }()
    nonisolated(unsafe) static let scratch = ByteBuffer(capacity: 1 << 16)

    static func recordBatch(_ data: UnsafeRawBufferPointer) {
        var pos = 0
        while pos < data.count {
            let rest = UnsafeRawBufferPointer(rebasing: data[pos...])
            guard let h = try? RecordBatchReader.header(rest), h.totalSize > 0, h.totalSize <= rest.count else { return }
            _ = try? RecordBatchReader.verifyCRC(rest, h)
            _ = try? RecordBatchReader.forEachRecord(UnsafeRawBufferPointer(rebasing: rest[0..<h.totalSize]), codec: codec, scratch: scratch) { r in
                _ = r.key?.count
                _ = r.value?.count
            }
            pos += h.totalSize
        }
    }

    static func kafkaResponse(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 3 else { return }
        let which = data[0] % 9, version = Int16(data[1] % 16), flexible = data[2] & 1 == 1
        var r = ProtocolReader(UnsafeRawBufferPointer(rebasing: data[3...]), flexible: flexible)
        switch which {
        case 0: _ = try? ApiVersionsMessage.decodeResponse(&r, version: version)
        case 1: _ = try? SaslHandshakeMessage.decodeResponse(&r)
        case 2: _ = try? SaslAuthenticateMessage.decodeResponse(&r, version: version)
        case 3: _ = try? MetadataMessage.decodeResponse(&r, version: version)
        case 4: _ = try? InitProducerIdMessage.decodeResponse(&r, version: version)
        case 5: _ = try? ProduceMessage.decodeResponse(&r, version: version)
        case 6:
            if let (_, parts) = try? FetchMessage.decodeResponse(&r, version: version) {
                for p in parts { if let records = p.records { recordBatch(records) } }
            }
        case 7: _ = try? ListOffsetsMessage.decodeResponse(&r, version: version)
        default: _ = try? CreateTopicsMessage.decodeResponse(&r, version: version)
        }
    }

    /// One scratch folder per process, emptied for each input.
    nonisolated(unsafe) static let dir: String = {
        (try? makeTemporaryDirectory("pinbench-fuzz")) ?? "/tmp/pinbench-fuzz-\(getpid())"
    }()

    /// Byte 0 odd: the next 8 bytes are the segment's base offset, in its file name (a crafted name near
    /// Int64.max); the rest is the file.
    static func segment(_ input: UnsafeRawBufferPointer) {
        let part = "\(dir)/log/fuzz-0"
        removeTree("\(dir)/log")
        var data = input
        var base: Int64 = 0
        if let first = input.first, first & 1 == 1, input.count >= 9 {
            base = Int64(bitPattern: input.loadUnaligned(fromByteOffset: 1, as: UInt64.self)) & Int64.max
            data = UnsafeRawBufferPointer(rebasing: input[9...])
        }
        let digits = String(base)
        let name = String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
        guard (try? makeDirectories(part)) != nil, write("\(part)/\(name)", data) else { return }
        _ = try? scanSegment(path: "\(part)/\(name)", expectedBase: base) { _, _ in }
        if let log = try? PartitionLog(topic: "fuzz", partition: 0, config: LogConfig(dataDir: dir)) {
            _ = try? log.close()
        }
        _ = try? LogInspector.verify(dataDir: dir)
    }

    static func parquet(_ data: UnsafeRawBufferPointer) {
        let path = "\(dir)/fuzz.parquet"
        guard write(path, data), let f = try? ParquetFile(path: path) else { return }
        for leaf in f.leaves {
            for t in [ColumnType.string, .int64, .double, .timestamp, .doublePair] { _ = try? f.readColumn(leaf.path, as: t) }
        }
    }

    /// A plain write (no fsync: an input is a scratch file).
    static func write(_ path: String, _ data: UnsafeRawBufferPointer) -> Bool {
        guard let f = fopen(path, "wb") else { return false }
        defer { fclose(f) }
        return data.isEmpty || fwrite(data.baseAddress, 1, data.count, f) == data.count
    }

    static func http(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let step = Int(first % 65)  // 0: all at once; else reads of 1...64 bytes (requests split anywhere)
        let rest = UnsafeRawBufferPointer(rebasing: data[1...])
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(IngestRequestDecoder(maxBody: 4096, maxHead: 8192)))
        var off = 0
        while off < rest.count {
            let n = step == 0 ? rest.count - off : Swift.min(step, rest.count - off)
            var buf = channel.allocator.buffer(capacity: n)
            buf.writeBytes(UnsafeRawBufferPointer(rebasing: rest[off..<(off + n)]))
            do { try channel.writeInbound(buf) } catch { break }
            while let decoded = try? channel.readInbound(as: IngestDecoded.self) {
                if case .request(let r) = decoded { _ = (r.body?.readableBytes, r.uri, r.contentType) }
            }
            off += n
        }
        _ = try? channel.finish()
    }

    static func putRecords(_ data: UnsafeRawBufferPointer) {
        var s = PutRecordsScanner(data)
        _ = s.scan { e in _ = (e.shard, e.sequence) }
        _ = PutRecordsScanner.allAccepted(data, entries: 3)
    }
}

import Bytes
import KafkaWire
import Testing

@Suite struct ProtocolTests {
    @Test func requestHeaderV1ForClassicVersions() {
        let out = ByteBuffer()
        encodeRequest(.metadata, version: 1, correlationId: 7, clientId: "pb", into: out) { w in
            MetadataMessage.encodeRequest(w, version: 1, topics: ["t"])
        }
        // size, api key 3, version 1, correlation 7, client id "pb", then topics [ "t" ] as int32 count + int16 string.
        #expect(out.toArray() == [0, 0, 0, 19, 0, 3, 0, 1, 0, 0, 0, 7, 0, 2, 0x70, 0x62, 0, 0, 0, 1, 0, 1, 0x74])
    }

    @Test func flexibleRequestsUseHeaderV2AndCompactForms() {
        let out = ByteBuffer()
        encodeRequest(.apiVersions, version: 3, correlationId: 1, clientId: "c", into: out) { w in
            ApiVersionsMessage.encodeRequest(w, version: 3, softwareName: "ab", softwareVersion: "1")
        }
        // header: key 18, v3, cid 1, client id "c" (int16 length, never compact), empty tags;
        // body: compact "ab" (len+1 = 3), compact "1" (2), empty tags.
        #expect(out.toArray() == [0, 0, 0, 18, 0, 18, 0, 3, 0, 0, 0, 1, 0, 1, 0x63, 0, 3, 0x61, 0x62, 2, 0x31, 0])
        #expect(ApiKey.apiVersions.responseHeaderHasTags(3) == false)
        #expect(ApiKey.produce.responseHeaderHasTags(9) && !ApiKey.produce.responseHeaderHasTags(8))
    }

    @Test func produceRequestGroupsPartitionsByTopic() throws {
        let out = ByteBuffer()
        let batch = ByteBuffer()
        batch.append(contentsOf: [1, 2, 3] as [UInt8])
        let b = batch.bytes
        encodeRequest(.produce, version: 7, correlationId: 2, clientId: "", into: out) { w in
            ProduceMessage.encodeRequest(w, version: 7, acks: -1, timeoutMs: 1000, entries: [
                .init(topic: "a", partition: 0, batch: b), .init(topic: "a", partition: 1, batch: b), .init(topic: "b", partition: 0, batch: b),
            ])
        }
        do {
            var r = ProtocolReader(out.bytes, flexible: false)
            r.pos = 4 + 2 + 2 + 4 + 2  // size, key, version, correlation id, empty client id
            #expect(try r.nullableString() == nil)  // transactional id
            #expect(try r.int16() == -1)
            #expect(try r.int32() == 1000)
            #expect(try r.arrayCount() == 2)
            #expect(try r.string() == "a")
            #expect(try r.arrayCount() == 2)
            #expect(try r.int32() == 0)
            #expect(try r.nullableBytes().map(Array.init) == [1, 2, 3])
        }
    }

    @Test func readerRefusesTruncationAndImpossibleCounts() {
        let buf = ByteBuffer()
        buf.append(contentsOf: [0, 0, 0, 5, 0xFF] as [UInt8])
        var r = ProtocolReader(buf.bytes, flexible: false)
        #expect(throws: ProtocolError.self) { _ = try r.int64() }
        var r2 = ProtocolReader(buf.bytes, flexible: false)
        #expect(throws: ProtocolError.self) { _ = try r2.arrayCount() }  // 5 elements cannot fit in 1 byte
        let compact = ByteBuffer()
        compact.append(0x80)  // unterminated varint
        var r3 = ProtocolReader(compact.bytes, flexible: true)
        #expect(throws: ProtocolError.self) { _ = try r3.string() }
    }

    @Test func decodesAMetadataResponse() throws {
        let out = ByteBuffer()
        let w = ProtocolWriter(out, flexible: false)
        w.arrayLength(1); w.int32(1); w.string("h"); w.int32(9092); w.nullableString(nil)  // brokers (v1: rack)
        w.int32(1)  // controller
        w.arrayLength(1); w.int16(0); w.string("t"); w.bool(false)
        w.arrayLength(2)
        for p in [1, 0] as [Int32] { w.int16(0); w.int32(p); w.int32(1); w.arrayLength(1); w.int32(1); w.arrayLength(1); w.int32(1) }
        var r = ProtocolReader(out.bytes, flexible: false)
        let m = try MetadataMessage.decodeResponse(&r, version: 1)
        #expect(m.brokers == [BrokerInfo(nodeId: 1, host: "h", port: 9092)])
        #expect(m.topics.first?.partitions.map(\.partition) == [0, 1])
    }

    @Test func errorTable() {
        #expect(KafkaErrorCode(6).name == "NOT_LEADER_OR_FOLLOWER" && KafkaErrorCode(6).isRetriable)
        #expect(KafkaErrorCode(7).isRetriable && !KafkaErrorCode(45).isRetriable && !KafkaErrorCode(10).isRetriable)
        #expect(KafkaErrorCode(46).name == "DUPLICATE_SEQUENCE_NUMBER")
        #expect(KafkaErrorCode(999).name == "UNKNOWN_ERROR_999")
        #expect(ApiKey.produce.supported.lowerBound == 7)
    }
}

/// A broker's answer is input: lengths and tagged-field sizes past what the answer holds (or past Int) are
/// refused with a ProtocolError, never a trap.
@Suite struct HostileResponseTests {
    func read(_ bytes: [UInt8], _ body: (inout ProtocolReader) throws(ProtocolError) -> Void) -> Bool {
        bytes.withUnsafeBytes { b in
            var r = ProtocolReader(b, flexible: true)
            do { try body(&r); return false } catch { return true }
        }
    }

    @Test func tenByteVarintLengthIsRefused() {
        // A compact string length of 2^63 + 1 (a 10-byte varint), then nothing.
        let huge: [UInt8] = [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]
        #expect(read(huge) { r throws(ProtocolError) in _ = try r.nullableString() })
        #expect(read(huge) { r throws(ProtocolError) in _ = try r.nullableBytes() })
        #expect(read(huge) { r throws(ProtocolError) in _ = try r.arrayCount() })
    }

    @Test func hugeTaggedFieldSizeIsRefused() {
        // One tagged field, tag 0, with a size of 2^62 (a varint), then a few bytes.
        let tags: [UInt8] = [1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1, 2, 3]
        #expect(read(tags) { r throws(ProtocolError) in try r.tags() })
        // A size that fits in Int but points past the end.
        let past: [UInt8] = [1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 1]
        #expect(read(past) { r throws(ProtocolError) in try r.tags() })
    }

    @Test func skipPastTheEndIsRefused() {
        #expect(read([1, 2, 3]) { r throws(ProtocolError) in try r.skip(Int.max) })
    }
}

import Foundation
import Bytes
import Codecs
import KafkaClient
import KafkaWire
import Platform
import RingBuffers
import Testing
import TestSupport

/// pinbench's producer and consumer against a real Kafka-compatible broker (Tansu), checked by an
/// independent client (librdkafka 2.x through confluent-kafka, CRCs checked).
@Suite(.serialized) struct KafkaTansuTests {
    /// Every codec with idempotence on and off; the compressing ones also through three compression threads
    /// (issue 13 item 2: a partition's batches keep their order through the thread that owns it) and none.
    static let cases: [(String, Bool, String)] = ["none", "gzip", "snappy", "lz4", "zstd"].flatMap { c in
        [(c, true, "auto"), (c, false, "auto")] + (c == "none" ? [] : [(c, true, "3"), (c, false, "0")])
    }

    func peer() -> String { Bundle.module.path(forResource: "kafka_peer", ofType: "py", inDirectory: "Peers")! }

    /// Floods 1,500 posts of `seed` into three new topics (3 partitions each) with `extra` options, and checks
    /// what every case here checks: the run succeeds, its 4,500 records are out and none dead-lettered, and
    /// librdkafka reads all 4,500 back, once and in order, CRCs checked, against `emulate` of the same seed.
    /// Returns the run's report for the case's own checks.
    func floodAndVerify(_ name: String, seed: Int, _ extra: [String]) throws -> [String: Any] {
        let broker = try Tansu.get()
        let dir = tempDir("kafka-\(name)")
        let prefix = "t\(UUID().uuidString.prefix(8).lowercased())"
        let run = try pinbench(["run", "--kafka", broker.bootstrap, "--topic-prefix", prefix, "--create-topics", "--partitions", "3",
                                "--count", "1500", "--seed", "\(seed)", "--report-json", "\(dir)/report.json", "--quiet"] + extra)
        #expect(run.status == 0, "pinbench run: \(run.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/report.json"))) as! [String: Any]
        #expect(report["records_out"] as? Int == 4500)
        #expect(report["dead_lettered"] as? Int == 0)
        #expect(try pinbench("emulate", "--count", "1500", "--seed", "\(seed)", "--out", "\(dir)/emu").status == 0)
        let v = try python3([peer(), "verify", broker.bootstrap, prefix, "\(dir)/emu"])
        #expect(v.status == 0, "librdkafka verify: \(v.stdout) \(v.stderr)")
        #expect(v.stdout.contains("\"records\": 4500"))
        return report
    }

    @Test(arguments: cases)
    func librdkafkaReadsBackEveryRecordOnceInOrder(_ codec: String, _ idempotence: Bool, _ threads: String) throws {
        let report = try floodAndVerify("\(codec)-\(idempotence)-\(threads)", seed: 5, [
            "--compression-threads", threads, "--compression", codec, "--idempotence", "\(idempotence)",
            "--batch-bytes", "16k", "--linger-ms", "2"])
        #expect((report["latency_ms"] as? [String: Any])?["measured_to"] as? String == "broker acknowledgement (acks=all)")
    }

    /// Under a modest `--rate` the sink stage compresses each batch as it seals it (`compressOnSeal`): the
    /// batches still carry the codec, the producer fields and a right CRC, as librdkafka reads them.
    @Test(arguments: [("lz4", true), ("zstd", false)])
    func aPacedFloodCompressesAsItSealsAndLibrdkafkaReadsItBack(_ codec: String, _ idempotence: Bool) throws {
        let report = try floodAndVerify("paced-\(codec)", seed: 6, ["--rate", "3000", "--compression", codec, "--idempotence", "\(idempotence)"])
        #expect((report["config"] as? [String: Any])?["compress_on_seal"] as? Bool == true)
        #expect((report["config"] as? [String: Any])?["sender_thread"] as? Bool == false)  // the sink stage sends too
        #expect((report["compression_ratio"] as? Double ?? 0) > 1.2, "batches went out compressed")
    }

    /// No sender thread (`--sender-thread false`), unpaced: the sink stage sends each batch as it fills (a turn
    /// of the sender's work inside `send`), and the sender compresses in that turn; librdkafka reads back every
    /// record once, in order, with idempotence on and off.
    @Test(arguments: [("zstd", true), ("lz4", false)])
    func withoutASenderThreadLibrdkafkaReadsBackEveryRecord(_ codec: String, _ idempotence: Bool) throws {
        let report = try floodAndVerify("inline-\(codec)", seed: 7, [
            "--sender-thread", "false", "--compression", codec, "--idempotence", "\(idempotence)", "--batch-bytes", "16k"])
        let config = report["config"] as? [String: Any]
        #expect(config?["sender_thread"] as? Bool == false && config?["compression_threads"] as? Int == 0 && config?["io_threads"] as? Bool == false)
        #expect((report["compression_ratio"] as? Double ?? 0) > 1.2, "batches went out compressed")
    }

    /// `produce --file` sends every record of a JSON Lines file as a user wrote it: CRLF endings lose their
    /// `\r`, blank lines are no records, and a last line without a newline is sent too (it was silently dropped
    /// before). librdkafka reads back exactly those records, in order; the figures count them.
    @Test func produceSendsEveryLineOfAFileWhateverItsLineEndings() throws {
        let broker = try Tansu.get()
        let dir = tempDir("produce-lines")
        let topic = "lines\(UUID().uuidString.prefix(8).lowercased())"
        let records = (0..<7).map { "{\"i\":\($0),\"s\":\"x y\"}" }
        let text = records[0] + "\r\n" + records[1] + "\n\n" + records[2] + "\r\n\r\n" + records[3] + "\n" + records[4] + "\r\n"
            + records[5] + "\n" + records[6]
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir)/posts.jsonl"))
        let p = try pinbench("produce", "--kafka", broker.bootstrap, "--topic", topic, "--create-topics", "--partitions", "1",
                             "--file", "\(dir)/posts.jsonl")
        #expect(p.status == 0, "\(p.stderr)")
        let figures = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as? [String: Any]
        #expect(figures?["records"] as? Int == 7 && figures?["delivered"] as? Int == 7, "\(p.stdout)")
        let read = try python3([peer(), "read", broker.bootstrap, topic, "7"])
        #expect(read.status == 0, "\(read.stderr)")
        let got = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let pairs = (got?["partitions"] as? [String: [[Any]]])?["0"] ?? []
        #expect(pairs.compactMap { $0.last as? String } == records)
    }

    /// A line over the record limit fails alone: it is counted failed and named, every other line is delivered
    /// (librdkafka reads them back), and the exit status says something failed. Before, the whole `produce`
    /// stopped at that line with the records before it unreported.
    @Test func produceFailsAnOversizeLineAloneAndDeliversTheRest() throws {
        let broker = try Tansu.get()
        let dir = tempDir("produce-oversize")
        let topic = "big\(UUID().uuidString.prefix(8).lowercased())"
        let small = (0..<5).map { "{\"i\":\($0)}" }
        let big = "{\"pad\":\"" + String(repeating: "x", count: 2 << 20) + "\"}"
        let text = small[0..<2].joined(separator: "\n") + "\n" + big + "\n" + small[2...].joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir)/posts.jsonl"))
        let p = try pinbench("produce", "--kafka", broker.bootstrap, "--topic", topic, "--create-topics", "--partitions", "1",
                             "--file", "\(dir)/posts.jsonl")
        #expect(p.status == 1, "\(p.stderr)")
        let figures = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as? [String: Any]
        #expect(figures?["records"] as? Int == 6 && figures?["delivered"] as? Int == 5 && figures?["failed"] as? Int == 1, "\(p.stdout)")
        #expect((figures?["first_error"] as? String)?.hasPrefix("line 3:") == true, "\(p.stdout)")
        let read = try python3([peer(), "read", broker.bootstrap, topic, "5"])
        #expect(read.status == 0, "\(read.stderr)")
        let got = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let pairs = (got?["partitions"] as? [String: [[Any]]])?["0"] ?? []
        #expect(pairs.compactMap { $0.last as? String } == small)
    }

    @Test(arguments: ["lz4", "zstd", "gzip", "snappy", "none"])
    func ourConsumerReadsWhatLibrdkafkaProduced(_ codec: String) throws {
        let broker = try Tansu.get()
        let dir = tempDir("rdk-\(codec)")
        #expect(try pinbench("emulate", "--count", "700", "--seed", "9", "--out", dir).status == 0)
        let topic = "rdk\(UUID().uuidString.prefix(8).lowercased())"
        // Create the topic with two partitions through our client's CreateTopics path (run with --count 0).
        let create = try pinbench("run", "--kafka", broker.bootstrap, "--topic-prefix", topic, "--create-topics", "--partitions", "2", "--count", "0", "--quiet")
        #expect(create.status == 0, "\(create.stderr)")
        let p = try python3([peer(), "produce", broker.bootstrap, "\(topic).geo", "\(dir)/geo.jsonl", codec])
        #expect(p.status == 0, "librdkafka produce: \(p.stdout) \(p.stderr)")
        let c = try pinbench("consume", "--kafka", broker.bootstrap, "--topic", "\(topic).geo", "--from-beginning", "--count", "700")
        #expect(c.status == 0, "\(c.stderr)")
        let expected = try String(contentsOfFile: "\(dir)/geo.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        let got = c.stdout.split(separator: "\n").map(String.init)
        #expect(got.count == 700)
        #expect(got.sorted() == expected.sorted())
    }

    @Test func badSettingsGiveOneLineAndNonZeroExit() throws {
        let broker = try Tansu.get()
        let cases: [([String], String)] = [
            (["--acks", "0", "--idempotence", "true"], "idempotence needs acks=all"),
            (["--compression", "brotli"], "brotli"),
            (["--sender-thread", "false", "--io-threads", "true"], "no compression threads and no I/O threads"),
            (["--sender-thread", "false", "--compression", "lz4", "--compression-threads", "2"], "--sender-thread false takes neither"),
        ]
        for (extra, mentions) in cases {
            let r = try runProcess(pinbenchBinary(), ["run", "--kafka", broker.bootstrap, "--count", "10"] + extra)
            #expect(r.status != 0)
            #expect(r.stderr.contains(mentions), "\(r.stderr)")
        }
        let port = freePort()
        let start = Date()
        let r = try pinbench("run", "--kafka", "127.0.0.1:\(port)", "--count", "10")
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot connect to 127.0.0.1:\(port)"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 30)
        let missing = try pinbench("run", "--kafka", broker.bootstrap, "--topic-prefix", "nosuch\(port)", "--count", "10")
        #expect(missing.status != 0 && missing.stderr.contains("does not exist"), "\(missing.stderr)")
    }

    /// An owner that says when its next record comes (a paced flood's generating stage) has a batch whose
    /// linger ends before then sealed and sent at once; one whose linger ends later waits for more records.
    /// The broker holds both batches, in order.
    /// A delivered batch's buffer is reused for a later batch only when nothing else holds the batch: an owner
    /// that keeps its reports keeps each batch's bytes as they were sent (the CRC still checks, the records
    /// still decode), while the producer seals many more batches. librdkafka reads every record back.
    @Test(arguments: ["lz4", "none"])
    func keptReportsKeepTheirBatchesBytesWhileBuffersAreReused(_ codec: String) throws {
        let broker = try Tansu.get()
        var cfg = ProducerConfiguration(bootstrap: try #require(BrokerAddress.parseList(broker.bootstrap)))
        cfg.lingerMs = 0
        cfg.batchBytes = 4096
        cfg.compression = try #require(CompressionCodec(name: codec))
        let producer = try KafkaProducer(config: cfg)
        let topic = "keep\(UUID().uuidString.prefix(8).lowercased())"
        try producer.createTopics([topic], partitions: 1)
        var kept: [DeliveryReport] = []
        var delivered = 0
        func take(_ r: DeliveryReport) {
            delivered += r.batch.records
            if kept.count < 8 { kept.append(r) }  // the rest are let go: their buffers may be reused
        }
        let n = 3000
        for i in 0..<n {
            var v = "{\"i\":\(i),\"pad\":\"\(String(repeating: "p", count: i % 50))\"}"
            try v.withUTF8 { try producer.send(topic: topic, partition: 0, key: nil, value: UnsafeRawBufferPointer($0), timestamp: 0, onDelivery: take) }
            if i % 100 == 99 { try producer.flush(onDelivery: take) }  // reports come in while later batches are sealed
        }
        try producer.close(onDelivery: take)
        #expect(delivered == n && kept.count == 8)
        let codecs = Codec(), scratch = ByteBuffer(capacity: 1 << 16)
        var next = 0
        for r in kept.sorted(by: { $0.baseOffset < $1.baseOffset }) {
            var values: [String] = []
            _ = try RecordBatchReader.forEachRecord(r.batch.bytes.bytes, codec: codecs, scratch: scratch) { rec in
                values.append(rec.value.map { String(decoding: $0, as: UTF8.self) } ?? "")
            }
            #expect(values.count == r.batch.records)
            let first = Int(r.baseOffset)
            #expect(values.first?.hasPrefix("{\"i\":\(first),") == true, "offset \(first): \(values.first ?? "-")")
            next = max(next, first + values.count)
        }
        #expect(next > 0)
        let read = try python3([peer(), "read", broker.bootstrap, topic, "\(n)"])
        #expect(read.status == 0, "\(read.stderr)")
        let got = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let pairs = (got?["partitions"] as? [String: [[Any]]])?["0"] ?? []
        #expect(pairs.compactMap { $0.first as? Int } == Array(0..<n))
    }

    @Test func aBatchIsSentAtOnceWhenNothingMoreCanJoinItBeforeItsLingerEnds() throws {
        let broker = try Tansu.get()
        var cfg = ProducerConfiguration(bootstrap: try #require(BrokerAddress.parseList(broker.bootstrap)))
        cfg.lingerMs = 60_000  // no deadline passes during the test
        let producer = try KafkaProducer(config: cfg)
        let topic = "early\(UUID().uuidString.prefix(8).lowercased())"
        try producer.createTopics([topic], partitions: 1)
        var reports: [DeliveryReport] = []
        func send(_ range: Range<Int>) throws {
            for i in range {
                var v = "{\"i\":\(i)}"
                try v.withUTF8 { try producer.send(topic: topic, partition: 0, key: nil, value: UnsafeRawBufferPointer($0), timestamp: 0) { reports.append($0) } }
            }
        }
        try send(0..<20)
        try producer.poll(noInputBeforeNs: monotonicNanos() + 30_000_000_000) { reports.append($0) }  // more may come first
        try send(20..<30)
        try producer.poll(noInputBeforeNs: monotonicNanos() + 120_000_000_000) { reports.append($0) }  // nothing more before the linger ends
        let deadline = monotonicNanos() + 30_000_000_000
        while reports.isEmpty && monotonicNanos() < deadline {
            usleep(2_000)
            try producer.poll { reports.append($0) }  // the linger holds: this only takes the report
        }
        #expect(reports.count == 1 && reports.first?.error == nil && reports.first?.batch.records == 30 && reports.first?.baseOffset == 0)
        try send(30..<35)
        try producer.poll { reports.append($0) }
        #expect(reports.count == 1 && producer.pendingBatches == 0, "a batch with its linger ahead waits")
        #expect(try producer.flush { reports.append($0) } == 0)
        #expect(reports.map(\.baseOffset) == [0, 30] && reports.map(\.batch.records) == [30, 5])
        try producer.close { _ in }
        // librdkafka reads the 35 records back, in order, at the offsets the reports gave.
        let read = try python3([peer(), "read", broker.bootstrap, topic, "35"])
        #expect(read.status == 0, "\(read.stderr)")
        let got = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let pairs = (got?["partitions"] as? [String: [[Any]]])?["0"] ?? []
        #expect(pairs.compactMap { $0.first as? Int } == Array(0..<35))
        #expect(pairs.compactMap { $0.last as? String } == (0..<35).map { "{\"i\":\($0)}" })
    }

    /// Quiet reports (a paced flood's producer): the sender does not wake the owner for each delivery report,
    /// so the owner takes them later, with its next chunk; each report carries when the broker's answer was
    /// read, which is where the flood's latency ends. `flush` still gets every report.
    @Test func quietReportsCarryTheTimeOfTheBrokersAnswer() throws {
        let broker = try Tansu.get()
        var cfg = ProducerConfiguration(bootstrap: try #require(BrokerAddress.parseList(broker.bootstrap)))
        cfg.lingerMs = 1
        let producer = try KafkaProducer(config: cfg)
        producer.quietReports = true
        let topic = "quiet\(UUID().uuidString.prefix(8).lowercased())"
        try producer.createTopics([topic], partitions: 1)
        var reports: [DeliveryReport] = []
        func send(_ n: Int) throws {
            for i in 0..<n {
                var v = "{\"i\":\(i)}"
                try v.withUTF8 { try producer.send(topic: topic, partition: 0, key: nil, value: UnsafeRawBufferPointer($0), timestamp: 0) { reports.append($0) } }
            }
        }
        let sentNs = monotonicNanos()
        try send(100)
        usleep(5_000)
        try producer.poll { reports.append($0) }  // the linger has passed: sealed and handed to the sender
        // The broker answers; the report waits, untaken, for 300 ms after it is there.
        let deadline = monotonicNanos() + 60_000_000_000
        while !producer.hasReports && reports.isEmpty && monotonicNanos() < deadline { usleep(1_000) }
        let seenNs = monotonicNanos()
        usleep(300_000)
        let takenNs = monotonicNanos()
        try producer.poll { reports.append($0) }
        #expect(reports.count == 1 && reports.first?.error == nil && reports.first?.batch.records == 100)
        if let r = reports.first {
            #expect(r.ackNs > sentNs && r.ackNs <= seenNs && takenNs - r.ackNs >= 300_000_000,
                    "the answer's time, not the taking's: answered \(Double(r.ackNs &- sentNs) / 1e6) ms after the send, taken \(Double(takenNs &- sentNs) / 1e6) ms")
        }
        try send(50)
        #expect(try producer.flush { reports.append($0) } == 0)
        #expect(reports.count == 2 && reports.allSatisfy { $0.error == nil })
        try producer.close { _ in }
    }

    /// A producer whose owner sends (`inlineSender`: a paced flood's sink stage) and sleeps in `wait` between its
    /// ticks: a broker's answer on a plaintext connection with room for more requests does not end that sleep
    /// (one wake-up per tick, not two). The owner's next `poll` reads it, and the report carries when the answer
    /// reached the socket (the kernel's arrival stamp), not when it was read. Then librdkafka reads the records.
    @Test func anInlineProducersOwnerSleepsThroughAnAnswerThatKeepsTheTimeItCame() throws {
        let broker = try Tansu.get()
        var cfg = ProducerConfiguration(bootstrap: try #require(BrokerAddress.parseList(broker.bootstrap)))
        cfg.lingerMs = 60_000
        cfg.inlineSender = true
        let bell = Doorbell()
        let producer = try KafkaProducer(config: cfg, reportBell: bell)
        let topic = "stamp\(UUID().uuidString.prefix(8).lowercased())"
        try producer.createTopics([topic], partitions: 1)
        var reports: [DeliveryReport] = []
        for i in 0..<40 {
            var v = "{\"i\":\(i)}"
            try v.withUTF8 { try producer.send(topic: topic, partition: 0, key: nil, value: UnsafeRawBufferPointer($0), timestamp: 0) { reports.append($0) } }
        }
        let sentNs = monotonicNanos()
        try producer.poll(noInputBeforeNs: sentNs + 120_000_000_000) { reports.append($0) }  // sealed and sent now
        // A fast broker's answer may already be in and taken by that poll's turn; otherwise it arrives unread.
        #expect(reports.count <= 1)
        usleep(1_000_000)  // the broker answers meanwhile; nobody reads the socket
        let waitNs = monotonicNanos()
        producer.wait(on: bell, timeoutNs: 400_000_000) { false }
        let wokeNs = monotonicNanos()
        #expect(wokeNs - waitNs >= 350_000_000, "the waiting answer ended the sleep after \(Double(wokeNs - waitNs) / 1e6) ms")
        try producer.poll { reports.append($0) }
        #expect(reports.count == 1 && reports.first?.error == nil && reports.first?.batch.records == 40 && reports.first?.baseOffset == 0)
        if let r = reports.first {
            #expect(r.ackNs > sentNs && r.ackNs < waitNs,
                    "the answer's arrival, not its reading: \(Double(r.ackNs &- sentNs) / 1e6) ms after the send, read \(Double(wokeNs &- sentNs) / 1e6) ms after")
        }
        try producer.close { _ in }
        let read = try python3([peer(), "read", broker.bootstrap, topic, "40"])
        #expect(read.status == 0, "\(read.stderr)")
        let got = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        let pairs = (got?["partitions"] as? [String: [[Any]]])?["0"] ?? []
        #expect(pairs.compactMap { $0.last as? String } == (0..<40).map { "{\"i\":\($0)}" })
    }
}

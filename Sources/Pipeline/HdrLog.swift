import Bytes
import Codecs
import Foundation
import Histogram
import Platform

/// HdrHistogram's log format 1.3 (what `HistogramLogWriter` writes and `HistogramLogReader`,
/// `HistogramLogProcessor` and the Python `hdrhistogram` package read): a header, the CSV legend, then one
/// line per interval with the base64 of the histogram in the compressed V2 encoding. Values are latencies in
/// microseconds; `Interval_Max` is written in milliseconds (ratio 1000).
public final class HdrLogWriter {
    let file: UnsafeMutablePointer<FILE>
    public let path: String
    public let startSeconds: Double
    public static let maxValueUnitRatio = 1000.0

    /// Creates `path` (replacing it) and writes the header; `startSeconds` is the log's StartTime (Unix).
    public init(path: String, startSeconds: Double, comment: String? = nil) throws(ConfigError) {
        guard let f = fopen(path, "w") else { throw ConfigError("--hlog \(path): cannot create it (\(String(cString: strerror(errno))))", isUsage: false) }
        file = f
        self.path = path
        self.startSeconds = startSeconds
        var head = ""
        if let c = comment { head += "#\(c)\n" }
        head += "#[Histogram log format version 1.3]\n"
        head += "#[StartTime: \(String(format: "%.3f", startSeconds)) (seconds since epoch)]\n"
        head += "#[BaseTime: 0.000 (seconds since epoch)]\n"
        head += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
        write(head)
    }

    deinit { fclose(file) }

    func write(_ s: String) {
        var s = s
        s.withUTF8 { _ = fwrite($0.baseAddress, 1, $0.count, file) }
    }

    /// One interval: `start` seconds since the Unix epoch (absolute, as BaseTime is 0), `length` seconds.
    public func append(start: Double, length: Double, _ h: Histogram<UInt64>, tag: String? = nil) {
        guard let enc = HdrEncoding.compressed(h) else { return }
        let max = Double(h.totalCount == 0 ? 0 : h.max) / HdrLogWriter.maxValueUnitRatio
        write("\(tag.map { "Tag=\($0)," } ?? "")\(String(format: "%.3f", start)),\(String(format: "%.3f", length)),\(String(format: "%.3f", max)),\(Base64.encode(enc))\n")
    }

    public func close() { fflush(file) }
}

/// HdrHistogram's V2 encoding (ZigZag LEB128 counts, zero runs as negative numbers) and its compressed
/// form (zlib), with Java's cookies, header fields and bucket layout.
public enum HdrEncoding {
    static let v2Cookie: Int32 = 0x1c84_9303 | 0x10
    static let v2CompressedCookie: Int32 = 0x1c84_9304 | 0x10

    /// Java's bucket layout for a histogram's range and precision: `countsArrayIndex` and `valueFromIndex`.
    struct Layout {
        let unitMagnitude: Int, subBucketHalfCountMagnitude: Int, subBucketHalfCount: Int
        let subBucketMask: UInt64, leadingZeroCountBase: Int, highest: UInt64

        init(_ h: Histogram<UInt64>) {
            unitMagnitude = Int(63 - UInt64(h.lowestDiscernibleValue).leadingZeroBitCount)
            let largest = 2 * Int(pow(10.0, Double(h.numberOfSignificantValueDigits.rawValue)))
            subBucketHalfCountMagnitude = max(Int(ceil(log2(Double(largest)))), 1) - 1
            subBucketHalfCount = 1 << subBucketHalfCountMagnitude
            subBucketMask = UInt64(2 * subBucketHalfCount - 1) << UInt64(unitMagnitude)
            leadingZeroCountBase = 64 - unitMagnitude - subBucketHalfCountMagnitude - 1
            highest = h.highestTrackableValue
        }

        func index(of value: UInt64) -> Int {
            let bucketIndex = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
            let subBucketIndex = Int(value >> UInt64(bucketIndex + unitMagnitude))
            return ((bucketIndex + 1) << subBucketHalfCountMagnitude) + (subBucketIndex - subBucketHalfCount)
        }

        /// The lowest value of bucket `index`, nil past the range.
        func value(at index: Int) -> UInt64? {
            var bucketIndex = (index >> subBucketHalfCountMagnitude) - 1
            var subBucketIndex = (index & (subBucketHalfCount - 1)) + subBucketHalfCount
            if bucketIndex < 0 { subBucketIndex -= subBucketHalfCount; bucketIndex = 0 }
            guard bucketIndex + unitMagnitude < 63 else { return nil }
            let v = UInt64(subBucketIndex) << UInt64(bucketIndex + unitMagnitude)
            return v <= highest ? v : nil
        }
    }

    /// The uncompressed V2 encoding.
    public static func encode(_ h: Histogram<UInt64>) -> [UInt8] {
        let layout = Layout(h)
        var counts: [(Int, UInt64)] = []
        for v in h.recordedValues() where v.count > 0 { counts.append((layout.index(of: v.value), UInt64(v.count))) }
        counts.sort { $0.0 < $1.0 }
        var payload: [UInt8] = []
        func zigzag(_ v: Int64) {
            var u = UInt64(bitPattern: (v << 1) ^ (v >> 63))
            while u >= 0x80 { payload.append(UInt8(truncatingIfNeeded: u) | 0x80); u >>= 7 }
            payload.append(UInt8(u))
        }
        var next = 0
        for (i, c) in counts {
            if i > next { zigzag(-Int64(i - next)) }  // a run of zero counts
            zigzag(Int64(clamping: c))
            next = i + 1
        }
        var out: [UInt8] = []
        func be32(_ v: Int32) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
        func be64(_ v: UInt64) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
        be32(v2Cookie)
        be32(Int32(payload.count))
        be32(0)  // normalizing index offset
        be32(Int32(h.numberOfSignificantValueDigits.rawValue))
        be64(h.lowestDiscernibleValue)
        be64(h.highestTrackableValue)
        be64(Double(1.0).bitPattern)  // integer to double conversion ratio
        return out + payload
    }

    /// The compressed V2 encoding: cookie, length, then zlib of the V2 encoding.
    public static func compressed(_ h: Histogram<UInt64>) -> [UInt8]? {
        guard let z = Zlib.compress(encode(h)) else { return nil }
        var out: [UInt8] = []
        withUnsafeBytes(of: v2CompressedCookie.bigEndian) { out += $0 }
        withUnsafeBytes(of: Int32(z.count).bigEndian) { out += $0 }
        return out + z
    }
}

extension HdrEncoding {
    /// Decodes the compressed (or plain) V2 encoding into a histogram of pinbench's layout (values 1 µs to
    /// 1 h, 3 digits): nil for anything else, a corrupt payload or counts beyond the range. Bounded: input.
    public static func decode(_ bytes: [UInt8]) -> Histogram<UInt64>? {
        func be32(_ b: [UInt8], _ at: Int) -> Int32? {
            guard at >= 0, at + 4 <= b.count else { return nil }
            return Int32(bitPattern: UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3]))
        }
        var plain = bytes
        if be32(bytes, 0) == v2CompressedCookie {
            // DEFLATE expands at most about 1032:1: no larger buffer than the input can fill (and 64 MiB at most).
            guard let n = be32(bytes, 4), n >= 0, 8 + Int(n) <= bytes.count,
                  let inflated = Zlib.decompress(Array(bytes[8..<(8 + Int(n))]), limit: min(64 << 20, Int(n) * 1032 + 1024)) else { return nil }
            plain = inflated
        }
        guard be32(plain, 0) == v2Cookie, let payloadLength = be32(plain, 4), payloadLength >= 0, 40 + Int(payloadLength) <= plain.count,
              be32(plain, 8) == 0, let digits = be32(plain, 12) else { return nil }
        var h = newLatencyHistogram()
        guard Int8(clamping: digits) == h.numberOfSignificantValueDigits.rawValue else { return nil }
        let layout = Layout(h)
        var i = 40, index = 0
        let end = 40 + Int(payloadLength)
        while i < end {
            var u: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < end, shift < 64 else { return nil }
                let b = plain[i]
                i += 1
                u |= UInt64(b & 0x7F) << shift
                if b < 0x80 { break }
                shift += 7
            }
            let v = Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
            if v < 0 {
                // A run of zeros: no index past this layout's counts (the values it can hold), so no overflow.
                guard v > -(1 << 40), index <= 1 << 30 else { return nil }
                index += Int(-v)
            } else {
                guard v < 1 << 36 else { return nil }  // 2^36 per bucket × at most 2^26 entries: the total fits
                if v > 0 {
                    guard let x = layout.value(at: index), h.record(x, count: UInt64(v)) else { return nil }
                }
                index += 1
            }
        }
        return h
    }
}

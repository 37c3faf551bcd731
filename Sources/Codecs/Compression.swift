import Bytes
import CLZ4
import CSnappy
import CZlib
import CZstd
#if canImport(Glibc)
import Glibc
#endif

/// Kafka's compression codecs, numbered as in RecordBatch attributes bits 0-2.
public enum CompressionCodec: Int16, CaseIterable, Sendable, CustomStringConvertible {
    case none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4

    public init?(name: String) {
        switch name.lowercased() {
        case "none", "uncompressed": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }

    /// The level used when none is given: librdkafka's choices (gzip 6, lz4 fast, zstd 3).
    public var defaultLevel: Int32 {
        switch self {
        case .gzip: 6
        case .zstd: 3
        default: 0
        }
    }
}

public struct CodecError: Error, Equatable, Sendable, CustomStringConvertible {
    public var codec: CompressionCodec
    public var message: String
    public init(_ codec: CompressionCodec, _ message: String) {
        self.codec = codec
        self.message = message
    }
    public var description: String { "\(codec): \(message)" }
}

/// Compression and decompression with contexts kept for reuse. One per thread; not `Sendable`.
///
/// Output formats follow what Kafka's clients write and read (`shared/spec/kafka-facts.md`):
/// gzip is an RFC 1952 stream, snappy uses xerial framing (raw blocks are accepted on read),
/// lz4 a standard frame with independent 64 KB blocks, zstd a standard frame.
public final class Codec {
    private var zstdC: OpaquePointer?
    private var zstdD: OpaquePointer?
    private var lz4C: OpaquePointer?
    private var lz4D: OpaquePointer?
    /// One fast-LZ4 state for every block. LZ4F copies input below its 64 KiB block size into its own buffer and
    /// needs an output bound of a whole block, which small linger-sealed batches paid for in full.
    private var lz4Stream: UnsafeMutablePointer<LZ4_stream_t>?
    private var deflater: UnsafeMutablePointer<z_stream>?
    private var deflaterLevel: Int32 = -100
    /// Decompressed output is refused beyond this size (a corrupt or hostile batch cannot exhaust memory).
    public var maxDecompressedBytes = 256 << 20

    public init() {}

    deinit {
        if let s = lz4Stream { LZ4_freeStream(s) }
        if let c = zstdC { ZSTD_freeCCtx(c) }
        if let d = zstdD { ZSTD_freeDCtx(d) }
        if let c = lz4C { LZ4F_freeCompressionContext(c) }
        if let d = lz4D { LZ4F_freeDecompressionContext(d) }
        if let z = deflater { deflateEnd(z); z.deallocate() }
    }

    /// The most bytes `compress` appends for `n` bytes of input (what it reserves, each codec's own worst-case
    /// bound and framing): an output buffer with this much room never grows, so a sealed batch costs one
    /// allocation, not one and a copy.
    public static func compressBound(_ n: Int, codec: CompressionCodec, level: Int32? = nil) -> Int {
        let level = level ?? codec.defaultLevel
        switch codec {
        case .none: return n
        case .zstd: return ZSTD_compressBound(n)
        case .lz4 where level < 3: return lz4FrameBound(n)
        case .lz4:
            var prefs = lz4Preferences(level: level)
            return LZ4F_compressBound(n, &prefs) + 64
        case .snappy:
            let block = 32 * 1024, full = n / block, rest = n % block
            return 16 + full * (4 + snappy_max_compressed_length(block)) + (rest > 0 || n == 0 ? 4 + snappy_max_compressed_length(rest) : 0)
        case .gzip:
            // deflateBound for these parameters (window 15, memLevel 8) with the gzip wrapper, + `compress`'s 32.
            return Int(CZlib.compressBound(uLong(n))) + 12 + 32
        }
    }

    static func lz4Preferences(level: Int32) -> LZ4F_preferences_t {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.blockSizeID = LZ4F_max64KB
        prefs.frameInfo.blockMode = LZ4F_blockIndependent
        prefs.compressionLevel = level
        // Each update compresses straight from the caller's bytes: without it a batch under 64 KiB is first
        // copied into the context's own buffer and compressed at the end. The frame is the same either way.
        prefs.autoFlush = 1
        return prefs
    }

    /// `lz4Frame`'s output bound: the header, each 64 KiB block's size word and bound, the end mark.
    static func lz4FrameBound(_ n: Int) -> Int {
        let blockMax = 64 * 1024
        let full = n / blockMax, rest = n % blockMax  // the bound of what is there, not of 64 KiB
        return 7 + full * (4 + Int(LZ4_compressBound(Int32(blockMax)))) + (rest > 0 ? 4 + Int(LZ4_compressBound(Int32(rest))) : 0) + 4
    }

    /// Appends the compressed form of `src` to `out`.
    public func compress(_ src: UnsafeRawBufferPointer, codec: CompressionCodec, level: Int32? = nil, into out: ByteBuffer) throws(CodecError) {
        let level = level ?? codec.defaultLevel
        switch codec {
        case .none:
            out.append(src)
        case .zstd:
            if zstdC == nil { zstdC = ZSTD_createCCtx() }
            let cap = ZSTD_compressBound(src.count)
            let dst = out.reserve(cap)
            let n = ZSTD_compressCCtx(zstdC, dst, cap, src.baseAddress, src.count, level)
            if ZSTD_isError(n) != 0 { throw CodecError(.zstd, String(cString: ZSTD_getErrorName(n))) }
            out.count += n
        case .lz4 where level < 3:
            try lz4Frame(src, acceleration: level < 1 ? max(1, -level) : 1, into: out)
        case .lz4:
            if lz4C == nil {
                var c: OpaquePointer?
                let r = LZ4F_createCompressionContext(&c, UInt32(LZ4F_VERSION))
                if LZ4F_isError(r) != 0 { throw CodecError(.lz4, String(cString: LZ4F_getErrorName(r))) }
                lz4C = c
            }
            var prefs = Codec.lz4Preferences(level: level)
            let cap = LZ4F_compressBound(src.count, &prefs) + 64  // + frame header and end mark
            let dst = out.reserve(cap)
            var n = LZ4F_compressBegin(lz4C, dst, cap, &prefs)
            if LZ4F_isError(n) != 0 { throw CodecError(.lz4, String(cString: LZ4F_getErrorName(n))) }
            var used = n
            n = LZ4F_compressUpdate(lz4C, dst + used, cap - used, src.baseAddress, src.count, nil)
            if LZ4F_isError(n) != 0 { throw CodecError(.lz4, String(cString: LZ4F_getErrorName(n))) }
            used += n
            n = LZ4F_compressEnd(lz4C, dst + used, cap - used, nil)
            if LZ4F_isError(n) != 0 { throw CodecError(.lz4, String(cString: LZ4F_getErrorName(n))) }
            out.count += used + n
        case .snappy:
            // xerial framing: magic, version 1, compatible 1, then [int32 BE length][raw snappy block] per ≤32 KiB of input.
            out.append(UnsafeRawBufferPointer(start: Codec.xerialHeader, count: 16))
            var off = 0
            repeat {
                let n = Swift.min(32 * 1024, src.count - off)
                let cap = snappy_max_compressed_length(n)
                let lenAt = out.count
                let dst = out.reserve(4 + cap)
                var outLen = cap
                let r = snappy_compress(
                    src.baseAddress.map { ($0 + off).assumingMemoryBound(to: CChar.self) }, n,
                    (dst + 4).assumingMemoryBound(to: CChar.self), &outLen)
                if r != SNAPPY_OK { throw CodecError(.snappy, "snappy_compress failed (\(r.rawValue))") }
                out.storeBigEndian(Int32(outLen), at: lenAt)
                out.count += 4 + outLen
                off += n
            } while off < src.count
        case .gzip:
            if deflater == nil {
                let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
                z.initialize(to: z_stream())
                let r = deflateInit2_(z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
                if r != Z_OK { z.deallocate(); throw CodecError(.gzip, "deflateInit2 failed (\(r))") }
                deflater = z
                deflaterLevel = level
            } else {
                deflateReset(deflater)
                if deflaterLevel != level { deflateParams(deflater, level, Z_DEFAULT_STRATEGY); deflaterLevel = level }
            }
            let z = deflater!
            let cap = Int(deflateBound(z, UInt(src.count))) + 32
            let dst = out.reserve(cap)
            z.pointee.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: Bytef.self))
            z.pointee.avail_in = UInt32(src.count)
            z.pointee.next_out = dst.assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = UInt32(cap)
            let r = deflate(z, Z_FINISH)
            if r != Z_STREAM_END { throw CodecError(.gzip, "deflate failed (\(r))") }
            out.count += cap - Int(z.pointee.avail_out)
        }
    }

    /// An LZ4 frame as LZ4F writes it with these preferences (independent 64 KiB blocks, no checksums, no content
    /// size), for the fast levels: the 7-byte header (magic, FLG 0x60, BD 0x40, header checksum 0x82), each block as
    /// its LE size (the high bit set for a block stored as is, when compressing would not shrink it) and bytes,
    /// then the end mark. Kafka's and librdkafka's LZ4 readers and LZ4F itself read it.
    private func lz4Frame(_ src: UnsafeRawBufferPointer, acceleration: Int32, into out: ByteBuffer) throws(CodecError) {
        if lz4Stream == nil {
            guard let s = LZ4_createStream() else { throw CodecError(.lz4, "cannot allocate an LZ4 stream") }
            lz4Stream = s
        }
        let blockMax = 64 * 1024
        let cap = Codec.lz4FrameBound(src.count)
        let dst = out.reserve(cap)
        dst.storeBytes(of: Codec.lz4FrameHeader, as: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8).self)
        var used = 7, off = 0
        while off < src.count {
            let n = Swift.min(blockMax, src.count - off)
            let from = src.baseAddress! + off
            let c = LZ4_compress_fast_extState(
                lz4Stream, from.assumingMemoryBound(to: CChar.self), (dst + used + 4).assumingMemoryBound(to: CChar.self),
                Int32(n), Int32(cap - used - 4), acceleration)
            if c > 0 && Int(c) < n {
                dst.storeBytes(of: UInt32(c).littleEndian, toByteOffset: used, as: UInt32.self)
                used += 4 + Int(c)
            } else {
                dst.storeBytes(of: (UInt32(n) | 0x8000_0000).littleEndian, toByteOffset: used, as: UInt32.self)
                (dst + used + 4).copyMemory(from: from, byteCount: n)
                used += 4 + n
            }
            off += n
        }
        dst.storeBytes(of: UInt32(0), toByteOffset: used, as: UInt32.self)
        out.count += used + 4
    }

    /// Magic 0x184D2204, FLG 0x60 (version 1, independent blocks, no checksums or size), BD 0x40 (64 KiB
    /// blocks), header checksum 0x82: what LZ4F writes for these preferences (a test compares them).
    static let lz4FrameHeader: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82)

    nonisolated(unsafe) static let xerialHeader: UnsafeRawPointer = {
        let bytes: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
        let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 1)
        p.copyMemory(from: bytes, byteCount: 16)
        return UnsafeRawPointer(p)
    }()

    /// Appends the decompressed form of `src` to `out`.
    public func decompress(_ src: UnsafeRawBufferPointer, codec: CompressionCodec, into out: ByteBuffer) throws(CodecError) {
        switch codec {
        case .none: out.append(src)
        case .zstd: try unzstd(src, into: out)
        case .lz4: try unlz4(src, into: out)
        case .snappy: try unsnappy(src, into: out)
        case .gzip: try gunzip(src, into: out)
        }
    }

    /// A zstd frame (streamed; its output bounded by `maxDecompressedBytes`).
    private func unzstd(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) throws(CodecError) {
        if zstdD == nil { zstdD = ZSTD_createDCtx() }
        var input = ZSTD_inBuffer(src: src.baseAddress, size: src.count, pos: 0)
        let start = out.count
        while true {
            let chunk = Swift.max(ZSTD_DStreamOutSize(), src.count * 4)
            let dst = out.reserve(chunk)
            var output = ZSTD_outBuffer(dst: dst, size: chunk, pos: 0)
            let r = ZSTD_decompressStream(zstdD, &output, &input)
            if ZSTD_isError(r) != 0 {
                ZSTD_DCtx_reset(zstdD, ZSTD_reset_session_only)
                throw CodecError(.zstd, String(cString: ZSTD_getErrorName(r)))
            }
            out.count += output.pos
            if out.count - start > maxDecompressedBytes { throw CodecError(.zstd, "decompressed size over limit") }
            if r == 0 && input.pos == input.size { break }
            if input.pos == input.size && output.pos < output.size {
                ZSTD_DCtx_reset(zstdD, ZSTD_reset_session_only)
                throw CodecError(.zstd, "truncated frame")
            }
        }
    }

    /// An LZ4 frame (bounded; a frame that does not end is an error).
    private func unlz4(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) throws(CodecError) {
        if lz4D == nil {
            var d: OpaquePointer?
            let r = LZ4F_createDecompressionContext(&d, UInt32(LZ4F_VERSION))
            if LZ4F_isError(r) != 0 { throw CodecError(.lz4, String(cString: LZ4F_getErrorName(r))) }
            lz4D = d
        }
        var inPos = 0
        var frameDone = false
        let start = out.count
        while inPos < src.count {
            let chunk = 256 * 1024
            let dst = out.reserve(chunk)
            var dstSize = chunk
            var srcSize = src.count - inPos
            let r = LZ4F_decompress(lz4D, dst, &dstSize, src.baseAddress! + inPos, &srcSize, nil)
            if LZ4F_isError(r) != 0 {
                LZ4F_resetDecompressionContext(lz4D)
                throw CodecError(.lz4, String(cString: LZ4F_getErrorName(r)))
            }
            inPos += srcSize
            out.count += dstSize
            if out.count - start > maxDecompressedBytes { throw CodecError(.lz4, "decompressed size over limit") }
            if r == 0 { frameDone = true; break }
            if srcSize == 0 && dstSize == 0 { break }
        }
        if !frameDone {
            LZ4F_resetDecompressionContext(lz4D)
            throw CodecError(.lz4, "truncated frame")
        }
    }

    /// Snappy: xerial-framed blocks (Kafka's Java client) or one raw block.
    private func unsnappy(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) throws(CodecError) {
        guard let base = src.baseAddress, src.count > 0 else { throw CodecError(.snappy, "empty input") }
        if src.count >= 16 && memcmp(base, Codec.xerialHeader, 8) == 0 {
            var off = 16
            while off < src.count {
                guard off + 4 <= src.count else { throw CodecError(.snappy, "truncated xerial block header") }
                let n = Int(UInt32(bigEndian: base.loadUnaligned(fromByteOffset: off, as: UInt32.self)))
                off += 4
                guard n <= src.count - off else { throw CodecError(.snappy, "truncated xerial block") }
                try snappyBlock(UnsafeRawBufferPointer(start: base + off, count: n), into: out)
                off += n
            }
        } else {
            try snappyBlock(src, into: out)
        }
    }

    /// A gzip or zlib stream (bounded; a stream that does not end is an error).
    private func gunzip(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) throws(CodecError) {
        var z = z_stream()
        let r0 = inflateInit2_(&z, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        if r0 != Z_OK { throw CodecError(.gzip, "inflateInit2 failed (\(r0))") }
        defer { inflateEnd(&z) }
        z.next_in = UnsafeMutablePointer(mutating: src.baseAddress?.assumingMemoryBound(to: Bytef.self))
        z.avail_in = UInt32(src.count)
        let start = out.count
        while true {
            let chunk = Swift.max(64 * 1024, src.count * 4)
            let dst = out.reserve(chunk)
            z.next_out = dst.assumingMemoryBound(to: Bytef.self)
            z.avail_out = UInt32(chunk)
            let r = inflate(&z, Z_NO_FLUSH)
            out.count += chunk - Int(z.avail_out)
            if r == Z_STREAM_END { break }
            if r != Z_OK && r != Z_BUF_ERROR { throw CodecError(.gzip, "inflate failed (\(r))") }
            if r == Z_BUF_ERROR && z.avail_in == 0 { throw CodecError(.gzip, "truncated stream") }
            if out.count - start > maxDecompressedBytes { throw CodecError(.gzip, "decompressed size over limit") }
        }
    }

    private func snappyBlock(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) throws(CodecError) {
        var n = 0
        let cs = src.baseAddress!.assumingMemoryBound(to: CChar.self)
        guard snappy_uncompressed_length(cs, src.count, &n) == SNAPPY_OK, n <= maxDecompressedBytes else {
            throw CodecError(.snappy, "corrupt block header")
        }
        let dst = out.reserve(n)
        var outLen = n
        guard snappy_uncompress(cs, src.count, dst.assumingMemoryBound(to: CChar.self), &outLen) == SNAPPY_OK else {
            throw CodecError(.snappy, "corrupt block")
        }
        out.count += outLen
    }
}

// MARK: Parquet page codecs

extension Codec {
    /// Appends a Parquet page body compressed with `codec`: snappy as one raw block (no xerial framing),
    /// zstd and gzip as standard frames, none as is. (lz4 pages are not written: Parquet's LZ4 is ambiguous.)
    public func compressPage(_ src: UnsafeRawBufferPointer, codec: CompressionCodec, level: Int32? = nil, into out: ByteBuffer) throws(CodecError) {
        guard codec == .snappy else { return try compress(src, codec: codec, level: level, into: out) }
        let cap = snappy_max_compressed_length(src.count)
        let dst = out.reserve(cap)
        var outLen = cap
        let r = snappy_compress(
            src.baseAddress?.assumingMemoryBound(to: CChar.self) ?? UnsafePointer(bitPattern: 0x10), src.count,
            dst.assumingMemoryBound(to: CChar.self), &outLen)
        if r != SNAPPY_OK { throw CodecError(.snappy, "snappy_compress failed (\(r.rawValue))") }
        out.count += outLen
    }

    /// Appends the body of a Parquet page compressed with `codec` (snappy: one raw block).
    public func decompressPage(_ src: UnsafeRawBufferPointer, codec: CompressionCodec, into out: ByteBuffer) throws(CodecError) {
        guard codec == .snappy else { return try decompress(src, codec: codec, into: out) }
        guard src.count > 0 else { throw CodecError(.snappy, "empty block") }
        try snappyBlock(src, into: out)
    }
}

/// zlib-wrapped DEFLATE in one call (RFC 1950; what Java's `Deflater` writes): HdrHistogram's compressed
/// encoding. Not for hot paths.
public enum Zlib {
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var cap = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(cap))
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in compress2(o.baseAddress, &cap, i.baseAddress, uLong(i.count), level) }
        }
        guard rc == Z_OK else { return nil }
        out.removeLast(out.count - Int(cap))
        return out
    }

    /// Inflates zlib data whose size is at most `limit` bytes; nil when it is not zlib or is larger.
    public static func decompress(_ bytes: [UInt8], limit: Int) -> [UInt8]? {
        guard limit > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: limit)
        var len = uLong(limit)
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { i in uncompress(o.baseAddress, &len, i.baseAddress, uLong(i.count)) }
        }
        guard rc == Z_OK else { return nil }
        out.removeLast(out.count - Int(len))
        return out
    }
}

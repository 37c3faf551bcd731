#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1

/// One complete HTTP/1.1 request, with only what the ingest API reads from it.
struct IngestRequest {
    var method: HTTPMethod
    var uri: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    var minorVersion: Int
    var keepAlive: Bool
    var contentType: String?
    var apiKey: String?
    var authorization: String?
    /// The body (a slice of what was read; no copy when it arrived whole), nil when empty or over the limit.
    var body: ByteBuffer?
    /// The body was over the size limit: it was read and dropped.
    var tooLarge: Bool

    func header(_ lowercasedName: String) -> String? {
        switch lowercasedName {
        case "content-type": return contentType
        case "x-api-key": return apiKey
        case "authorization": return authorization
        default: return nil
        }
    }
}

enum IngestDecoded {
    /// The head asked `Expect: 100-continue`: the body follows once we say so.
    case continueExpected
    case request(IngestRequest)
}

/// Why a request could not be read; answered 400 (or 431) and the connection closed.
enum IngestDecodeError: Error, Equatable {
    case badRequest(String)
    case headersTooLarge
}

/// A lean HTTP/1.1 request parser for the ingest API: finds the end of the head in the bytes read, takes the
/// request line and the handful of headers the API reads (no String per header), then the body by
/// Content-Length or chunked transfer coding, and hands on one complete request — one pipeline hop per
/// request instead of a head, body parts and an end. Bodies over `maxBody` are read and dropped (the
/// request is then answered 413); heads over `maxHead` bytes are refused (431); anything malformed, or a
/// request with both Content-Length and Transfer-Encoding (request smuggling), is refused (400). A body
/// declared more than `drainBytes` over the limit is answered 413 at once and the connection closed.
struct IngestRequestDecoder: ByteToMessageDecoder {
    typealias InboundOut = IngestDecoded

    let maxBody: Int
    let maxHead: Int

    enum State {
        case head
        /// Waiting for `length` body bytes (`skip`: over the limit, dropped as they come).
        case body(IngestRequest, length: Int, skip: Bool)
        /// Chunked: the next chunk-size line, a chunk's bytes (and its CRLF), or the trailer section.
        case chunkSize(IngestRequest, ByteBuffer?, total: Int)
        case chunkData(IngestRequest, ByteBuffer?, total: Int, left: Int)
        case trailers(IngestRequest, ByteBuffer?, total: Int)
        /// The connection ends after the answer owed: whatever else the client sends is dropped.
        case discard
    }

    var state = State.head

    /// How far past `maxBody` a declared body is still read and dropped before the 413.
    static let drainBytes = 8 << 20

    init(maxBody: Int, maxHead: Int = 64 * 1024) {
        self.maxBody = maxBody
        self.maxHead = maxHead
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .head:
            // Empty lines before a request line are ignored (RFC 9112 §2.2; some clients send a CRLF after a body).
            while let b = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self), b == 0x0D || b == 0x0A {
                buffer.moveReaderIndex(forwardBy: 1)
            }
            guard let end = find(buffer, "\r\n\r\n") else {
                if buffer.readableBytes > maxHead { throw IngestDecodeError.headersTooLarge }
                return .needMoreData
            }
            if end > maxHead { throw IngestDecodeError.headersTooLarge }
            var (req, length, chunked, expectContinue) = try parseHead(buffer, end: end)
            buffer.moveReaderIndex(forwardBy: end + 4)
            if !chunked && length > maxBody && (expectContinue || length - maxBody > Self.drainBytes) {
                // Over the limit before a byte of body: answer 413 at once instead of inviting the body with a
                // 100 Continue, and close after the answer (the client may send the body regardless). Without
                // the Expect, a body up to `drainBytes` past the limit is read and dropped, so a client that
                // sends before it reads still gets its 413 on a connection that stays open; a larger one is not
                // waited for.
                req.tooLarge = true
                req.keepAlive = false
                state = .discard
                context.fireChannelRead(wrapInboundOut(.request(req)))
                return .continue
            }
            if expectContinue { context.fireChannelRead(wrapInboundOut(.continueExpected)) }
            if chunked {
                state = .chunkSize(req, nil, total: 0)
            } else if length == 0 {
                context.fireChannelRead(wrapInboundOut(.request(req)))
            } else {
                state = .body(req, length: length, skip: length > maxBody)
            }
            return .continue
        case .body(var req, let length, let skip):
            if skip {
                let n = min(length, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                if n < length { state = .body(req, length: length - n, skip: true); return .needMoreData }
                req.tooLarge = true
            } else {
                guard let b = buffer.readSlice(length: length) else { return .needMoreData }
                req.body = b
            }
            state = .head
            context.fireChannelRead(wrapInboundOut(.request(req)))
            return .continue
        case .chunkSize(let req, let body, let total):
            guard let eol = find(buffer, "\r\n") else {
                if buffer.readableBytes > 1024 { throw IngestDecodeError.badRequest("chunk size line too long") }
                return .needMoreData
            }
            let size = try chunkSize(buffer, eol)
            buffer.moveReaderIndex(forwardBy: eol + 2)
            state = size == 0 ? .trailers(req, body, total: total) : .chunkData(req, body, total: total, left: size)
            return .continue
        case .discard:
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        case .chunkData(let req, let body, let total, let left):
            return try decodeChunkData(context: context, buffer: &buffer, req, body, total: total, left: left)
        case .trailers(var req, let body, let total):
            // Trailer fields are ignored; an empty line ends the message.
            guard let eol = find(buffer, "\r\n") else {
                if buffer.readableBytes > maxHead { throw IngestDecodeError.headersTooLarge }
                return .needMoreData
            }
            buffer.moveReaderIndex(forwardBy: eol + 2)
            if eol > 0 { return .continue }
            req.tooLarge = total > maxBody
            req.body = req.tooLarge ? nil : body
            state = .head
            context.fireChannelRead(wrapInboundOut(.request(req)))
            return .continue
        }
    }

    /// A chunk's bytes (kept while the body stays under the limit, else skipped), then its CRLF.
    mutating func decodeChunkData(context: ChannelHandlerContext, buffer: inout ByteBuffer, _ req: IngestRequest, _ body: ByteBuffer?,
                                  total: Int, left: Int) throws -> DecodingState {
        var body = body
        let n = min(left, buffer.readableBytes)
        if n > 0 {
            if total + n <= maxBody {
                if body == nil { body = context.channel.allocator.buffer(capacity: max(n, 4096)) }
                body!.writeImmutableBuffer(buffer.readSlice(length: n)!)
            } else {
                body = nil
                buffer.moveReaderIndex(forwardBy: n)
            }
        }
        if n < left {
            state = .chunkData(req, body, total: total + n, left: left - n)
            return .needMoreData
        }
        guard buffer.readableBytes >= 2 else {
            state = .chunkData(req, body, total: total + n, left: 0)
            return .needMoreData
        }
        guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw IngestDecodeError.badRequest("chunk without CRLF") }
        state = .chunkSize(req, body, total: total + n)
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A request cut off by the peer closing is dropped (nothing was accepted from it).
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }

    /// Offset of `needle` in the readable bytes, or nil.
    func find(_ buffer: ByteBuffer, _ needle: StaticString) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            guard let base = raw.baseAddress, raw.count >= needle.utf8CodeUnitCount else { return nil }
            let k = needle.utf8CodeUnitCount, first = Int32(needle.utf8Start[0])
            var at = 0
            while at + k <= raw.count, let hit = memchr(base + at, first, raw.count - at - k + 1) {
                let off = UnsafeRawPointer(hit) - base
                if memcmp(hit, needle.utf8Start, k) == 0 { return off }
                at = off + 1
            }
            return nil
        }
    }

    func chunkSize(_ buffer: ByteBuffer, _ eol: Int) throws -> Int {
        try buffer.withUnsafeReadableBytes { raw in
            var v = 0, digits = 0, significant = 0
            for i in 0..<eol {
                let c = raw[i]
                let d: Int
                switch c {
                case 0x30...0x39: d = Int(c - 0x30)
                case 0x41...0x46: d = Int(c - 0x41 + 10)
                case 0x61...0x66: d = Int(c - 0x61 + 10)
                case UInt8(ascii: ";"), 0x20, 0x09:
                    // Chunk extensions (and whitespace before them) are ignored.
                    guard digits > 0 else { throw IngestDecodeError.badRequest("bad chunk size") }
                    return v
                default: throw IngestDecodeError.badRequest("bad chunk size")
                }
                digits += 1
                // Leading zeros are allowed (RFC 9112 §7.1): only significant digits count toward the bound.
                guard v != 0 || d != 0 else { continue }
                significant += 1
                guard significant <= 8 else { throw IngestDecodeError.badRequest("chunk too large") }
                v = v << 4 | d
            }
            guard digits > 0 else { throw IngestDecodeError.badRequest("bad chunk size") }
            return v
        }
    }

    /// The request line and the headers the API reads. Returns the request, Content-Length (0 when absent),
    /// whether the body is chunked, and whether the client expects a 100 Continue.
    func parseHead(_ buffer: ByteBuffer, end: Int) throws -> (IngestRequest, Int, Bool, Bool) {
        try buffer.withUnsafeReadableBytes { raw in
            let p = raw.bindMemory(to: UInt8.self)
            // Request line: METHOD SP URI SP HTTP/1.x
            guard let sp1 = p[0..<end].firstIndex(of: 0x20), sp1 > 0,
                  let sp2 = p[(sp1 + 1)..<end].firstIndex(of: 0x20), sp2 > sp1 + 1 else { throw IngestDecodeError.badRequest("bad request line") }
            var lineEnd = sp2
            while lineEnd < end && p[lineEnd] != 0x0D { lineEnd += 1 }
            if lineEnd < end && (lineEnd + 1 >= end || p[lineEnd + 1] != 0x0A) { throw IngestDecodeError.badRequest("bare CR in the request line") }
            let version = UnsafeBufferPointer(rebasing: p[(sp2 + 1)..<lineEnd])
            guard version.count == 8, version.starts(with: "HTTP/1.".utf8), version[7] == 0x30 || version[7] == 0x31 else {
                throw IngestDecodeError.badRequest("not HTTP/1.x")
            }
            let minor = Int(version[7] - 0x30)
            for c in p[0..<sp1] where !(c >= 0x41 && c <= 0x5A) { throw IngestDecodeError.badRequest("bad method") }
            for c in p[(sp1 + 1)..<sp2] where c <= 0x20 || c >= 0x7F { throw IngestDecodeError.badRequest("bad request target") }
            let method = HTTPMethod(rawValue: String(decoding: UnsafeBufferPointer(rebasing: p[0..<sp1]), as: UTF8.self))
            var req = IngestRequest(method: method, uri: String(decoding: UnsafeBufferPointer(rebasing: p[(sp1 + 1)..<sp2]), as: UTF8.self),
                                    minorVersion: minor, keepAlive: minor == 1, contentType: nil, apiKey: nil, authorization: nil,
                                    body: nil, tooLarge: false)
            var length: Int? = nil
            var chunked = false, expect = false
            var i = lineEnd + 2
            while i < end {
                var e = i
                while e < end && p[e] != 0x0D {
                    // A bare LF (or NUL) inside a header line: refused (RFC 9112 §2.2), never read as a line end.
                    if p[e] == 0x0A || p[e] == 0 { throw IngestDecodeError.badRequest("bare LF or NUL in a header line") }
                    e += 1
                }
                // A CR must end the line with CR LF: a bare CR would hide the next header (request smuggling).
                if e < end && (e + 1 >= end || p[e + 1] != 0x0A) { throw IngestDecodeError.badRequest("bare CR in a header line") }
                guard let colon = p[i..<e].firstIndex(of: UInt8(ascii: ":")), colon > i else { throw IngestDecodeError.badRequest("bad header line") }
                for c in p[i..<colon] where c <= 0x20 || c >= 0x7F { throw IngestDecodeError.badRequest("bad header name") }
                var vs = colon + 1, ve = e
                while vs < ve && (p[vs] == 0x20 || p[vs] == 0x09) { vs += 1 }
                while ve > vs && (p[ve - 1] == 0x20 || p[ve - 1] == 0x09) { ve -= 1 }
                let name = UnsafeBufferPointer(rebasing: p[i..<colon])
                let value = UnsafeBufferPointer(rebasing: p[vs..<ve])
                func text() -> String { String(decoding: value, as: UTF8.self) }
                switch name.count {
                case 14 where same(name, "content-length"):
                    var n = 0
                    guard !value.isEmpty, value.count <= 15 else { throw IngestDecodeError.badRequest("bad Content-Length") }
                    for c in value {
                        guard c >= 0x30 && c <= 0x39 else { throw IngestDecodeError.badRequest("bad Content-Length") }
                        n = n * 10 + Int(c - 0x30)
                    }
                    if let l = length, l != n { throw IngestDecodeError.badRequest("conflicting Content-Length") }
                    length = n
                case 12 where same(name, "content-type"): req.contentType = text()
                case 17 where same(name, "transfer-encoding"):
                    guard same(value, "chunked") else { throw IngestDecodeError.badRequest("unsupported Transfer-Encoding") }
                    chunked = true
                case 10 where same(name, "connection"):
                    if same(value, "close") { req.keepAlive = false } else if same(value, "keep-alive") { req.keepAlive = true }
                case 6 where same(name, "expect"): expect = minor == 1 && same(value, "100-continue")
                case 9 where same(name, "x-api-key"): req.apiKey = text()
                case 13 where same(name, "authorization"): req.authorization = text()
                default: break
                }
                i = e + 2
            }
            if chunked && length != nil { throw IngestDecodeError.badRequest("both Content-Length and Transfer-Encoding") }
            return (req, length ?? 0, chunked, expect)
        }
    }

    /// ASCII case-insensitive equality with a lowercase literal.
    func same(_ a: UnsafeBufferPointer<UInt8>, _ b: StaticString) -> Bool {
        guard a.count == b.utf8CodeUnitCount else { return false }
        let q = b.utf8Start
        for k in 0..<a.count where (a[k] | 0x20) != q[k] && a[k] != q[k] { return false }
        return true
    }
}

import Bytes
import JSON

/// A JSON answer written as bytes: literals, integers and escaped strings, no String formatting per field,
/// into a pointer-backed buffer (no copy-on-write checks per append).
struct JSONBytes {
    let buffer: Bytes.ByteBuffer

    init(capacity: Int) { buffer = Bytes.ByteBuffer(capacity: capacity) }

    var bytes: [UInt8] { Array(buffer.bytes) }

    func append(_ s: StaticString) { buffer.append(s) }

    func append(_ v: Int64) { buffer.appendDecimal(Int(v)) }

    /// A quoted JSON string (the JSON module's escaper).
    func appendString(_ s: String) { JSONWriter.appendQuoted(s, to: buffer) }
}

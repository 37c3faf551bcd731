import Bytes

/// A JSON answer written as bytes: literals, integers and escaped strings, no String formatting per field,
/// into a pointer-backed buffer (no copy-on-write checks per append).
struct JSONBytes {
    let buffer: Bytes.ByteBuffer

    init(capacity: Int) { buffer = Bytes.ByteBuffer(capacity: capacity) }

    var bytes: [UInt8] { Array(buffer.bytes) }

    func append(_ s: StaticString) { buffer.append(s) }

    func append(_ v: Int64) { buffer.appendDecimal(Int(v)) }

    /// A quoted JSON string; quotes and backslashes escaped, control characters become spaces.
    func appendString(_ s: String) {
        buffer.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\")); buffer.append(c)
            case 0..<0x20: buffer.append(0x20)
            default: buffer.append(c)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }
}

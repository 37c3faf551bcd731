#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The records of a text that holds one per line (JSON Lines, `pinbench emulate`'s files): a line ends at `\n`
/// or at the end of the text (the last line needs no newline), a `\r` before its `\n` is not part of it, and an
/// empty line is no record. The one splitter of every command that reads such a text (`produce`, `put-records`,
/// `clean`); it finds each newline with `memchr`, not a byte at a time.
public enum Lines {
    /// Calls `body` with each non-empty line (without its `\n` or `\r\n`) and its 1-based line number within
    /// `text`, until `body` returns false. Returns how many lines it went through, empty ones included.
    @inlinable
    public static func forEach<E: Error>(in text: UnsafeRawBufferPointer,
                                         _ body: (_ line: UnsafeRawBufferPointer, _ number: Int) throws(E) -> Bool) throws(E) -> Int {
        guard let base = text.baseAddress else { return 0 }
        var number = 0
        var start = 0
        while start < text.count {
            var end = text.count
            if let nl = memchr(base + start, 0x0A, text.count - start) { end = UnsafeRawPointer(nl) - base }
            number += 1
            var len = end - start
            if len > 0 && base.load(fromByteOffset: start + len - 1, as: UInt8.self) == 0x0D { len -= 1 }
            if len > 0, try !body(UnsafeRawBufferPointer(start: base + start, count: len), number) { return number }
            start = end + 1
        }
        return number
    }

    /// How many lines `forEach` gives `body` (the non-empty ones).
    public static func count(in text: UnsafeRawBufferPointer) -> Int {
        var n = 0
        _ = forEach(in: text) { (_, _) throws(Never) -> Bool in
            n += 1
            return true
        }
        return n
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory: its bytes without a copy into a fresh heap block (a 50 MB
/// `Data` read costs a page fault per 4 KiB of new memory plus the copy). Unmapped on deinit.
public final class MappedFile {
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps `path`; throws a one-line message when the file cannot be opened or mapped.
    public init(path: String) throws(MappedFileError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MappedFileError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw MappedFileError(message: "cannot stat \(path): \(String(cString: strerror(errno)))") }
        count = Int(st.st_size)
        guard count > 0 else { base = nil; return }
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw MappedFileError(message: "cannot map \(path): \(String(cString: strerror(errno)))")
        }
        madvise(p, count, MADV_SEQUENTIAL)
        base = p
    }

    deinit { if let base { munmap(base, count) } }

    /// The file's bytes, valid while `self` lives.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

public struct MappedFileError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

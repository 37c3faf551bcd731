#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A failed file-system call: the operation, the path and the OS's reason (never file contents).
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var code: Int32

    public init(_ operation: String, _ path: String, _ code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var reason: String { String(cString: strerror(code)) }
    /// ENOSPC or EDQUOT: the disk (or the quota) is full.
    public var isDiskFull: Bool { code == ENOSPC || code == EDQUOT }
    public var description: String { "\(operation) \(path): \(reason)" }
}

/// `mkdir -p`.
public func makeDirectories(_ path: String) throws(FileError) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST { throw FileError("mkdir", current) }
    }
}

/// Names in a folder, without `.` and `..`, in the order the file system gives them.
public func listDirectory(_ path: String) throws(FileError) -> [String] {
    guard let d = opendir(path) else { throw FileError("list", path) }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { out.append(name) }
    }
    return out
}

/// Whether `path` is a folder.
public func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// Whether `path` is a regular file.
public func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

/// Writes `bytes` to `path` (created or truncated; with `exclusive`, it must not exist), then fsyncs it. On failure the partial file
/// is removed.
public func writeFileDurably(_ path: String, _ bytes: UnsafeRawBufferPointer, exclusive: Bool = false) throws(FileError) {
    let fd = open(path, O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC) | O_CLOEXEC, 0o644)
    if fd < 0 { throw FileError("create", path) }
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 {
            if errno == EINTR { continue }
            let e = errno
            close(fd)
            unlink(path)
            throw FileError("write", path, e)
        }
        done += n
    }
    if fsync(fd) != 0 {
        let e = errno
        close(fd)
        unlink(path)
        throw FileError("fsync", path, e)
    }
    if close(fd) != 0 {
        let e = errno
        unlink(path)
        throw FileError("close", path, e)
    }
}

/// Writes `bytes` to `path` whole or not at all: a temp name beside it, fsync, rename over `path`, fsync of
/// the folder. A reader (or a re-run after a crash) never sees half a file.
public func replaceFileAtomically(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(FileError) {
    let slash = path.lastIndex(of: "/")
    let dir = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    let tmp = "\(dir)/.tmp-\(name)"
    unlink(tmp)
    try writeFileDurably(tmp, bytes)
    if rename(tmp, path) != 0 {
        let e = errno
        unlink(tmp)
        throw FileError("rename to", path, e)
    }
    syncDirectory(dir)
}

/// One writer per folder: an exclusive `flock` on `<dir>/.pinbench.lock`, held while this lives (the kernel
/// drops it when the process ends, killed or not). The file holds the holder's PID for the refusal's message.
public final class DirectoryLock: Sendable {
    let fd: Atomic<Int32>

    /// Takes the lock, or says who holds it (`holder`: that process's PID, when it wrote one).
    public init(_ dir: String) throws(DirectoryLockError) {
        do { try makeDirectories(dir) } catch { throw DirectoryLockError(path: dir, holder: nil, reason: error.description) }
        let path = "\(dir)/.pinbench.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DirectoryLockError(path: dir, holder: nil, reason: FileError("open", path).description) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var buf = [UInt8](repeating: 0, count: 32)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
            close(fd)
            let pid = n > 0 ? Int32(String(decoding: buf.prefix(n).filter { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self)) : nil
            throw DirectoryLockError(path: dir, holder: pid, reason: e == EWOULDBLOCK ? nil : String(cString: strerror(e)))
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        self.fd = Atomic(fd)
    }

    /// Lets the folder go now (a writer that closed is done with it, whenever its object goes away).
    public func release() {
        let fd = self.fd.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { close(fd) }
    }

    deinit { release() }
}

public struct DirectoryLockError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var holder: Int32?
    /// Why the lock could not be taken when it is not another holder.
    public var reason: String?
    public var description: String {
        if let reason { return "cannot lock \(path): \(reason)" }
        return "\(path) is in use by another pinbench\(holder.map { " (pid \($0))" } ?? ""): one process writes a log at a time; wait for it or use another --data-dir"
    }
}

/// fsyncs a folder so that names created or renamed in it survive a crash (best effort).
public func syncDirectory(_ dir: String) {
    let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        _ = fsync(fd)
        close(fd)
    }
}

/// `rm -rf path`: removes a file or a folder and everything under it; symbolic links are removed, never
/// followed. Best effort (what cannot be removed stays).
public func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR, let d = opendir(path) {
        while let e = readdir(d) {
            let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if n == "." || n == ".." { continue }
            removeTree("\(path)/\(n)")
        }
        closedir(d)
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// A fresh, empty folder `<TMPDIR or /tmp>/<prefix>-XXXXXX`.
public func makeTemporaryDirectory(_ prefix: String) throws(FileError) -> String {
    let base = (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/\(prefix)-XXXXXX"
    var t = Array(base.utf8CString)
    guard let p = mkdtemp(&t) else { throw FileError("mkdtemp", base) }
    return String(cString: p)
}

/// `replaceFileAtomically` for text.
public func replaceFileAtomically(_ path: String, text: String) throws(FileError) {
    var t = text
    let r: Result<Void, FileError> = t.withUTF8 { u in Result { () throws(FileError) in try replaceFileAtomically(path, UnsafeRawBufferPointer(u)) } }
    try r.get()
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (or its nearest existing
/// parent); nil when it cannot be told.
public func freeDiskBytes(_ path: String) -> Int? {
    var p = path.isEmpty ? "." : path
    while true {
        var st = statvfs()
        if statvfs(p, &st) == 0 {
            let (v, o) = Int(st.f_bavail).multipliedReportingOverflow(by: Int(st.f_frsize))
            return o ? Int.max : v
        }
        if p == "/" || p == "." { return nil }
        guard let slash = p.lastIndex(of: "/") else { return freeDiskBytes(".") }
        p = slash == p.startIndex ? "/" : String(p[..<slash])
    }
}

/// The size of the regular file at `path`; nil when there is none.
public func fileSize(_ path: String) -> Int? {
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    return Int(st.st_size)
}

/// Reads `count` bytes at `offset` of an open file into `p`, across short reads and EINTR: how many it got
/// (fewer only at the end of the file), or -1 with `errno` set.
public func preadFully(_ fd: Int32, _ p: UnsafeMutableRawPointer, count: Int, offset: Int) -> Int {
    var got = 0
    while got < count {
        let n = pread(fd, p + got, count - got, off_t(offset + got))
        if n < 0 { if errno == EINTR { continue }; return -1 }
        if n == 0 { break }
        got += n
    }
    return got
}

/// A file's bytes whole; nil when it is missing, unreadable or over `limit` bytes.
public func readFileBytes(_ path: String, limit: Int) -> [UInt8]? {
    guard let size = fileSize(path), size <= limit else { return nil }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: size)
    var got = 0
    while got < size {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, size - got) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { break }
        got += n
    }
    return got == size ? bytes : Array(bytes[0..<got])
}

/// A small text file whole (settings, markers); nil when it is missing, unreadable or over `limit` bytes.
public func readSmallTextFile(_ path: String, limit: Int = 1 << 20) -> String? {
    readFileBytes(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
}

/// Whether `path` is a relative path that stays under the folder it is joined to: not empty, not absolute,
/// no `..`, `.` or empty component, no NUL or backslash (keys from a listing or a log are input).
public func isSafeRelativePath(_ path: String) -> Bool {
    guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0"), !path.contains("\\") else { return false }
    return path.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0 != ".." && $0 != "." }
}

/// Size, modification time (ns) and inode of the file at `path`, for telling one input from another.
public func fileIdentity(_ path: String) -> (size: Int, mtimeNs: Int, inode: UInt64)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return (Int(st.st_size), Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec), UInt64(st.st_ino))
}

/// FNV-1a, 64 bits: a fast, stable hash of bytes (table keys, short names; not for security).
@inlinable
public func fnv1a64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

/// `fnv1a64` of a text, in 16 hex digits: a stable short name for a longer text (not for security).
public func stableHash(_ s: String) -> String {
    let hex = String(fnv1a64(s.utf8), radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

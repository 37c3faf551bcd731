#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `command` with `/bin/sh -c` and returns the first line it prints (at most 64 KiB read), or nil
/// when it fails (non-zero exit) or cannot start. For credential helpers (`credential_process`,
/// OAUTHBEARER token commands): its standard error goes to ours.
public func runShellFirstLine(_ command: String) -> String? {
    guard let out = runShell(command) else { return nil }
    return out.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
}

/// Runs `command` with `/bin/sh -c`; its standard output (at most `limit` bytes), or nil on failure.
public func runShell(_ command: String, limit: Int = 64 << 10) -> String? {
    guard let f = popen(command, "r") else { return nil }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while bytes.count < limit {
        let n = buf.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
        if n <= 0 { break }
        bytes += buf[0..<min(n, limit - bytes.count)]
    }
    let status = pclose(f)
    guard status == 0 else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

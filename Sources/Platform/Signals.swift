#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// A parent may have blocked SIGTERM/SIGINT (children inherit the mask); unblock them so that graceful
/// shutdown and Ctrl-C work. Call before any thread starts.
public func unblockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Catches SIGINT and SIGTERM while it lives: the first one calls `handler` with the signal (the command
/// stops cleanly, writes what it has and exits 128 + signal: 130 or 143); a second one ends the process at
/// once, the default way. `cancel()` restores the default handling.
public final class TerminationWatch: @unchecked Sendable {
    final class Caught: Sendable { let signal = Atomic<Int32>(0) }
    let sources: [any DispatchSourceSignal]
    let caught = Caught()

    public init(_ handler: @escaping @Sendable (Int32) -> Void) {
        var sources: [any DispatchSourceSignal] = []
        let caught = self.caught
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                if caught.signal.compareExchange(expected: 0, desired: sig, ordering: .relaxed).exchanged {
                    handler(sig)
                } else {
                    signal(sig, SIG_DFL)
                    raise(sig)
                }
            }
            s.resume()
            sources.append(s)
        }
        self.sources = sources
    }

    /// The signal that came (SIGINT or SIGTERM), if one did.
    public var caughtSignal: Int32? {
        let s = caught.signal.load(ordering: .relaxed)
        return s == 0 ? nil : s
    }

    /// 130 after SIGINT, 143 after SIGTERM: what a shell reports for a process the signal ended.
    public var exitCode: Int32? { caughtSignal.map { 128 + $0 } }

    public func cancel() {
        for s in sources { s.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
    }
}

/// Writes all of `bytes` to `fd` (retrying short writes and EINTR). False when the other end is gone
/// (EPIPE: `| head` closed it) or the write failed.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var off = 0
    while off < bytes.count {
        let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
        if n <= 0 {
            if n < 0 && errno == EINTR { continue }
            return false
        }
        off += n
    }
    return true
}

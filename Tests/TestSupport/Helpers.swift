import Foundation
import Synchronization

public func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "pinbench-\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    _ = removeTempDirsAtExit
    createdTempDirs.withLock { $0.append(d) }
    return d
}

/// Every folder `tempDir` made in this process: removed when the test process exits (a full run leaves
/// gigabytes of logs and tables otherwise; repeated runs filled a 250 GB disk), unless
/// PINBENCH_KEEP_TEST_DIRS=1 keeps them to look at.
private let createdTempDirs = Mutex<[String]>([])
private let removeTempDirsAtExit: Void = {
    guard ProcessInfo.processInfo.environment["PINBENCH_KEEP_TEST_DIRS"] != "1" else { return }
    atexit {
        for d in createdTempDirs.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: d) }
    }
}()

/// The `pinbench` executable built next to the test bundle.
public func pinbenchBinary() -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    var candidates = [dir.appendingPathComponent("pinbench").path]
    candidates.append(dir.deletingLastPathComponent().appendingPathComponent("pinbench").path)
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
}

public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a program to completion, capturing its output.
///
/// Output goes to temporary files, not pipes: a process spawned at the same time by another test can
/// inherit a pipe's write end and keep it open, so reading a pipe to its end could wait for a stranger.
public func runProcess(_ path: String, _ args: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new } }
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let base = NSTemporaryDirectory() + "pinbench-proc-\(UUID().uuidString)"
    FileManager.default.createFile(atPath: base + ".out", contents: nil)
    FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try? out.close()
    try? err.close()
    let o = (try? Data(contentsOf: URL(fileURLWithPath: base + ".out"))) ?? Data()
    let e = (try? Data(contentsOf: URL(fileURLWithPath: base + ".err"))) ?? Data()
    return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

public func pinbench(_ args: String...) throws -> ProcessResult {
    try runProcess(pinbenchBinary(), args)
}

public func pinbench(_ args: [String]) throws -> ProcessResult {
    try runProcess(pinbenchBinary(), args)
}

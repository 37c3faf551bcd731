import Foundation
import Synchronization

public func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "pinbench-\(name)-\(UUID().uuidString.prefix(8))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

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
public func runProcess(_ path: String, _ args: [String], cwd: String? = nil) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read both pipes while the child runs so a full pipe cannot block it.
    let o = Mutex(Data()), e = Mutex(Data())
    let g = DispatchGroup()
    DispatchQueue(label: "out").async(group: g) { let d = out.fileHandleForReading.readDataToEndOfFile(); o.withLock { $0 = d } }
    DispatchQueue(label: "err").async(group: g) { let d = err.fileHandleForReading.readDataToEndOfFile(); e.withLock { $0 = d } }
    g.wait()
    p.waitUntilExit()
    return ProcessResult(
        status: p.terminationStatus, stdout: String(decoding: o.withLock { $0 }, as: UTF8.self),
        stderr: String(decoding: e.withLock { $0 }, as: UTF8.self))
}

public func pinbench(_ args: String...) throws -> ProcessResult {
    try runProcess(pinbenchBinary(), args)
}

import ArgumentParser
import Bytes
import Foundation
import JSON
import PinEmulator
import Pipeline
import Platform

@main
struct Pinbench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinbench",
        abstract: "Load-test and run a Pinterest-style ingestion pipeline: emulator, Kafka-format log, reports.",
        version: pinbenchVersion,
        subcommands: [Emulate.self, Run.self, Produce.self, Consume.self, Log.self, Land.self, Clean.self, Analyze.self, Batch.self,
                      StreamCommand.self, PutRecordsCommand.self, Bench.self, SweepCommand.self, Report.self, Serve.self]
    )

    /// Every error ends in one line on stderr: usage errors (bad flags, `validate()`) exit 64; anything a
    /// run throws (a broker, a file, a service: every error type of pinbench describes itself in one line
    /// without secrets) exits 1; a command's own exit code passes through.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var c = command as? any AsyncParsableCommand { try await c.run() } else { try command.run() }
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode { exit(withError: error) }
            let text = code == .validationFailure ? message(for: error) : "\(error)"
            let line = text.split(separator: "\n").first.map(String.init) ?? text
            FileHandle.standardError.write(Data("pinbench: \(line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}

/// A run that could not be done (not a usage error): one line, exit 1.
struct RunFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Writes the buffer to stdout and empties it; a closed pipe (`| head`) ends the program quietly.
func drainToStdout(_ out: ByteBuffer) {
    if !writeAll(1, out.bytes) { exit(errno == EPIPE ? 0 : 1) }
    out.reset()
}

/// Writes `text` to `path` whole (temp name, fsync, rename).
func writeText(_ text: String, to path: String) throws {
    do { try replaceFileAtomically(path, text: text) } catch { throw RunFailure("cannot write \(path): \(error.reason)") }
}

/// A live progress line on stderr when it is a terminal.
struct ProgressLine {
    let enabled: Bool
    init(quiet: Bool) { enabled = isatty(2) != 0 && !quiet }
    func show(_ s: ProgressSample, prefix: String) { if enabled { FileHandle.standardError.write(Data(("\r[" + prefix + s.line + "   ").utf8)) } }
    func end() { if enabled { FileHandle.standardError.write(Data("\n".utf8)) } }
}

// MARK: - emulate

struct Emulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write emulated posts to DIR/pin.jsonl, DIR/geo.jsonl and DIR/user.jsonl.")

    @Option(help: "Posts to write.") var count: Int
    @Option(help: "Random seed; the same seed gives the same posts.") var seed: UInt64 = 1
    @Option(help: "Distinct users behind the posts.") var users: Int = 11_000
    @Option(help: "Output folder.") var out: String
    @Option(help: "compact, or python (\", \" / \": \" separators and \\u escapes like the original client).")
    var style: JSONStyle = .compact

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be ≥ 0") }
        guard users >= 1 else { throw ValidationError("--users must be ≥ 1") }
    }

    func run() throws {
        try Emulator(seed: seed, users: users).writeFiles(count: count, to: out, style: style)
        print("wrote \(count) posts (\(3 * count) records) to \(out)/{pin,geo,user}.jsonl")
    }
}

// MARK: - run

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Flood emulated posts into the embedded Kafka-format log (or a Kafka cluster, or Kinesis) and report what happened.")

    @OptionGroup var flood: FloodOptions
    @OptionGroup var sink: SinkOptions
    @OptionGroup var backend: BackendOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var c = RunConfig()
        flood.apply(to: &c)
        c.sink = sink.settings
        c.backend = try backend.backend()
        let runner: FloodRunner
        do { runner = try FloodRunner(config: c) } catch { throw ValidationError(error.message) }
        let sigint = onInterrupt { runner.requestStop() }
        defer { sigint.cancel() }
        let progress = ProgressLine(quiet: output.quiet)
        let result: RunResult
        result = try runner.run { progress.show($0, prefix: "") }
        progress.end()
        if let path = output.reportJson { try writeText(result.json.serialized(), to: path) }
        if !output.quiet { print(result.summaryTable, terminator: "") }
        if result.error != nil || !result.accountingHolds { throw ExitCode(2) }
    }
}

import ArgumentParser
import AWSAuth
import Bytes
import Console
import Foundation
import JSON
import PinEmulator
import Pipeline
import Reports
import Platform
import Sinks

@main
struct Pinbench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinbench",
        abstract: "Load-test and run a Pinterest-style ingestion pipeline: emulator, Kafka-format log, reports.",
        discussion: examples("pinbench run --duration 20s", "pinbench bench --out bench", "pinbench batch --date 2026-11-30",
                             "pinbench help run", "pinbench --generate-completion-script bash > /etc/bash_completion.d/pinbench"),
        version: "\(pinbenchVersion) (\(Machine.gitRevision))",
        subcommands: [Emulate.self, Run.self, Produce.self, Consume.self, Log.self, Land.self, Clean.self, Analyze.self, Batch.self,
                      StreamCommand.self, PutRecordsCommand.self, Bench.self, SweepCommand.self, Report.self, PlanCommand.self, Serve.self, Auth.self]
    )

    /// Every error ends in one line on stderr: usage errors (bad flags, `validate()`) exit 64; anything a
    /// run throws (a broker, a file, a service: every error type of pinbench describes itself in one line
    /// without secrets) exits 1; a command's own exit code passes through.
    static func main() async {
        Digest.keepOpenSSLUntilExit()
        do {
            let names = Pinbench.configuration.subcommands.map { $0._commandName } + ["help"]
            let args: [String]
            do { args = try preparedArguments(Array(CommandLine.arguments.dropFirst()), commands: names) } catch { throw ValidationError(error.message) }
            var command = try parseAsRoot(args)
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

/// Runs `body`; a `ConfigError` about the settings becomes a usage error (exit 64), one from a backend a
/// run failure (exit 1).
func usageErrors<T>(_ body: () throws(ConfigError) -> T) throws -> T {
    do { return try body() } catch {
        if error.isUsage { throw ValidationError(error.message) }
        throw RunFailure(error.message)
    }
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

// MARK: - emulate

struct Emulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write emulated posts to DIR/pin.jsonl, DIR/geo.jsonl and DIR/user.jsonl.",
        discussion: examples("pinbench emulate --count 1000 --out posts", "pinbench emulate --count 500 --seed 7 --style python --out posts-py"))

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
        abstract: "Flood emulated posts into the embedded Kafka-format log (or a Kafka cluster, or Kinesis) and report what happened.",
        discussion: examples("pinbench run --duration 20s --data-dir data", "pinbench run --count 1000000 --rate 50000 --report-json run.json", "pinbench run --kafka localhost:9092 --create-topics --duration 1m"))

    @OptionGroup var flood: FloodOptions
    @OptionGroup var sink: SinkOptions
    @OptionGroup var backend: BackendOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        var c = RunConfig()
        flood.apply(to: &c)
        c.sink = sink.settings
        c.sink.stages = backend.sinkStages.count
        c.backend = try backend.backend()
        let runner: FloodRunner
        do { runner = try FloodRunner(config: c) } catch { throw ValidationError(error.message) }
        let term = TerminationWatch { sig in
            if isatty(2) != 0 { FileHandle.standardError.write(Data("\nstopping: sending what was generated (again to quit at once)\n".utf8)) }
            runner.requestStop(sig == SIGTERM ? .terminated : .interrupted)
        }
        defer { term.cancel() }
        let progress = ProgressLine(quiet: output.quiet)
        let result = try flood.fleet.around(c, metrics: { runner.prometheus(labels: $0) }) {
            let r = try usageErrors { () throws(ConfigError) in try runner.run(onStart: { line in
                if !output.quiet { FileHandle.standardError.write(Data("writing to \(line)\(c.worker.map { " as worker \($0.index)/\($0.count)" } ?? "")\n".utf8)) }
            }, onProgress: { s in
                if let w = s.warning { progress.note(w) }
                progress.show(s.line)
            }) }
            progress.end()
            // Before --metrics-hold: the report and the last scrape are there together.
            if let path = output.reportJson { try writeText(r.json.serialized(), to: path) }
            return r
        }
        if !output.quiet { print(result.summaryTable, terminator: "") }
        if let code = term.exitCode { throw ExitCode(code) }
        if result.error != nil || !result.accountingHolds { throw ExitCode(2) }
    }
}

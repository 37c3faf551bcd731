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

    /// Every error ends in one line on stderr: usage errors (bad flags, `validate()`) exit 64, run failures
    /// (`RunFailure`: a broker, a file, a service) exit 1; a command's own exit code passes through.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var c = command as? any AsyncParsableCommand { try await c.run() } else { try command.run() }
        } catch let e as RunFailure {
            FileHandle.standardError.write(Data("pinbench: \(e.message)\n".utf8))
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            let message = self.message(for: error)
            if code == .success || message.isEmpty { exit(withError: error) }
            let line = message.split(separator: "\n").first.map(String.init) ?? message
            FileHandle.standardError.write(Data("pinbench: \(line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line)\n".utf8))
            Foundation.exit(code.rawValue)
        }
    }
}

/// A run that could not be done (not a usage error): one line, exit 1.
struct RunFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    init(_ error: any Error) { message = "\(error)" }
    var description: String { message }
}

/// Writes the buffer to stdout and empties it; a closed pipe (`| head`) ends the program quietly.
func drainToStdout(_ out: ByteBuffer) {
    var off = 0
    while off < out.count {
        let n = write(1, out.base + off, out.count - off)
        if n <= 0 {
            if errno == EINTR { continue }
            exit(errno == EPIPE ? 0 : 1)
        }
        off += n
    }
    out.reset()
}

/// A parent may have blocked SIGTERM/SIGINT (children inherit the mask); unblock them so that graceful
/// shutdown and Ctrl-C work. Call before any thread starts.
func unblockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Calls `handler` on SIGINT (once installed, Ctrl-C no longer kills the process).
func onInterrupt(_ handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    signal(SIGINT, SIG_IGN)
    let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    s.setEventHandler(handler: handler)
    s.resume()
    return s
}

/// Writes `text` to `path` whole (temp name, fsync, rename).
func writeText(_ text: String, to path: String) throws {
    do { try replaceFileAtomically(path, text: text) } catch { throw RunFailure("cannot write \(path): \(error.reason)") }
}

/// A live progress line on stderr when it is a terminal.
struct ProgressLine {
    let enabled: Bool
    init(quiet: Bool) { enabled = isatty(2) != 0 && !quiet }

    func show(_ s: ProgressSample, prefix: String) {
        guard enabled else { return }
        let rps = s.seconds > 0 ? Double(s.recordsOut) / s.seconds : 0
        let mbs = s.seconds > 0 ? Double(s.payloadBytesOut) / s.seconds / 1e6 : 0
        let line = "\r[\(prefix)\(fmt(s.seconds, 0))s] \(s.recordsOut) records  \(fmt(rps / 1e6, 3)) M rec/s  \(fmt(mbs, 1)) MB/s  queue \(s.queueDepth)/\(s.queueCapacity)   "
        FileHandle.standardError.write(Data(line.utf8))
    }

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
        do { try Emulator(seed: seed, users: users).writeFiles(count: count, to: out, style: style) } catch { throw RunFailure(error) }
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
        do { result = try runner.run { progress.show($0, prefix: "") } } catch { throw RunFailure(error.message) }
        progress.end()
        if let path = output.reportJson { try writeText(result.json.serialized(), to: path) }
        if !output.quiet { print(result.summaryTable, terminator: "") }
        if result.error != nil || !result.accountingHolds { throw ExitCode(2) }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Platform
import Synchronization

// What a person at a terminal sees beside a command's output: live progress lines on stderr (only on a
// terminal, never into pipes), warnings on lines of their own, help examples, and the command line made
// ready for the parser (negative numbers, misspelt commands).

/// A live progress line on stderr, redrawn in place; only when stderr is a terminal and not `--quiet`.
public struct ProgressLine: Sendable {
    public let enabled: Bool
    /// Warnings are written even when not a terminal (but not under `--quiet`).
    public let quiet: Bool

    /// Whether stdout is a terminal (a command that prints its data there keeps progress off it).
    public static var stdoutIsTerminal: Bool { isatty(1) != 0 }

    public init(quiet: Bool) {
        self.quiet = quiet
        enabled = isatty(2) != 0 && !quiet
    }

    /// Redraws the line: `[` + text.
    public func show(_ text: String) {
        if enabled { write("\r\u{1B}[K[" + text) }
    }

    /// A line of its own above the progress line (a warning), terminal or not, unless quiet.
    public func note(_ text: String) {
        if !quiet { write((enabled ? "\r\u{1B}[K" : "") + text + "\n") }
    }

    /// Ends the live line (a newline, so what follows starts clean).
    public func end() {
        if enabled { write("\n") }
    }

    func write(_ s: String) {
        var s = s
        s.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
    }
}

/// Calls `line` about every `interval` seconds on a thread of its own and shows what it returns on a
/// `ProgressLine`, until `stop()`: progress for work that has no samples of its own (land, clean, analyze).
public final class Ticker: Sendable {
    final class Flag: Sendable { let value = Atomic<Bool>(false) }
    let done = Flag()
    let finished = DispatchSemaphore(value: 0)
    let progress: ProgressLine
    let started: Bool

    public init(_ progress: ProgressLine, interval: Double = 1, line: @escaping @Sendable (_ elapsed: Double) -> String) {
        self.progress = progress
        started = progress.enabled
        guard progress.enabled else { return }
        let t0 = monotonicSeconds()
        let done = self.done, finished = self.finished
        _ = StageThread(name: "ticker") {
            // Nothing is shown for work done within 2 s (the command's own summary says it all).
            var next = t0 + 2
            while !done.value.load(ordering: .relaxed) {
                let now = monotonicSeconds()
                if now >= next {
                    progress.show(line(now - t0))
                    next = now + interval
                }
                sleepMs(100)
            }
            finished.signal()
        }
    }

    /// Stops the ticker and ends its line (when it drew one).
    public func stop() {
        guard started, !done.value.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
        progress.write("\r\u{1B}[K")
    }
}

/// A help text's examples block (argument-parser prints it under the overview).
public func examples(_ lines: String...) -> String { "Examples:\n" + lines.map { "  " + $0 }.joined(separator: "\n") }

/// A command line the parser cannot take as it is.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The arguments as the parser should see them: `--count -5` becomes `--count=-5` (a negative number is the
/// option's value, which the option then refuses by name), and a misspelt command is named ("did you mean")
/// instead of being taken for a missing option.
public func preparedArguments(_ raw: [String], commands: [String]) throws(UsageError) -> [String] {
    var args: [String] = []
    for a in raw {
        if let last = args.last, last.hasPrefix("--"), !last.contains("="), a.count > 1, a.first == "-",
           a.dropFirst().allSatisfy({ $0.isNumber || $0 == "." }) {
            args[args.count - 1] = last + "=" + a
        } else {
            args.append(a)
        }
    }
    if let first = args.first, !first.hasPrefix("-"), !commands.contains(first) {
        let near = commands.min { editDistance($0, first) < editDistance($1, first) }
        let hint = near.map { editDistance($0, first) <= 2 ? " (did you mean '\($0)'?)" : "" } ?? ""
        throw UsageError(message: "unknown command '\(first)'\(hint); the commands are \(commands.filter { $0 != "help" }.joined(separator: ", "))")
    }
    return args
}

extension Ticker {
    /// `label: 1.23 M records  456 k/s  4.2s` (with `45% ETA 3s` when the total is known).
    public static func counting(_ counter: ProgressCounter, _ label: String, unit: String = "records", quiet: Bool) -> Ticker {
        Ticker(ProgressLine(quiet: quiet)) { elapsed in
            let done = counter.done.load(ordering: .relaxed), total = counter.total.load(ordering: .relaxed)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            var l = "\(label)] \(formatCount(Double(done))) \(unit)  \(formatCount(rate))/s  \(formatDuration(elapsed))"
            if total > 0 {
                l += "  \(min(100, done * 100 / total))%"
                if rate > 0, done < total { l += " ETA \(formatDuration(Double(total - done) / rate))" }
            }
            return l
        }
    }
}

/// What a long command wires up once: a progress counter shown on a live line, and a stop flag that
/// SIGINT/SIGTERM raise (the work stops at its next check; `exitCode` is then 130 or 143).
public final class LongWork: Sendable {
    public let counter = ProgressCounter()
    public let stop = StopFlag()
    let term: TerminationWatch
    let ticker: Ticker
    /// Whether the progress line is drawn (stderr a terminal, not quiet): a total worth a pass over the input
    /// (lines in a file) is only counted then.
    public let showsProgress: Bool

    public init(_ label: String, quiet: Bool, unit: String = "records") {
        let stop = self.stop
        showsProgress = ProgressLine(quiet: quiet).enabled
        term = TerminationWatch { _ in stop.set() }
        ticker = Ticker.counting(counter, label, unit: unit, quiet: quiet)
    }

    /// 130 after SIGINT, 143 after SIGTERM; nil when the work ran its course.
    public var exitCode: Int32? { term.exitCode }

    /// Ends the progress line (call before printing results).
    public func endProgress() { ticker.stop() }

    /// Ends the line and gives the signals their default action back.
    public func finish() {
        ticker.stop()
        term.cancel()
    }
}

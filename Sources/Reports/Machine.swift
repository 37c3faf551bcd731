import Foundation
import Pipeline
import JSON

/// The machine a report was measured on.
public enum Machine {
    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    public static var cpuModel: String {
        for line in (read("/proc/cpuinfo") ?? "").split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        }
        return "unknown"
    }

    public static var memoryBytes: Int {
        for line in (read("/proc/meminfo") ?? "").split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    public static var kernel: String { (read("/proc/sys/kernel/osrelease") ?? "unknown").trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The git revision the binary was built from (embedded at build time by the BuildInfo plugin).
    public static var gitRevision: String { buildGitRevision }

    public static var json: JSONValue {
        .object([
            ("cpu_model", .string(cpuModel)),
            ("cores", .int(ProcessInfo.processInfo.activeProcessorCount)),
            ("memory_bytes", .int(memoryBytes)),
            ("kernel", .string(kernel)),
            ("pinbench_version", .string(pinbenchVersion)),
            ("git_revision", .string(gitRevision)),
        ])
    }
}

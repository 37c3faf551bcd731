import ArgumentParser
import Console
import Foundation
import Platform
import Synchronization
import IngestServer
import Sinks
import Codecs

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept the original clients' HTTP posts (Kafka REST Proxy v2 and API Gateway Kinesis shapes) into the embedded log, a Kafka cluster or Kinesis.",
        discussion: examples("pinbench serve --data-dir data", "pinbench serve --listen 127.0.0.1:8082 --kafka localhost:9092 --status-every 10s"))

    @Option(help: "Address to listen on (loopback unless told otherwise).") var listen: String = "127.0.0.1:8082"
    @Option(help: "Require this key (X-API-Key or Authorization: Bearer).") var apiKey: String?
    @Option(help: "Largest request body.") var maxBodyBytes: ByteSize = ByteSize(10 << 20)
    @Option(help: "Requests the writer may hold before new ones are answered 429 with Retry-After.") var queueCapacity: Int = 4096
    @Option(help: "Bytes of accepted requests the writer may hold before new ones are answered 429, e.g. 256m.") var maxQueueBytes: ByteSize = ByteSize(256 << 20)
    @Option(help: "Open connections at most; more are closed at once (counted in /metrics).") var maxConnections: Int = 10_000
    @Option(help: "HTTP event-loop threads (default: one per usable CPU, from the affinity mask and cgroup quota; the writers have their own threads).") var eventLoops: Int?
    @Option(help: "Close a connection idle this long, or one whose request is not complete within it, e.g. 30s.") var idleTimeout: Seconds = Seconds(30)
    @Option(help: "Print a status line this often, e.g. 10s (every 10s on a terminal unless given, else never; 0: never).") var statusEvery: Seconds?
    @Flag(help: "No status lines.") var quiet = false
    @Option(help: "On SIGTERM, how long accepted records get to reach the backend, e.g. 30s; the rest fail (counted).") var drainTimeout: Seconds = Seconds(30)
    @Option(help: "Serve HTTPS with this PEM certificate chain (with --tls-key).") var tlsCert: String?
    @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Also serve /metrics on HOST:PORT (plain HTTP, no API key: for a Prometheus scraper on a private address).") var metricsListen: String?
    @Option(help: "A worker label on --metrics-listen's series (worker=\"NAME\"), to tell the servers of a fleet apart.") var workerLabel: String?
    @OptionGroup var sink: SinkOptions
    @OptionGroup var backend: BackendOptions

    func validate() throws {
        guard hostPort != nil else { throw ValidationError("--listen needs host:port") }
        if let e = eventLoops, e < 1 || e > 256 { throw ValidationError("--event-loops must be in 1...256") }
        guard idleTimeout.value >= 1 else { throw ValidationError("--idle-timeout must be at least 1 second") }
        guard maxQueueBytes.bytes >= 1 else { throw ValidationError("--max-queue-bytes must be ≥ 1") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be ≥ 1") }
        guard queueCapacity >= 1 else { throw ValidationError("--queue-capacity must be ≥ 1") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("HTTPS needs both --tls-cert and --tls-key") }
        if let m = metricsListen, FleetOptions.hostPort(m) == nil { throw ValidationError("--metrics-listen needs HOST:PORT, got '\(m)'") }
        if let w = workerLabel, w.isEmpty || w.utf8.count > 128 || w.contains(where: { $0 == "\"" || $0 == "\\" || $0.isNewline }) {
            throw ValidationError("--worker-label needs 1-128 characters without quotes, backslashes or newlines")
        }
        guard maxBodyBytes.bytes >= 1, maxBodyBytes.bytes <= 1 << 30 else { throw ValidationError("--max-body-bytes must be in 1 B ... 1 GiB (32-bit offsets)") }
    }

    var hostPort: (String, Int)? { parseHostPort(listen) }

    func run() async throws {
        unblockTerminationSignals()
        guard let (host, port) = hostPort else { throw ValidationError("--listen needs host:port") }
        var c = IngestConfig()
        (c.host, c.port) = (host, port)
        // The log behind the API stores what clients sent: compression only when asked for.
        c.sink = sink.settings(defaultCompression: .none)
        c.sink.stages = backend.sinkStages.count
        c.backend = try backend.backend()
        c.apiKey = apiKey
        c.maxBodyBytes = maxBodyBytes.bytes
        c.queueCapacity = queueCapacity
        c.maxConnections = maxConnections
        c.maxQueueBytes = maxQueueBytes.bytes
        if let e = eventLoops { c.eventLoops = e }
        c.idleTimeoutSeconds = Int64(idleTimeout.value.rounded(.up))
        (c.tlsCertificate, c.tlsKey) = (tlsCert, tlsKey)
        c.drainTimeoutSeconds = drainTimeout.value
        let service = try IngestService(config: c)
        let every = quiet ? 0 : statusEvery?.value ?? (isatty(2) != 0 ? 10 : 0)
        let stop = StopFlag()
        if every > 0 {
            let t0 = monotonicSeconds()
            _ = StageThread(name: "status") {
                var last = 0
                while !stop.wait(seconds: every) {
                    let stored = service.stored
                    FileHandle.standardError.write(Data("[serve \(formatDuration(monotonicSeconds() - t0))] accepted \(service.accepted), stored \(stored), rejected \(service.rejected); \(formatCount(Double(stored - last) / every)) records/s\n".utf8))
                    last = stored
                }
            }
        }
        defer { stop.set() }
        var metrics: MetricsEndpoint?
        if let m = metricsListen, let (mh, mp) = FleetOptions.hostPort(m) {
            let labels = workerLabel.map { "worker=\"\($0)\"" } ?? ""
            do { metrics = try MetricsEndpoint(host: mh, port: mp) { service.prometheusText(labels: labels) } } catch {
                throw RunFailure("--metrics-listen \(m): cannot listen there (\(error))")
            }
        }
        defer { metrics?.stop() }
        try await service.run { p in
            FileHandle.standardOutput.write(Data("listening on \(host):\(p)\n".utf8))
        }
        print("stopped: accepted \(service.accepted), stored \(service.stored), rejected \(service.rejected)")
        let sig = service.stoppedBy.load(ordering: .relaxed)
        if sig != 0 { throw ExitCode(128 + sig) }
    }
}

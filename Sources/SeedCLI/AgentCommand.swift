import ArgumentParser
import Foundation
import Logging
import SeedAgent
import SeedOCI

/// `seed agent`: the node daemon.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the node agent: receive image archives, verify them, load them into the runtime.",
        discussion: """
        Without --token-file the agent listens on loopback only, unless --allow-unauthenticated is
        given. It runs until SIGTERM or SIGINT, lets in-flight uploads finish, and exits 0.
        """
    )

    @Option(help: "Address to listen on, HOST:PORT ([::1]:PORT for IPv6; port 0 picks a free one).")
    var listen = "127.0.0.1:7441"

    @Option(help: "The agent's store directory.")
    var store = "/var/lib/seed"

    @Option(help: "Where images go: oci-layout (the store is an OCI image layout) or containerd.")
    var runtime = "oci-layout"

    @Option(name: .customLong("containerd-address"), help: "containerd's socket.")
    var containerdAddress = "/run/containerd/containerd.sock"

    @Option(help: "containerd namespace (the kubelet's is k8s.io).")
    var namespace = "k8s.io"

    @Option(help: "The ctr executable.")
    var ctr = "ctr"

    @Option(help: "Snapshotter to unpack images into (default: containerd's).")
    var snapshotter: String?

    @Option(name: .customLong("token-file"), help: "File holding the bearer token clients must send.")
    var tokenFile: String?

    @Flag(name: .customLong("allow-unauthenticated"), help: "Listen on a non-loopback address without a token.")
    var allowUnauthenticated = false

    @Option(name: .customLong("tls-cert"), help: "TLS certificate chain (PEM).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "TLS private key (PEM).")
    var tlsKey: String?

    @Option(name: .customLong("client-ca"), help: "Require client certificates signed by this CA (PEM).")
    var clientCA: String?

    @Option(help: "The node's name (default: the host name).")
    var name: String?

    @Option(name: .customLong("label"), help: "A node label, key=value (repeatable).")
    var labels: [String] = []

    @Option(help: "The node's platform, os/arch[/variant] (default: this machine's).")
    var platform: String?

    @Option(name: .customLong("max-body-bytes"), help: "Largest upload accepted, in bytes.")
    var maxBodyBytes: Int64 = 64 << 30

    @Option(name: .customLong("max-uncompressed-bytes"), help: "Largest decompressed archive, in bytes.")
    var maxUncompressedBytes: Int64 = 256 << 30

    @Option(name: .customLong("max-entries"), help: "Most entries in an archive.")
    var maxEntries = 100_000

    @Option(name: .customLong("idle-timeout"), help: "Seconds without upload data before an upload is aborted.")
    var idleTimeout: Double = 60

    @Flag(name: .customLong("no-relay"), help: "Refuse relayed uploads (never open connections to other agents).")
    var noRelay = false

    @Option(name: .customLong("peer-ca"), help: "CA (PEM) for the https agents this one relays to (default: --client-ca, else the system's).")
    var peerCA: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    public init() {}

    public func run() async throws {
        var c = AgentConfiguration()
        let (host, port) = try Self.parseListen(listen)
        c.host = host
        c.port = port
        c.store = store
        guard let rt = AgentConfiguration.Runtime(rawValue: runtime) else {
            throw SeedError(.invalidInput, "unknown --runtime \(SeedError.quote(runtime)): want oci-layout or containerd")
        }
        c.runtime = rt
        c.containerdAddress = containerdAddress
        c.namespace = namespace
        c.ctr = try Self.resolve(ctr)
        c.snapshotter = snapshotter
        if let tokenFile { c.token = try AgentConfiguration.readToken(tokenFile) }
        c.allowUnauthenticated = allowUnauthenticated
        c.tlsCertificate = tlsCert
        c.tlsKey = tlsKey
        c.clientCA = clientCA
        if let name { c.name = name }
        for l in labels {
            let kv = l.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw SeedError(.invalidInput, "invalid --label \(SeedError.quote(l)): want key=value") }
            c.labels[kv[0]] = kv[1]
        }
        if let platform { c.platform = try Platform(platform) }
        c.maxBodyBytes = maxBodyBytes
        c.maxUncompressedBytes = maxUncompressedBytes
        c.maxEntries = maxEntries
        c.idleTimeout = idleTimeout
        c.relay = !noRelay
        c.peerCA = peerCA
        try c.validate()
        let logger = try makeLogger(label: "seed.agent", level: logLevel)
        try await Agent.run(c, version: seedVersion, logger: logger)
    }

    /// `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` (all interfaces).
    static func parseListen(_ s: String) throws -> (String, Int) {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            throw SeedError(.invalidInput, "invalid --listen \(SeedError.quote(s)): want HOST:PORT")
        }
        var host = String(s[..<colon])
        if host.isEmpty { host = "0.0.0.0" }
        if host.hasPrefix("[") != host.hasSuffix("]") { throw SeedError(.invalidInput, "invalid --listen \(SeedError.quote(s))") }
        return (host, port)
    }

    /// Finds an executable on PATH unless given as a path.
    static func resolve(_ exe: String) throws -> String {
        if exe.contains("/") { return exe }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(exe)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return exe
    }
}

/// A logger writing plain lines to stderr at `level`.
func makeLogger(label: String, level: String) throws -> Logger {
    guard let l = Logger.Level(rawValue: level) else {
        throw SeedError(.invalidInput, "invalid --log-level \(SeedError.quote(level))")
    }
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = l
    return logger
}

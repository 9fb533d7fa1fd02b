import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import SeedCoordinator
import SeedManifest
import SeedOCI
import SeedRegistry

/// Options every coordinator command shares.
struct CommonOptions: ParsableArguments {
    @Option(name: [.short, .customLong("file")], help: "The desired-image manifest.")
    var file = "seed.yaml"

    @Option(name: [.short, .customLong("output")], help: "text or json.")
    var output = "text"

    @Option(help: "The coordinator cache (default: $XDG_CACHE_HOME/seed or ~/.cache/seed).")
    var cache: String?

    @Option(help: "Images (fetch) or nodes (sync) in flight at once.")
    var concurrency = 4

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Give up on the whole run after this many seconds.")
    var timeout: Double?

    func validate() throws {
        guard ["text", "json"].contains(output) else {
            throw ValidationError("--output must be text or json")
        }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be positive") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }
}

/// `seed fetch`: only fill the coordinator cache.
public struct FetchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch every image of the manifest into the coordinator cache (nothing is sent to nodes)."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("platform"), help: "Only fetch these platforms of multi-platform images (os/arch[/variant], repeatable; default: the manifest's platforms, else all).")
    var platforms: [String] = []

    public init() {}

    public func run() async throws {
        let logger = try makeLogger(label: "seed.fetch", level: common.logLevel)
        let manifest = try SeedManifest.load(path: common.file)
        let credentials = try loadCredentials(manifest)
        var platformFilter = manifest.platforms
        if !platforms.isEmpty { platformFilter = try platforms.map(Platform.init) }
        let cache = try Cache(root: common.cache ?? Cache.defaultRoot())

        var options: [String: RegistryOptions] = [:]
        for (host, r) in manifest.registries { options[host] = RegistryOptions(insecure: r.insecure, caFile: r.caFile) }
        let start = ContinuousClock.now
        let wanted = platformFilter
        let concurrency = common.concurrency
        let timeout = common.timeout
        let outcomes = try await withHTTPClient { http in
            let client = RegistryClient(http: http, credentials: credentials, options: options, logger: logger)
            let progress = ProgressReporter(label: "fetch", logger: logger)
            let fetcher = Fetcher(cache: cache, registry: client, http: http, logger: logger, progress: progress)
            return try await withDeadline(timeout) {
                await fetcher.fetch(manifest.images, platforms: wanted, concurrency: concurrency)
            }
        }
        let elapsed = ContinuousClock.now - start
        let ok = outcomes.allSatisfy { if case .success = $0.result { true } else { false } }
        report(outcomes, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        if !ok { throw ExitCode(1) }
    }

    func report(_ outcomes: [FetchOutcome], seconds: Double) {
        let downloaded = outcomes.reduce(Int64(0)) { acc, o in if case .success(let i) = o.result { acc + i.downloaded } else { acc } }
        if common.output == "json" {
            let images: [[String: Any]] = outcomes.map { o in
                switch o.result {
                case .success(let i):
                    var d: [String: Any] = ["ref": o.entry.ref.description, "ok": true, "digest": i.root.digest.string,
                                            "mediaType": i.root.mediaType, "downloaded": i.downloaded, "bytes": i.total, "error": NSNull()]
                    if let note = i.note { d["note"] = note }
                    return d
                case .failure(let e):
                    return ["ref": o.entry.ref.description, "ok": false, "error": ["code": e.code.rawValue, "message": e.description]]
                }
            }
            let ok = outcomes.allSatisfy { if case .success = $0.result { true } else { false } }
            let doc: [String: Any] = ["ok": ok, "downloaded": downloaded, "images": images]
            let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for o in outcomes {
            switch o.result {
            case .success(let i):
                var line = "ok      \(o.entry.ref)  \(i.root.digest)  \(formatBytes(i.downloaded)) downloaded, \(formatBytes(i.total)) in cache"
                if let note = i.note { line += "  (\(note))" }
                print(line)
            case .failure(let e):
                print("failed  \(o.entry.ref)  \(e)")
            }
        }
        let failed = outcomes.filter { if case .failure = $0.result { true } else { false } }.count
        print("fetched \(outcomes.count - failed)/\(outcomes.count) images, \(formatBytes(downloaded)) downloaded in \(String(format: "%.1f", seconds)) s (\(formatBytes(Int64(Double(downloaded) / max(seconds, 0.001))))/s)")
    }
}

/// The credentials the manifest names (`auth.dockerConfig`), else the default docker config,
/// else anonymous. A named file that cannot be read or parsed is invalid input.
func loadCredentials(_ manifest: SeedManifest) throws -> any CredentialStore {
    let path = manifest.auth?.dockerConfig ?? DockerConfigFile.defaultPath()
    guard let path else { return AnonymousCredentials() }
    return try DockerConfig(json: try DockerConfigFile.read(path: path), source: path)
}

/// Runs `body`, failing with `cancelled` after `seconds` (if given).
func withDeadline<T: Sendable>(_ seconds: Double?, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let seconds else { return try await body() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw SeedError(.cancelled, "the run did not finish within --timeout \(seconds) s")
        }
        return value
    }
}

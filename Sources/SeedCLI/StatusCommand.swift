import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import SeedCoordinator
import SeedManifest
import SeedOCI
import SeedRegistry
import SeedWire

/// `seed status`: audit every node against the manifest.
public struct StatusCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Audit every node against the manifest: present, missing, stale, incomplete; unreachable nodes; extra images."
    )

    @Option(name: [.short, .customLong("file")], help: "The desired-image manifest.")
    var file = "seed.yaml"

    @Option(name: [.short, .customLong("output")], help: "text, wide or json.")
    var output = "text"

    @Option(help: "The coordinator cache, for --offline and archive sources (default: $XDG_CACHE_HOME/seed or ~/.cache/seed).")
    var cache: String?

    @Flag(help: "Take each tag's digest from the cache's last record instead of asking the registry.")
    var offline = false

    @OptionGroup var filter: NodeFilter

    @Option(help: "Nodes queried at once.")
    var concurrency = 32

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel = "warning"

    @Option(help: "Seconds to wait for each node.")
    var timeout: Double = 10

    public init() {}

    public func validate() throws {
        guard ["text", "wide", "json"].contains(output) else { throw ValidationError("--output must be text, wide or json") }
        guard concurrency > 0, timeout > 0 else { throw ValidationError("--concurrency and --timeout must be positive") }
    }

    struct Row {
        var ref: String
        var want: Digest?
        var have: Digest?
        var state: String
        var error: String?
        var size: Int64?
        var loadedAt: String?
    }

    public func run() async throws {
        let logger = try makeLogger(label: "seed.status", level: logLevel)
        let manifest = try SeedManifest.load(path: file)
        var nodes = try selectNodes(manifest, filter: filter)
        let credentials = try loadCredentials(manifest)
        let token = try manifest.agents?.tokenFile.map(Wire.readToken)
        let records = Cache.records(root: cache ?? Cache.defaultRoot())
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: RegistryClient.httpConfiguration())

        // What each reference should be: the registry's current digest, or the cache's record.
        var options: [String: RegistryOptions] = [:]
        for (host, r) in manifest.registries { options[host] = RegistryOptions(insecure: r.insecure, caFile: r.caFile) }
        let registry = RegistryClient(http: http, credentials: credentials, options: options, retry: RetryPolicy(attempts: 2), logger: logger)
        let offline = self.offline
        let wants: [Result<Digest, SeedError>] = await boundedMap(manifest.images, concurrency: 8) { e in
            if let d = e.ref.digest { return .success(d) }
            let rec = records[e.ref.description]
            if case .registry = e.source, !offline {
                do { return .success(try await registry.headDigest(e.ref)) } catch let err as SeedError where err.code == .unavailable && rec != nil {
                    // Only an unreachable registry falls back to the cache (and the log says so);
                    // a refusal or a deleted tag is reported.
                    logger.warning("registry unreachable, using cached digest", metadata: ["image": "\(e.ref)"])
                    return .success(rec!.descriptor.digest)
                } catch {
                    return .failure((error as? SeedError) ?? SeedError(.io, "\(e.ref): \(error)"))
                }
            }
            if let rec { return .success(rec.descriptor.digest) }
            return .failure(SeedError(.notFound, "\(e.ref): not in the cache yet (run seed fetch)"))
        }
        var want: [Reference: Result<Digest, SeedError>] = [:]
        for (i, e) in manifest.images.enumerated() { want[e.ref] = wants[i] }

        var clients = nodes.map { AgentClient(name: $0.name, url: $0.url, http: http, token: token, caFile: manifest.agents?.caFile) }
        let perNodeTimeout = Int64(timeout * 1000)
        var inventories: [Result<InventoryResponse, SeedError>] = await boundedMap(clients, concurrency: concurrency) { c in
            do { return .success(try await c.inventory(timeout: .milliseconds(perNodeTimeout))) } catch {
                return .failure((error as? SeedError) ?? SeedError(.io, "node \(c.name): \(error)"))
            }
        }
        do {
            try applyNodeFilter(filter, clients: &clients, inventories: &inventories, nodes: &nodes)
        } catch {
            try? await http.shutdown()
            throw error
        }

        try? await http.shutdown()

        var nodeDocs: [[String: Any]] = []
        var table: [[String]] = []
        var counts = ["present": 0, "missing": 0, "stale": 0, "incomplete": 0, "unknown": 0]
        var reachable = 0
        for (i, node) in nodes.enumerated() {
            switch inventories[i] {
            case .failure(let e):
                nodeDocs.append(["name": node.name, "url": node.url, "reachable": false, "error": e.description,
                                 "platform": NSNull(), "runtime": NSNull(), "images": [], "extra": []])
                table.append([node.name, "-", "unreachable", e.description])
            case .success(let inv):
                reachable += 1
                let labels = inv.labels.merging(node.labels) { _, m in m }
                var rows: [Row] = []
                var wantedRefs = Set<String>()
                for e in manifest.images where e.selects(labels: labels) {
                    wantedRefs.insert(e.ref.description)
                    let have = inv.images.first { $0.ref == e.ref.description }
                    var row = Row(ref: e.ref.description, want: nil, have: have?.digest, state: "missing", size: have?.size, loadedAt: have?.loadedAt)
                    switch want[e.ref] {
                    case .success(let d)?:
                        row.want = d
                        if let have {
                            row.state = have.digest == d ? (have.complete ? "present" : "incomplete") : "stale"
                        }
                    case .failure(let err)?:
                        row.state = "unknown"
                        row.error = err.description
                    case nil:
                        row.state = "unknown"
                    }
                    counts[row.state, default: 0] += 1
                    rows.append(row)
                }
                let extra = inv.images.map(\.ref).filter { !wantedRefs.contains($0) }.sorted()
                nodeDocs.append(["name": node.name, "url": node.url, "reachable": true, "error": NSNull(),
                                 "platform": inv.platform, "runtime": inv.runtime,
                                 "images": rows.map { r in
                                     ["ref": r.ref, "want": r.want?.string ?? NSNull(), "have": r.have?.string ?? NSNull(),
                                      "state": r.state, "error": r.error ?? NSNull(), "size": r.size ?? NSNull(),
                                      "loadedAt": r.loadedAt ?? NSNull()] as [String: Any]
                                 },
                                 "extra": extra])
                for r in rows {
                    var line = [node.name, r.ref, r.state]
                    if output == "wide" {
                        line += [r.want.map { String($0.string.prefix(19)) } ?? "-", r.have.map { String($0.string.prefix(19)) } ?? "-",
                                 r.size.map(formatBytes) ?? "-", r.loadedAt ?? "-"]
                    }
                    line.append(r.error ?? "")
                    table.append(line)
                }
                for x in extra {
                    var line = [node.name, x, "extra"]
                    if output == "wide" { line += ["-", "-", "-", "-"] }
                    line.append("")
                    table.append(line)
                }
            }
        }
        let inSync = reachable == nodes.count && counts["present"] == counts.values.reduce(0, +)
        if output == "json" {
            print(json(["inSync": inSync, "nodes": nodeDocs,
                        "summary": ["nodes": nodes.count, "reachable": reachable, "present": counts["present"]!, "missing": counts["missing"]!,
                                    "stale": counts["stale"]!, "incomplete": counts["incomplete"]!, "unknown": counts["unknown"]!]]))
        } else {
            let color = isatty(1) == 1
            func paint(_ s: String) -> String {
                guard color else { return s }
                switch s {
                case "present": return "\u{1B}[32m\(s)\u{1B}[0m"
                case "missing", "unreachable", "unknown": return "\u{1B}[31m\(s)\u{1B}[0m"
                case "stale", "incomplete": return "\u{1B}[33m\(s)\u{1B}[0m"
                default: return s
                }
            }
            var header = ["NODE", "IMAGE", "STATE"]
            if output == "wide" { header += ["WANT", "HAVE", "SIZE", "LOADED"] }
            header.append("")
            printTable([header] + table, paint: paint)
            print("status: \(inSync ? "in sync" : "drift"): \(reachable)/\(nodes.count) nodes reachable; \(counts["present"]!) present, \(counts["missing"]!) missing, \(counts["stale"]!) stale, \(counts["incomplete"]!) incomplete" + (counts["unknown"]! > 0 ? ", \(counts["unknown"]!) unknown" : ""))
        }
        if !inSync { throw ExitCode(1) }
    }
}

import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import SeedCoordinator
import SeedManifest
import SeedOCI
import SeedRegistry
import SeedWire

/// `--node NAME` (repeatable).
struct NodeFilter: ParsableArguments {
    @Option(name: .customLong("node"), help: "Only these nodes (repeatable).")
    var nodes: [String] = []
}

/// What `plan` and `sync` share: the cache filled, every node's plan (a failed fetch shows as
/// a failed image in the plans of the nodes that want it).
struct Planned {
    let cache: Cache
    let plans: [NodePlan]
    /// Plans the named nodes again, from fresh inventories (for relay rounds).
    let replan: @Sendable ([String]) async -> [NodePlan]
}

/// The manifest's static nodes plus the agents its `discovery` name resolves to (a discovered
/// agent whose URL is listed statically is not added twice). A discovered node is named by
/// its address until its inventory names it.
func selectNodes(_ manifest: SeedManifest, filter: NodeFilter) throws -> [NodeEntry] {
    var nodes = manifest.nodes
    if let d = manifest.discovery {
        let known = Set(nodes.map(\.url))
        for url in try AgentDiscovery.resolve(dns: d.dns, port: d.port, scheme: d.scheme) where !known.contains(url) {
            nodes.append(NodeEntry(name: url, url: url, labels: [:]))
        }
    }
    guard !nodes.isEmpty else {
        throw SeedError(.invalidInput, "\(manifest.path): no nodes: list them under nodes: or give discovery:")
    }
    // Static names are known now: an unknown --node fails before any network traffic.
    if manifest.discovery == nil {
        let names = Set(nodes.map(\.name))
        for n in filter.nodes where !names.contains(n) {
            throw SeedError(.invalidInput, "--node \(SeedError.quote(n)) is not in \(manifest.path) (nodes: \(names.sorted().joined(separator: ", ")))")
        }
    }
    return nodes
}

/// Gives discovered agents the names their inventories report, then keeps only the `--node`
/// ones (an unknown name is invalid input).
func applyNodeFilter(_ filter: NodeFilter, clients: inout [AgentClient], inventories: inout [Result<InventoryResponse, SeedError>], nodes: inout [NodeEntry]) throws {
    for i in clients.indices where nodes[i].name == nodes[i].url {
        if case .success(let inv) = inventories[i], !inv.node.isEmpty { clients[i].name = inv.node }
    }
    for i in nodes.indices { nodes[i].name = clients[i].name }
    guard !filter.nodes.isEmpty else { return }
    let keep = clients.indices.filter { filter.nodes.contains(clients[$0].name) }
    for n in filter.nodes where !keep.contains(where: { clients[$0].name == n }) {
        throw SeedError(.invalidInput, "--node \(SeedError.quote(n)): no such node (nodes: \(clients.map(\.name).sorted().joined(separator: ", ")))")
    }
    clients = keep.map { clients[$0] }
    inventories = keep.map { inventories[$0] }
    nodes = keep.map { nodes[$0] }
}

/// Loads, checks, reads inventories, fetches, and plans.
func preparePlan(common: CommonOptions, filter: NodeFilter, http: HTTPClient, logger: Logger, label: String) async throws -> Planned {
    let manifest = try SeedManifest.load(path: common.file)
    let credentials = try loadCredentials(manifest)
    var nodes = try selectNodes(manifest, filter: filter)
    let token = try manifest.agents?.tokenFile.map(Wire.readToken)
    let cache = try Cache(root: common.cache ?? Cache.defaultRoot())
    var clients = nodes.map { AgentClient(name: $0.name, url: $0.url, http: http, token: token, caFile: manifest.agents?.caFile) }
    var inventories = await Syncer.inventories(clients, concurrency: max(common.concurrency, 8))
    try applyNodeFilter(filter, clients: &clients, inventories: &inventories, nodes: &nodes)
    for (i, inv) in inventories.enumerated() {
        if case .failure(let e) = inv { logger.warning("node unreachable", metadata: ["node": "\(clients[i].name)", "error": "\(e)"]) }
    }
    // Platforms: the manifest's, else those of the nodes that answered.
    var platforms = manifest.platforms
    if platforms == nil {
        let seen = inventories.compactMap { try? $0.get() }.compactMap { try? Platform($0.platform) }
        if !seen.isEmpty { platforms = Array(Set(seen)) }
    }
    var options: [String: RegistryOptions] = [:]
    for (host, r) in manifest.registries { options[host] = RegistryOptions(insecure: r.insecure, caFile: r.caFile) }
    let registry = RegistryClient(http: http, credentials: credentials, options: options, logger: logger)
    let fetchProgress = ProgressReporter(label: "fetch", logger: logger)
    let fetcher = Fetcher(cache: cache, registry: registry, http: http, logger: logger, progress: fetchProgress)
    let outcomes = await fetcher.fetch(manifest.images, platforms: platforms, concurrency: common.concurrency)
    var fetched: [Reference: Result<Descriptor, SeedError>] = [:]
    for o in outcomes { fetched[o.entry.ref] = o.result.map(\.root) }
    let syncer = Syncer(cache: cache, logger: logger, progress: ProgressReporter(label: label, itemKey: "node", logger: logger))
    let plans = await syncer.plan(nodes: clients, labels: nodes.map(\.labels), inventories: inventories,
                                  entries: manifest.images, fetched: fetched, concurrency: max(common.concurrency, 8))
    let images = manifest.images
    let concurrency = max(common.concurrency, 8)
    let known = clients
    let labels = nodes.map(\.labels)
    let replan: @Sendable ([String]) async -> [NodePlan] = { [fetched] names in
        let picked = known.indices.filter { names.contains(known[$0].name) }
        let clients = picked.map { known[$0] }
        let inventories = await Syncer.inventories(clients, concurrency: concurrency)
        return await syncer.plan(nodes: clients, labels: picked.map { labels[$0] }, inventories: inventories,
                                 entries: images, fetched: fetched, concurrency: concurrency)
    }
    return Planned(cache: cache, plans: plans, replan: replan)
}

func json(_ value: Any) -> String {
    String(decoding: (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
}

func errorJSON(_ e: SeedError?) -> Any { e.map { $0.description } ?? NSNull() }

/// `--fanout`, `--chain-length`: how archives travel (sync), or would (plan).
struct FanoutOptions: ParsableArguments {
    @Option(help: "How archives reach the nodes: direct (the coordinator sends to each), chain (to the first node of each chain, which forwards to the next while loading), tree (every node forwards to two), or auto (chains once three or more nodes need content).")
    var fanout: String = "auto"

    @Option(name: .customLong("chain-length"), help: "Most nodes in one chain or tree (one copy leaves the coordinator per chain).")
    var chainLength = 32

    var mode: Fanout { Fanout(rawValue: fanout) ?? .auto }

    func validate() throws {
        guard Fanout(rawValue: fanout) != nil else {
            throw ValidationError("unknown --fanout \(SeedError.quote(fanout)): want \(Fanout.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...RelayPlan.maxNodes).contains(chainLength) else { throw ValidationError("--chain-length must be between 1 and \(RelayPlan.maxNodes)") }
    }
}

/// `seed plan`: the decisions of sync, nothing sent.
public struct PlanCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show, per node, which images and how many bytes a sync would move; send nothing."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var filter: NodeFilter
    @OptionGroup var relay: FanoutOptions

    public init() {}

    public func run() async throws {
        let logger = try makeLogger(label: "seed.plan", level: common.logLevel)
        let common = self.common
        let filter = self.filter
        let p = try await withHTTPClient { http in
            try await withDeadline(common.timeout) {
                try await preparePlan(common: common, filter: filter, http: http, logger: logger, label: "plan")
            }
        }
        let topology = Syncer.topology(p.plans, fanout: relay.mode, maxGroup: relay.chainLength)
        if common.output == "json" {
            let nodes: [[String: Any]] = p.plans.map { n in
                ["name": n.client.name, "url": n.client.url, "reachable": n.error == nil, "error": errorJSON(n.error),
                 "platform": n.platform?.description ?? NSNull(), "bytes": n.bytes,
                 "images": n.images.map { i in
                     ["ref": i.ref.description, "digest": i.digest?.string ?? NSNull(), "action": i.action.rawValue,
                      "bytes": i.bytes, "error": errorJSON(i.error)] as [String: Any]
                 }]
            }
            let groups: [[[String: Any]]] = topology.map { g in g.map { ["node": $0.node, "via": $0.via ?? NSNull()] } }
            print(json(["bytes": p.plans.reduce(Int64(0)) { $0 + $1.bytes }, "nodes": nodes, "fanout": Syncer.resolve(relay.mode, p.plans).rawValue, "relay": groups]))
            return
        }
        var rows: [[String]] = [["NODE", "IMAGE", "ACTION", "BYTES", "DIGEST"]]
        for n in p.plans {
            if let e = n.error {
                rows.append([n.client.name, "-", "unreachable", "-", e.description])
                continue
            }
            for i in n.images {
                rows.append([n.client.name, i.ref.description, i.action.rawValue, i.action == .present ? "0" : formatBytes(i.bytes),
                             i.error?.description ?? i.digest.map { String($0.string.prefix(19)) } ?? "-"])
            }
        }
        printTable(rows)
        let total = p.plans.reduce(Int64(0)) { $0 + $1.bytes }
        let sends = p.plans.flatMap(\.images).filter { $0.action == .send || $0.action == .replace }.count
        for g in topology where g.count > 1 {
            print("relay: " + g.map { "\($0.via ?? "coordinator") → \($0.node)" }.joined(separator: ", "))
        }
        print("plan: \(sends) image transfers, \(formatBytes(total)) to \(p.plans.filter { $0.bytes > 0 }.count) of \(p.plans.count) nodes")
    }
}

/// `seed sync`: bring every selected node to the desired state.
public struct SyncCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Fetch what is missing into the cache, then bring every selected node to the desired state."
    )

    @OptionGroup var common: CommonOptions
    @OptionGroup var filter: NodeFilter

    @OptionGroup var relay: FanoutOptions

    public init() {}

    public func run() async throws {
        let logger = try makeLogger(label: "seed.sync", level: common.logLevel)
        let fanout = relay.mode
        let chainLength = relay.chainLength
        let egress = ByteCounter()
        let start = ContinuousClock.now
        let common = self.common
        let filter = self.filter
        let results = try await withHTTPClient { http in
            try await withDeadline(common.timeout) { () -> [NodeResult] in
                let p = try await preparePlan(common: common, filter: filter, http: http, logger: logger, label: "sync")
                let syncer = Syncer(cache: p.cache, logger: logger, progress: ProgressReporter(label: "sync", itemKey: "node", logger: logger))
                let results = await syncer.push(p.plans, concurrency: common.concurrency, fanout: fanout, maxGroup: chainLength, replan: p.replan)
                egress.add(Int(syncer.egress.total))
                return results
            }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let ok = results.allSatisfy(\.ok)
        let bytes = results.reduce(Int64(0)) { $0 + $1.bytes }
        if common.output == "json" {
            let nodes: [[String: Any]] = results.map { n in
                ["name": n.name, "url": n.url, "ok": n.ok, "bytes": n.bytes, "error": errorJSON(n.error), "via": n.via ?? NSNull(),
                 "images": n.images.map { i in
                     ["ref": i.ref.description, "digest": i.digest?.string ?? NSNull(), "action": i.action, "bytes": i.bytes,
                      "error": errorJSON(i.error)] as [String: Any]
                 }]
            }
            print(json(["ok": ok, "bytes": bytes, "egressBytes": egress.total, "seconds": (seconds * 1000).rounded() / 1000, "nodes": nodes]))
        } else {
            for n in results {
                if let e = n.error {
                    print("failed   \(n.name)  \(e)")
                    continue
                }
                for i in n.images {
                    switch i.action {
                    case "sent": print("sent     \(n.name)  \(i.ref)  \(formatBytes(i.bytes))" + (n.via.map { "  (via \($0))" } ?? ""))
                    case "present": print("present  \(n.name)  \(i.ref)")
                    default: print("failed   \(n.name)  \(i.ref)  \(i.error?.description ?? "")")
                    }
                }
            }
            let sent = results.flatMap(\.images).filter { $0.action == "sent" }.count
            let failedNodes = results.filter { !$0.ok }.map(\.name)
            var summary = "sync: \(results.count - failedNodes.count)/\(results.count) nodes in sync; \(sent) image\(sent == 1 ? "" : "s") sent, \(formatBytes(bytes)) in \(String(format: "%.1f", seconds)) s"
            if bytes > 0 {
                summary += " (\(formatBytes(Int64(Double(bytes) / max(seconds, 0.001))))/s)"
                if results.contains(where: { $0.via != nil }) { summary += ", \(formatBytes(egress.total)) from this host" }
            }
            if !failedNodes.isEmpty { summary += "; failed: \(failedNodes.joined(separator: ", "))" }
            print(summary)
        }
        if !ok { throw ExitCode(1) }
    }
}

/// Runs `body` with one HTTPClient for the process, shut down on every path.
func withHTTPClient<T: Sendable>(_ body: (HTTPClient) async throws -> T) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: RegistryClient.httpConfiguration())
    do {
        let r = try await body(http)
        try? await http.shutdown()
        return r
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// Prints rows as aligned columns; `paint` may colour a cell after it is padded.
func printTable(_ rows: [[String]], paint: (String) -> String = { $0 }) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    for r in rows {
        let line = r.enumerated().map { i, c -> String in
            let padded = i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            let painted = paint(c)
            return c.isEmpty || painted == c ? padded : painted + String(padded.dropFirst(c.count))
        }.joined(separator: "  ")
        print(line.trimmingCharacters(in: .whitespaces))
    }
}

import AsyncHTTPClient
import Foundation
import Logging
import SeedArchive
import SeedManifest
import SeedOCI
import SeedWire

/// What to do with one image on one node.
public struct ImagePlan: Sendable {
    /// What happens.
    public enum Action: String, Sendable {
        /// The node has it, complete, at the wanted digest: nothing moves.
        case present
        /// The node lacks it: send.
        case send
        /// The node has the name at another digest (the tag moved): send, replacing it.
        case replace
        /// It cannot be done (fetch failed, no manifest for the node's platform, node unreachable).
        case failed
    }

    /// The reference.
    public var ref: Reference
    /// The wanted digest, if known.
    public var digest: Digest?
    /// The decision.
    public var action: Action
    /// Blob bytes that would move (JSON documents plus the layers the node lacks).
    public var bytes: Int64
    /// Why it failed.
    public var error: SeedError?
    var root: Descriptor?
    var omit: Set<Digest> = []
}

/// The plan for one node.
public struct NodePlan: Sendable {
    /// The node.
    public var client: AgentClient
    /// Its platform, from its inventory.
    public var platform: Platform?
    /// Why it could not be planned (unreachable, refused).
    public var error: SeedError?
    /// Per image.
    public var images: [ImagePlan]
    /// Bytes that would move to it.
    public var bytes: Int64 { images.reduce(0) { $0 + ($1.action == .send || $1.action == .replace ? $1.bytes : 0) } }
}

/// The result for one image on one node after a sync.
public struct ImageResult: Sendable {
    /// The reference.
    public var ref: Reference
    /// Its digest, if known.
    public var digest: Digest?
    /// `sent`, `present` or `failed`.
    public var action: String
    /// Blob bytes streamed for it.
    public var bytes: Int64
    /// Why it failed.
    public var error: SeedError?
}

/// The result for one node.
public struct NodeResult: Sendable {
    /// The node's name.
    public var name: String
    /// Its URL.
    public var url: String
    /// Whether every selected image is on it.
    public var ok: Bool { error == nil && images.allSatisfy { $0.action != "failed" } }
    /// Blob bytes streamed to it: through a relay, the whole archive its group received
    /// (every image any node of the group needed); otherwise the bytes of its own images.
    public var bytes: Int64 { streamed ?? images.reduce(0) { $0 + $1.bytes } }
    /// A node-level failure.
    public var error: SeedError?
    /// Per image.
    public var images: [ImageResult]
    /// The node that relayed the archive to it; nil if the coordinator sent it.
    public var via: String?
    /// Blob bytes of the archive it received through a relay group.
    public var streamed: Int64?

    /// Makes a result.
    public init(name: String, url: String, error: SeedError?, images: [ImageResult], via: String? = nil, streamed: Int64? = nil) {
        self.name = name
        self.url = url
        self.error = error
        self.images = images
        self.via = via
        self.streamed = streamed
    }
}

/// Plans and performs pushes: per node, one oci-archive written by libarchive straight into the
/// request body, holding only the blobs the node lacks.
public final class Syncer: Sendable {
    let cache: Cache
    let logger: Logger
    let progress: ProgressReporter
    /// Bytes this process sent to agents (archives, tar framing included).
    public let egress = ByteCounter()

    /// Makes a syncer over the (filled) cache.
    public init(cache: Cache, logger: Logger, progress: ProgressReporter) {
        self.cache = cache
        self.logger = logger
        self.progress = progress
    }

    /// Reads every node's inventory (bounded concurrency).
    public static func inventories(_ nodes: [AgentClient], concurrency: Int) async -> [Result<InventoryResponse, SeedError>] {
        await boundedMap(nodes, concurrency: concurrency) { n in
            do { return .success(try await n.inventory()) } catch {
                return .failure((error as? SeedError) ?? SeedError(.io, "node \(n.name): \(error)"))
            }
        }
    }

    /// Decides, per node and image, what must move.
    public func plan(nodes: [AgentClient], labels: [[String: String]], inventories: [Result<InventoryResponse, SeedError>],
                     entries: [ImageEntry], fetched: [Reference: Result<Descriptor, SeedError>], concurrency: Int) async -> [NodePlan] {
        let indices = Array(nodes.indices)
        return await boundedMap(indices, concurrency: concurrency) { i in
            let node = nodes[i]
            switch inventories[i] {
            case .failure(let e):
                return NodePlan(client: node, platform: nil, error: e, images: [])
            case .success(let inv):
                let nodeLabels = inv.labels.merging(labels[i]) { _, manifest in manifest }
                let platform = try? Platform(inv.platform)
                var plans: [ImagePlan] = []
                var counted = Set<Digest>()
                for e in entries where e.selects(labels: nodeLabels) {
                    plans.append(await self.planImage(e, node: node, inventory: inv, platform: platform, fetched: fetched[e.ref], counted: &counted))
                }
                return NodePlan(client: node, platform: platform, error: nil, images: plans)
            }
        }
    }

    /// `counted`: blobs already attributed to an earlier image of this node (a blob streams once).
    func planImage(_ e: ImageEntry, node: AgentClient, inventory: InventoryResponse, platform: Platform?, fetched: Result<Descriptor, SeedError>?, counted: inout Set<Digest>) async -> ImagePlan {
        guard let fetched else {
            return ImagePlan(ref: e.ref, digest: nil, action: .failed, bytes: 0, error: SeedError(.internal, "\(e.ref) was not fetched"))
        }
        let root: Descriptor
        switch fetched {
        case .failure(let err): return ImagePlan(ref: e.ref, digest: nil, action: .failed, bytes: 0, error: err)
        case .success(let d): root = d
        }
        let have = inventory.images.first { $0.ref == e.ref.description }
        if let have, have.digest == root.digest, have.complete {
            return ImagePlan(ref: e.ref, digest: root.digest, action: .present, bytes: 0, root: root)
        }
        do {
            let parts = try OCIArchiveWriter.planParts([.init(names: [e.ref], root: root)], store: cache.store, platform: platform)
            let missing = Set(try await node.missing(parts.layers.map(\.digest)))
            let omit = Set(parts.layers.map(\.digest)).subtracting(missing)
            var bytes: Int64 = 0
            for d in parts.json + parts.layers.filter({ missing.contains($0.digest) }) where counted.insert(d.digest).inserted {
                bytes += d.size
            }
            return ImagePlan(ref: e.ref, digest: root.digest, action: have == nil ? .send : .replace, bytes: bytes, root: root, omit: omit)
        } catch {
            let se = (error as? SeedError) ?? SeedError(.internal, "\(error)")
            return ImagePlan(ref: e.ref, digest: root.digest, action: .failed, bytes: 0, error: SeedError(se.code, "\(e.ref): \(se.message)"))
        }
    }

    /// Pushes every plan; a failed node never stops the others. With a relay fanout, `replan`
    /// plans the named nodes again (fresh inventories) for a later round.
    public func push(_ plans: [NodePlan], concurrency: Int, attempts: Int = 3, fanout: Fanout = .direct, maxGroup: Int = 32,
                     replan: @escaping @Sendable ([String]) async -> [NodePlan] = { _ in [] }) async -> [NodeResult] {
        let mode = Self.resolve(fanout, plans)
        if mode != .direct {
            return await pushRelayed(plans, fanout: mode, maxGroup: maxGroup, concurrency: concurrency, attempts: attempts, replan: replan)
        }
        let busy = plans.filter { $0.bytes > 0 }
        progress.start(total: busy.count, bytes: busy.reduce(0) { $0 + $1.bytes })
        defer { progress.finish() }
        return await boundedMap(plans, concurrency: concurrency) { p in await self.pushNode(p, attempts: attempts) }
    }

    func pushNode(_ p: NodePlan, attempts: Int) async -> NodeResult {
        if let e = p.error {
            return NodeResult(name: p.client.name, url: p.client.url, error: e, images: [])
        }
        var results: [ImageResult] = p.images.map { i in
            ImageResult(ref: i.ref, digest: i.digest, action: i.action == .present ? "present" : (i.action == .failed ? "failed" : "pending"), bytes: 0, error: i.error)
        }
        let toSend = p.images.filter { $0.action == .send || $0.action == .replace }
        guard !toSend.isEmpty else { return NodeResult(name: p.client.name, url: p.client.url, error: nil, images: results) }
        let item = "\(p.client.name)"
        progress.begin(item)
        let images = toSend.map { OCIArchiveWriter.Image(names: [$0.ref], root: $0.root!) }
        var omit = Set<Digest>()
        for i in toSend { omit.formUnion(i.omit) }
        var lastError: SeedError?
        for attempt in 1...max(1, attempts) {
            do {
                let archive = OCIArchiveWriter.write(images, from: cache.store, omit: omit, platform: p.platform)
                let response = try await p.client.put(archive) { [progress, egress] n in
                    progress.add(item, bytes: n)
                    egress.add(n)
                }
                let loaded = Set(response.images.map(\.ref))
                for (k, r) in results.enumerated() where r.action == "pending" {
                    if loaded.contains(r.ref.description) {
                        results[k].action = "sent"
                        results[k].bytes = toSend.first { $0.ref == r.ref }?.bytes ?? 0
                    } else {
                        results[k].action = "failed"
                        results[k].error = SeedError(.internal, "node \(p.client.name) did not report \(r.ref) as loaded")
                    }
                }
                lastError = nil
                break
            } catch {
                let se = (error as? SeedError) ?? SeedError(.io, "node \(p.client.name): \(error)")
                lastError = se
                // Layers the node said it had but no longer has (collected meanwhile): send them.
                if se.code == .missingBlobs, !se.digests.isEmpty, !omit.isDisjoint(with: se.digests), attempt < attempts {
                    omit.subtract(se.digests)
                    logger.info("node lacks layers it reported; resending them", metadata: ["node": "\(p.client.name)"])
                    continue
                }
                let temporary = se.code == .unavailable
                if temporary && attempt < attempts {
                    logger.info("retrying node", metadata: ["node": "\(p.client.name)", "attempt": "\(attempt + 1)", "error": "\(se)"])
                    try? await Task.sleep(for: .seconds(Double(attempt)))
                    continue
                }
                break
            }
        }
        if let lastError {
            for k in results.indices where results[k].action == "pending" {
                results[k].action = "failed"
                results[k].error = lastError
            }
        }
        let sent = results.filter { $0.action == "sent" }
        progress.end(item, summary: "\(sent.count) images, \(formatBytes(sent.reduce(0) { $0 + $1.bytes }))", error: lastError?.description)
        return NodeResult(name: p.client.name, url: p.client.url, error: nil, images: results)
    }
}

/// Maps `items` with at most `concurrency` in flight, keeping order.
public func boundedMap<T: Sendable, R: Sendable>(_ items: [T], concurrency: Int, _ body: @escaping @Sendable (T) async -> R) async -> [R] {
    var out = [R?](repeating: nil, count: items.count)
    await withTaskGroup(of: (Int, R).self) { group in
        var next = 0
        for _ in 0..<min(max(1, concurrency), items.count) {
            let i = next
            group.addTask { (i, await body(items[i])) }
            next += 1
        }
        while let (i, r) = await group.next() {
            out[i] = r
            if next < items.count {
                let j = next
                group.addTask { (j, await body(items[j])) }
                next += 1
            }
        }
    }
    return out.map { $0! }
}

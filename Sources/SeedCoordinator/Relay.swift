import Foundation
import Logging
import NIOConcurrencyHelpers
import SeedArchive
import SeedOCI
import SeedWire

/// How archives travel from the coordinator to the nodes.
public enum Fanout: String, Sendable, CaseIterable {
    /// Chains when at least three nodes need content, otherwise direct.
    case auto
    /// The coordinator sends to every node itself.
    case direct
    /// The coordinator sends one copy to the first node of each chain; each node forwards it
    /// to the next while loading it.
    case chain
    /// Like chain, but every node forwards to two others (a binary tree: shallower, but each
    /// relay's uplink carries two copies).
    case tree
}

/// One relay group: a tree of nodes that receive the same archive.
struct RelayGroup: Sendable {
    /// Node plans; index 0 is the head the coordinator sends to.
    var nodes: [NodePlan]
    /// For each node but the head, the index (in `nodes`) of its sender.
    var sender: [Int?]
}

/// What one node's part in a relay came to.
enum RelayNodeOutcome: Sendable {
    case loaded([LoadedImage], bytes: Int64)
    case failed(SeedError)
    /// Its sender failed before it could report; the node's state is unknown.
    case notReached(String)
}

extension Syncer {
    /// Shapes nodes that need content into relay groups: by platform and set of images (each
    /// group gets one archive, written for that platform), then chains or binary trees of at
    /// most `maxGroup` nodes, in manifest order. Nodes in `leaves` (they refused to relay) are
    /// sent to on their own.
    static func groups(_ plans: [NodePlan], fanout: Fanout, maxGroup: Int, leaves: Set<String>) -> [RelayGroup] {
        var byKey: [String: [NodePlan]] = [:]
        var order: [String] = []
        var out: [RelayGroup] = []
        for p in plans {
            if leaves.contains(p.client.name) || fanout == .direct {
                out.append(RelayGroup(nodes: [p], sender: [nil]))
                continue
            }
            // One archive per platform and set of images: every member loads all of it, and no
            // node stages (or counts against its limits) images it does not want.
            let refs = p.images.filter { $0.action == .send || $0.action == .replace }.map(\.ref.description).sorted()
            let key = (p.platform?.description ?? "") + "\n" + refs.joined(separator: "\n")
            if byKey[key] == nil { order.append(key) }
            byKey[key, default: []].append(p)
        }
        for key in order {
            let members = byKey[key]!
            var start = 0
            let size = max(1, maxGroup)
            while start < members.count {
                out.append(shape(Array(members[start..<min(start + size, members.count)]), fanout: fanout))
                start += size
            }
        }
        return out
    }

    /// A chain or binary tree over `members`, the first one at its head.
    static func shape(_ members: [NodePlan], fanout: Fanout) -> RelayGroup {
        RelayGroup(nodes: members, sender: members.indices.map { i in
            if i == 0 { return nil }
            return fanout == .tree ? (i - 1) / 2 : i - 1
        })
    }

    /// The `Seed-Relay` plan for a group: hop k is node k+1, forwarded by the head (nil) or by
    /// hop sender-1; each node loads only its own images when that is not all of the archive.
    static func relayPlan(_ g: RelayGroup) -> RelayPlan {
        let refs = g.nodes.map { p in p.images.filter { $0.action == .send || $0.action == .replace }.map(\.ref.description) }
        let all = Set(refs.joined())
        let load: (Int) -> [String]? = { i in Set(refs[i]) == all ? nil : refs[i].sorted() }
        var hops: [RelayHop] = []
        for i in g.nodes.indices.dropFirst() {
            let s = g.sender[i]!
            hops.append(RelayHop(name: g.nodes[i].client.name, url: g.nodes[i].client.url, load: load(i), via: s == 0 ? nil : s - 1))
        }
        return RelayPlan(load: load(0), hops: hops)
    }

    /// Splits groups whose plan would not fit in the header an agent accepts.
    static func fit(_ groups: [RelayGroup], fanout: Fanout) -> [RelayGroup] {
        groups.flatMap { g -> [RelayGroup] in
            let size = (try? relayPlan(g).encoded().utf8.count) ?? Int.max
            guard g.nodes.count > 1, size > RelayPlan.maxEncodedBytes else { return [g] }
            let half = g.nodes.count / 2
            return fit([shape(Array(g.nodes[..<half]), fanout: fanout), shape(Array(g.nodes[half...]), fanout: fanout)], fanout: fanout)
        }
    }

    /// Pushes through relays, in rounds: a node whose sender failed before it could report
    /// is planned again and reattached in the next round to a healthy sender (a new head the
    /// coordinator sends to, or a relay that works), never skipped. A node that failed itself
    /// is retried (up to `attempts`) only for temporary errors (unreachable, blobs it reported
    /// but lacks); other failures are final, as for direct pushes.
    func pushRelayed(_ plans: [NodePlan], fanout: Fanout, maxGroup: Int, concurrency: Int, attempts: Int,
                     replan: @Sendable ([String]) async -> [NodePlan]) async -> [NodeResult] {
        let busy = plans.filter { $0.bytes > 0 }
        progress.start(total: busy.count, bytes: busy.reduce(0) { $0 + $1.bytes })
        defer { progress.finish() }
        // Results are matched by node name: with two nodes of one name (a static entry and the
        // same agent found again by discovery), relaying could mix them up.
        if Set(plans.map(\.client.name)).count != plans.count {
            logger.warning("two nodes share a name; pushing directly")
            return await boundedMap(plans, concurrency: concurrency) { p in await self.pushNode(p, attempts: attempts) }
        }
        var final: [String: NodeResult] = [:]
        var pending = plans
        var used: [String: Int] = [:]
        var leaves = Set<String>()
        var round = 0
        while !pending.isEmpty {
            round += 1
            var work: [NodePlan] = []
            for p in pending {
                if p.error != nil || !p.images.contains(where: { $0.action == .send || $0.action == .replace }) {
                    final[p.client.name] = await pushNode(p, attempts: 1)
                } else {
                    work.append(p)
                }
            }
            guard !work.isEmpty else { break }
            // Relays get two rounds; nodes still not done after that are sent to directly, so a
            // failure every relay hits (a policy blocking agent-to-agent traffic, a wrong peer
            // CA) costs one more round, not one round per hop.
            let mode: Fanout = round > 2 ? .direct : fanout
            let groups = Self.fit(Self.groups(work, fanout: mode, maxGroup: maxGroup, leaves: leaves), fanout: mode)
            for g in groups where g.nodes.count > 1 {
                let hops = g.nodes.indices.dropFirst().map { "\(g.nodes[g.sender[$0]!].client.name) → \(g.nodes[$0].client.name)" }
                logger.info("relay", metadata: ["round": "\(round)", "head": "\(g.nodes[0].client.name)", "hops": "\(hops.joined(separator: ", "))"])
            }
            let outcomes = await boundedMap(groups, concurrency: concurrency) { g in await self.pushGroup(g) }
            var again: [String] = []
            var temporary = false
            for (g, o) in zip(groups, outcomes) {
                for (i, p) in g.nodes.enumerated() {
                    let name = p.client.name
                    let via = g.sender[i].map { g.nodes[$0].client.name }
                    switch o.nodes[i] {
                    case .loaded(let loaded, _):
                        final[name] = result(p, loaded: loaded, via: via, streamed: o.blobBytes)
                    case .failed(let e):
                        let refusedRelay = e.code == .forbidden || ((e.code == .invalidInput || e.code == .tooLarge) && e.message.contains(RelayPlan.header))
                        if refusedRelay && g.nodes.count > 1 && !leaves.contains(name) {
                            // It does not relay (or not this plan): send to it on its own next round.
                            leaves.insert(name)
                            again.append(name)
                            continue
                        }
                        if o.coordinatorFailed {
                            final[name] = result(p, error: e, via: via)
                            continue
                        }
                        used[name, default: 0] += 1
                        // A stalled relay (cancelled) may have been a neighbour's fault: retried too.
                        if (e.code == .unavailable || e.code == .missingBlobs || e.code == .cancelled) && used[name]! < attempts {
                            logger.info("retrying node", metadata: ["node": "\(name)", "attempt": "\(used[name]! + 1)", "error": "\(e)"])
                            temporary = temporary || e.code == .unavailable
                            again.append(name)
                        } else {
                            final[name] = result(p, error: e, via: via)
                        }
                    case .notReached(let why):
                        logger.info("reattaching node", metadata: ["node": "\(name)", "reason": "\(why)"])
                        again.append(name)
                    }
                }
            }
            guard !again.isEmpty else { break }
            // Every round ends at least one node or uses up one of its attempts: it terminates.
            if temporary { try? await Task.sleep(for: .seconds(1)) }
            pending = await replan(again)
        }
        return plans.map { final[$0.client.name] ?? NodeResult(name: $0.client.name, url: $0.client.url, error: SeedError(.internal, "no result"), images: []) }
    }

    struct GroupOutcome: Sendable {
        var nodes: [RelayNodeOutcome]
        var blobBytes: Int64
        /// The coordinator could not build the archive: every node failed, none is to blame.
        var coordinatorFailed = false
    }

    /// Sends one archive to a group's head, which relays it down the group.
    func pushGroup(_ g: RelayGroup) async -> GroupOutcome {
        let head = g.nodes[0]
        func all(_ e: SeedError) -> GroupOutcome {
            GroupOutcome(nodes: [.failed(e)] + Array(repeating: .notReached("the head \(head.client.name) failed: \(e)"), count: g.nodes.count - 1), blobBytes: 0)
        }
        func coordinator(_ e: SeedError) -> GroupOutcome {
            GroupOutcome(nodes: Array(repeating: .failed(e), count: g.nodes.count), blobBytes: 0, coordinatorFailed: true)
        }
        // The archive: every image any member needs; a layer is left out only if no member needs it.
        var images: [OCIArchiveWriter.Image] = []
        for p in g.nodes {
            let send = p.images.filter { $0.action == .send || $0.action == .replace }
            for i in send where !images.contains(where: { $0.names == [i.ref] }) {
                images.append(OCIArchiveWriter.Image(names: [i.ref], root: i.root!))
            }
        }
        var needed = Set<Digest>()
        let archiveParts: (json: [Descriptor], layers: [Descriptor])
        do {
            archiveParts = try OCIArchiveWriter.planParts(images, store: cache.store, platform: head.platform)
            for p in g.nodes {
                let send = p.images.filter { $0.action == .send || $0.action == .replace }
                let omit = send.reduce(into: Set<Digest>()) { $0.formUnion($1.omit) }
                let layers = try OCIArchiveWriter.planParts(send.map { .init(names: [$0.ref], root: $0.root!) }, store: cache.store, platform: p.platform).layers
                needed.formUnion(layers.map(\.digest).filter { !omit.contains($0) })
            }
        } catch {
            return coordinator((error as? SeedError) ?? SeedError(.internal, "\(error)"))
        }
        let omit = Set(archiveParts.layers.map(\.digest)).subtracting(needed)
        let blobBytes = archiveParts.json.reduce(Int64(0)) { $0 + $1.size } + archiveParts.layers.filter { needed.contains($0.digest) }.reduce(Int64(0)) { $0 + $1.size }

        let plan = Self.relayPlan(g)
        let hops = plan.hops
        let item = g.nodes.count > 1 ? "\(head.client.name) (+\(g.nodes.count - 1) relayed)" : head.client.name
        progress.begin(item)
        let archive = OCIArchiveWriter.write(images, from: cache.store, omit: omit, platform: head.platform)
        let response: RelayResponse
        do {
            response = try await head.client.relay(archive, plan: hops.isEmpty && plan.load == nil ? nil : plan) { [progress, egress] n in
                progress.add(item, bytes: n)
                egress.add(n)
            }
        } catch {
            let e = (error as? SeedError) ?? SeedError(.io, "node \(head.client.name): \(error)")
            progress.end(item, summary: "", error: e.description)
            return all(e)
        }
        var outcomes: [RelayNodeOutcome] = []
        func outcome(_ images: [LoadedImage], _ bytes: Int64, _ error: ErrorResponse.Body?, node: String) -> RelayNodeOutcome {
            guard let error else { return .loaded(images, bytes: bytes) }
            var e = SeedError(SeedError.Code(rawValue: error.code) ?? .io, "node \(node): \(error.message)")
            e.digests = error.missing ?? []
            return .failed(e)
        }
        outcomes.append(outcome(response.images, response.bytes, response.error, node: head.client.name))
        for i in g.nodes.indices.dropFirst() {
            let name = g.nodes[i].client.name
            if let o = response.relay.first(where: { $0.node == name }) {
                outcomes.append(outcome(o.images, o.bytes, o.error, node: name))
            } else {
                // Walk up to the sender that failed, to say why.
                var s = g.sender[i]
                var why = "its sender did not report it"
                while let k = s {
                    if case .failed(let e)? = k < outcomes.count ? outcomes[k] : nil {
                        why = "relay \(g.nodes[k].client.name) failed: \(e)"
                        break
                    }
                    s = g.sender[k]
                }
                outcomes.append(.notReached(why))
            }
        }
        let ok = outcomes.filter { if case .loaded = $0 { return true } else { return false } }.count
        progress.end(item, summary: "\(ok)/\(g.nodes.count) nodes, \(formatBytes(blobBytes)) sent once", error: ok == g.nodes.count ? nil : "\(g.nodes.count - ok) not done")
        return GroupOutcome(nodes: outcomes, blobBytes: blobBytes)
    }

    func result(_ p: NodePlan, loaded: [LoadedImage], via: String?, streamed: Int64) -> NodeResult {
        let names = Set(loaded.map(\.ref))
        let images: [ImageResult] = p.images.map { i in
            switch i.action {
            case .present: return ImageResult(ref: i.ref, digest: i.digest, action: "present", bytes: 0, error: nil)
            case .failed: return ImageResult(ref: i.ref, digest: i.digest, action: "failed", bytes: 0, error: i.error)
            case .send, .replace:
                if names.contains(i.ref.description) { return ImageResult(ref: i.ref, digest: i.digest, action: "sent", bytes: i.bytes, error: nil) }
                return ImageResult(ref: i.ref, digest: i.digest, action: "failed", bytes: 0, error: SeedError(.internal, "node \(p.client.name) did not report \(i.ref) as loaded"))
            }
        }
        return NodeResult(name: p.client.name, url: p.client.url, error: nil, images: images, via: via, streamed: streamed)
    }

    func result(_ p: NodePlan, error: SeedError, via: String?) -> NodeResult {
        let images: [ImageResult] = p.images.map { i in
            switch i.action {
            case .present: return ImageResult(ref: i.ref, digest: i.digest, action: "present", bytes: 0, error: nil)
            case .failed: return ImageResult(ref: i.ref, digest: i.digest, action: "failed", bytes: 0, error: i.error)
            case .send, .replace: return ImageResult(ref: i.ref, digest: i.digest, action: "failed", bytes: 0, error: error)
            }
        }
        return NodeResult(name: p.client.name, url: p.client.url, error: nil, images: images, via: via)
    }
}

/// Bytes the coordinator itself sent.
public final class ByteCounter: Sendable {
    private let value = NIOLockedValueBox<Int64>(0)
    /// Makes a counter at 0.
    public init() {}
    /// Adds `n`.
    public func add(_ n: Int) { value.withLockedValue { $0 += Int64(n) } }
    /// The total.
    public var total: Int64 { value.withLockedValue { $0 } }
}

extension Syncer {
    /// The fanout a push of `plans` uses: `auto` resolved by how many nodes need content.
    public static func resolve(_ fanout: Fanout, _ plans: [NodePlan]) -> Fanout {
        guard fanout == .auto else { return fanout }
        return plans.filter { $0.error == nil && $0.bytes > 0 }.count >= 3 ? .chain : .direct
    }

    /// The relay groups a push of `plans` would start with: per group, every node that needs
    /// content and the node it receives from (nil: the coordinator).
    public static func topology(_ plans: [NodePlan], fanout: Fanout, maxGroup: Int) -> [[(node: String, via: String?)]] {
        let needing = plans.filter { $0.error == nil && $0.bytes > 0 }
        return groups(needing, fanout: resolve(fanout, plans), maxGroup: maxGroup, leaves: []).map { g in
            g.nodes.indices.map { (g.nodes[$0].client.name, g.sender[$0].map { g.nodes[$0].client.name }) }
        }
    }
}

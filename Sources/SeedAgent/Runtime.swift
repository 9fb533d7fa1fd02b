import Foundation
import SeedArchive
import SeedOCI
import SeedStore
import SeedWire

/// Where images end up on a node: an OCI image layout, or containerd.
protocol ImageRuntime: Sendable {
    /// `oci-layout` or `containerd`.
    var name: String { get }
    /// The content store archives stream into (blobs are staged, verified, then committed there).
    func ingestStore() async throws -> any ContentStore
    /// The node's images.
    func inventory() async throws -> [InventoryImage]
    /// Those of `digests` the node cannot produce.
    func missing(_ digests: [Digest]) async throws -> [Digest]
    /// Makes complete, verified images visible under their names.
    func load(_ images: [ArchivedImage]) async throws -> [LoadedImage]
    /// Removes a name; false if the node does not have it.
    func delete(_ ref: Reference) async throws -> Bool
    /// Drops content no image needs any more; only called when no ingest is running.
    func collectGarbage() async
}

/// Serialises writers per image name: one load at a time for a name, any number for different
/// names. Locks are taken in sorted order, so two loads sharing names cannot deadlock.
actor NameLocks {
    private var held: Set<String> = []
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` holding every name in `names`.
    func withLocks<T: Sendable>(_ names: [String], _ body: @Sendable () async throws -> T) async throws -> T {
        let sorted = Array(Set(names)).sorted()
        for n in sorted {
            while held.contains(n) {
                await withCheckedContinuation { waiters.append($0) }
            }
            held.insert(n)
        }
        defer {
            for n in sorted { held.remove(n) }
            let w = waiters
            waiters.removeAll()
            for c in w { c.resume() }
        }
        return try await body()
    }
}

/// Counts ingests in flight, so content is only collected when none could be relying on it,
/// and keeps new ingests waiting while a collection runs (it could otherwise delete blobs an
/// ingest has just committed but not yet loaded).
actor ActivityGate {
    private var active = 0
    private var collecting = false
    private var collectPending = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// Waits for a running collection, then counts an ingest in.
    func enter() async {
        while collecting {
            await withCheckedContinuation { waiters.append($0) }
        }
        active += 1
    }

    /// Counts an ingest out; returns true if the caller must now collect garbage (and then
    /// call `collected()`).
    func leave(wantCollect: Bool) -> Bool {
        active -= 1
        if wantCollect { collectPending = true }
        return startIfIdle()
    }

    /// Whether garbage may be collected right now; otherwise it is deferred to the last
    /// ingest's end. On true, the caller collects and then calls `collected()`.
    func tryCollectNow() -> Bool {
        collectPending = true
        return startIfIdle()
    }

    private func startIfIdle() -> Bool {
        guard active == 0, collectPending, !collecting else { return false }
        collectPending = false
        collecting = true
        return true
    }

    /// A collection finished: waiting ingests go on.
    func collected() {
        collecting = false
        let w = waiters
        waiters.removeAll()
        for c in w { c.resume() }
    }
}

/// The platform of the machine the agent runs on.
enum NodePlatform {
    static func current() -> Platform {
        var u = utsname()
        uname(&u)
        let machine = withUnsafePointer(to: &u.machine) {
            $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) }
        }
        return Platform(os: "linux", architecture: machine).normalized
    }
}

/// RFC 3339 timestamps.
enum Timestamp {
    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date())
    }
}

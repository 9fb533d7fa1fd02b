import Foundation
import Logging
import SeedArchive
import SeedOCI
import SeedStore
import SeedWire
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Images imported into containerd through `ctr`.
///
/// The agent's store is only a staging area here: archives stream into it and are verified
/// there; the agent then builds its own oci-archive from those verified blobs (leaving out what
/// containerd's content store already has) and imports it under a temporary name, checks the
/// result with `ctr images check` (exit code 0 proves nothing: a missing layer leaves an
/// "incomplete" image), labels it pinned, and only then tags it with the real names, so the
/// kubelet never sees a half-imported image and an existing image stays until the new one is
/// complete. Once containerd holds the content, the staged copies are removed: the agent does
/// not keep a second copy of every layer.
actor ContainerdRuntime: ImageRuntime {
    nonisolated let name = "containerd"
    let store: BlobStore
    let platform: Platform
    let ctr: String
    let address: String
    let namespace: String
    let snapshotter: String?
    let logger: Logger

    /// Names under which images are imported before they are checked.
    static let importRegistry = "seed.invalid"
    /// The label that keeps the kubelet's image GC away (containerd ≥ 1.7.3 honours it).
    static let pinnedLabel = "io.cri-containerd.pinned=pinned"
    static let loadedAtLabel = "io.seed.loaded-at"

    init(store: BlobStore, platform: Platform, ctr: String, address: String, namespace: String, snapshotter: String?, logger: Logger) {
        self.store = store
        self.platform = platform
        self.ctr = ctr
        self.address = address
        self.namespace = namespace
        self.snapshotter = snapshotter
        self.logger = logger
    }

    /// Runs ctr with the agent's address and namespace; throws with ctr's stderr on failure, or
    /// when it takes longer than `timeout` seconds (default: 2 minutes; imports get 1 hour), so
    /// a hung containerd cannot hold image names locked forever.
    @discardableResult
    func run(_ args: [String], input: TarStream? = nil, timeout: Double? = nil) async throws -> String {
        let limit = timeout ?? (input == nil ? 120 : 3600)
        let what = "ctr \(args.prefix(2).joined(separator: " "))"
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { try await self.runUnbounded(args, input: input) }
            group.addTask {
                try await Task.sleep(for: .seconds(limit))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let out = first else {
                input?.cancel()
                throw SeedError(.unavailable, "\(what) did not finish within \(Int(limit)) s (is containerd responding?)")
            }
            return out
        }
    }

    func runUnbounded(_ args: [String], input: TarStream?) async throws -> String {
        let argv = ["--address=\(address)", "--namespace=\(namespace)"] + args
        let status: TerminationStatus
        let stdout: String
        let stderr: String
        do {
            if let input {
                let r = try await Subprocess.run(
                    .path(FilePath(ctr)), arguments: Arguments(argv),
                    input: .inputWriter, output: .string(limit: 8 << 20), error: .string(limit: 1 << 20)
                ) { execution in
                    let writer = execution.standardInputWriter
                    for try await chunk in input {
                        _ = try await writer.write(Array(chunk.readableBytesView))
                    }
                    try await writer.finish()
                }
                (status, stdout, stderr) = (r.terminationStatus, r.standardOutput, r.standardError)
            } else {
                let r = try await Subprocess.run(
                    .path(FilePath(ctr)), arguments: Arguments(argv),
                    output: .string(limit: 32 << 20), error: .string(limit: 1 << 20)
                )
                (status, stdout, stderr) = (r.terminationStatus, r.standardOutput, r.standardError)
            }
        } catch let e as SeedError {
            throw e
        } catch {
            throw SeedError(.internal, "ctr \(args.prefix(2).joined(separator: " ")) could not run", cause: error)
        }
        guard status.isSuccess else {
            let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw SeedError(.internal, "ctr \(args.prefix(2).joined(separator: " ")) failed (\(status)): \(err)")
        }
        return stdout
    }

    /// Digests in containerd's content store.
    func contentDigests() async throws -> Set<Digest> {
        let out = try await run(["content", "ls", "--quiet"])
        return Set(out.split(separator: "\n").compactMap { try? Digest(String($0).trimmingCharacters(in: .whitespaces)) })
    }

    nonisolated func ingestStore() async throws -> any ContentStore {
        ContainerdBackedStore(store: store, containerd: try await contentDigests(), fetch: { [ctr, address, namespace] digest, limit in
            try ContainerdBackedStore.get(ctr: ctr, address: address, namespace: namespace, digest: digest, limit: limit)
        })
    }

    struct Listed {
        var digest: Digest
        var complete: Bool
        var unpacked: Bool
    }

    /// `ctr images check`: every image with its digest and status.
    func check() async throws -> [String: Listed] {
        var snap: [String] = []
        if let snapshotter { snap = ["--snapshotter=\(snapshotter)"] }
        let out = try await run(["images", "check"] + snap)
        var result: [String: Listed] = [:]
        for line in out.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 5, let d = try? Digest(f[2]) else { continue }
            result[f[0]] = Listed(digest: d, complete: f[3] == "complete", unpacked: f.last == "true")
        }
        return result
    }

    /// `ctr images ls`: labels per image.
    func labels() async throws -> [String: [String: String]] {
        let out = try await run(["images", "ls"])
        var result: [String: [String: String]] = [:]
        for line in out.split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 2, let last = f.last else { continue }
            var labels: [String: String] = [:]
            if last != "-" {
                for pair in last.split(separator: ",") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    if kv.count == 2 { labels[kv[0]] = kv[1] }
                }
            }
            result[f[0]] = labels
        }
        return result
    }

    func inventory() async throws -> [InventoryImage] {
        let checked = try await check()
        let labels = try await labels()
        return checked.compactMap { ref, l in
            guard !ref.hasPrefix(Self.importRegistry + "/"), !ref.hasPrefix("sha256:") else { return nil }
            return InventoryImage(ref: ref, digest: l.digest, complete: l.complete, loadedAt: labels[ref]?[Self.loadedAtLabel])
        }.sorted { $0.ref < $1.ref }
    }

    func missing(_ digests: [Digest]) async throws -> [Digest] {
        let have = try await contentDigests()
        return digests.filter { !have.contains($0) && !store.contains($0) }
    }

    func load(_ images: [ArchivedImage]) async throws -> [LoadedImage] {
        var loaded: [LoadedImage] = []
        for image in images {
            let temp = try Reference("\(Self.importRegistry)/import/\(UUID().uuidString.lowercased()):\(image.root.digest.short)")
            do {
                try await importVerified(image, as: temp)
                let now = Timestamp.now()
                // Labels first, so the real names carry them from the moment they exist.
                try await run(["images", "label", "--", temp.description, Self.pinnedLabel, "\(Self.loadedAtLabel)=\(now)"])
                try await run(["images", "tag", "--force", "--", temp.description] + image.names.map(\.description))
                try await run(["images", "rm", "--", temp.description])
                let after = try await check()
                for ref in image.names {
                    guard let l = after[ref.description], l.digest == image.root.digest, l.complete else {
                        throw SeedError(.internal, "containerd does not list \(ref) at \(image.root.digest) after tagging")
                    }
                    loaded.append(LoadedImage(ref: ref.description, digest: image.root.digest))
                }
            } catch {
                _ = try? await run(["images", "rm", "--", temp.description])
                throw error
            }
        }
        return loaded
    }

    /// Imports `image` under `temp` from an archive built from verified blobs, then checks it.
    func importVerified(_ image: ArchivedImage, as temp: Reference) async throws {
        let inContainerd = try await contentDigests()
        let archive = OCIArchiveWriter.write([.init(names: [temp], root: image.root)], from: ContainerdBackedStore(store: store, containerd: inContainerd, fetch: { [ctr, address, namespace] digest, limit in
            try ContainerdBackedStore.get(ctr: ctr, address: address, namespace: namespace, digest: digest, limit: limit)
        }), omit: inContainerd.subtracting([image.root.digest]), platform: platform)
        var args = ["images", "import", "--platform=\(platform)"]
        if let snapshotter { args.append("--snapshotter=\(snapshotter)") }
        try await run(args + ["--", "-"], input: archive)
        let checked = try await check()
        guard let l = checked[temp.description] else {
            throw SeedError(.internal, "ctr import exited 0 but containerd does not list the image \(image.root.digest)")
        }
        guard l.digest == image.root.digest else {
            throw SeedError(.internal, "containerd imported \(l.digest), expected \(image.root.digest)")
        }
        guard l.complete else {
            throw SeedError(.missingBlobs, "containerd reports image \(image.root.digest) incomplete after import")
        }
        guard l.unpacked else {
            throw SeedError(.internal, "containerd did not unpack image \(image.root.digest)")
        }
    }

    func delete(_ ref: Reference) async throws -> Bool {
        let checked = try await check()
        guard checked[ref.description] != nil else { return false }
        try await run(["images", "rm", "--sync", "--", ref.description])
        return true
    }

    func collectGarbage() async {
        // Staged copies of what containerd now holds are dropped; containerd's own GC
        // handles its content store.
        guard let have = try? await contentDigests() else { return }
        for d in store.list().keys where have.contains(d) { store.remove(d) }
    }
}

/// The agent's store, plus containerd's content store for blobs an archive leaves out: a blob
/// containerd holds counts as present (containerd verified it when it took it in), and a small
/// JSON blob is read with `ctr content get` if the agent's store does not have it.
struct ContainerdBackedStore: ContentStore {
    let store: BlobStore
    let containerd: Set<Digest>
    let fetch: @Sendable (Digest, Int) throws -> [UInt8]

    func size(of digest: Digest) -> Int64? { store.size(of: digest) }
    func holds(_ d: Descriptor) -> Bool { store.size(of: d.digest) == d.size || containerd.contains(d.digest) }
    func stage() throws -> any StagedContent { try store.stage() }
    func open(_ digest: Digest) throws -> any ContentReader {
        if store.contains(digest) || !containerd.contains(digest) { return try store.open(digest) }
        let bytes = try fetch(digest, StrictJSON.defaultLimit)
        guard Digest.of(bytes) == digest else {
            throw SeedError(.digestMismatch, "containerd's content \(digest) does not hash to its name")
        }
        return MemoryReader(bytes)
    }

    /// `ctr content get DIGEST`, run synchronously on the archive thread, capped at `limit`.
    static func get(ctr: String, address: String, namespace: String, digest: Digest, limit: Int) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ctr)
        p.arguments = ["--address=\(address)", "--namespace=\(namespace)", "content", "get", "--", digest.string]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        var data = Data()
        while let chunk = try out.fileHandleForReading.read(upToCount: 65536), !chunk.isEmpty {
            data.append(chunk)
            if data.count > limit {
                p.terminate()
                p.waitUntilExit()
                throw SeedError(.tooLarge, "blob \(digest) is over the \(limit)-byte limit for JSON documents")
            }
        }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw SeedError(.notFound, "containerd has no content \(digest)") }
        return Array(data)
    }
}

/// A blob held in memory.
final class MemoryReader: ContentReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var size: Int64 { Int64(bytes.count) }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - offset)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
        offset += n
        return n
    }
    func close() {}
}

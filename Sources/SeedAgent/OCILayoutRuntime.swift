import Foundation
import SeedArchive
import SeedOCI
import SeedStore
import SeedWire

/// Images kept as an OCI image layout in the store directory: `oci-layout`, `index.json` (one
/// entry per reference, annotated with its full name), `blobs/sha256/`. `skopeo inspect
/// oci:STORE:REF` and `skopeo copy oci:STORE:REF …` work on it. `index.json` is replaced
/// atomically (write, fsync, rename), so a crash leaves the old or the new index, never a mix.
actor OCILayoutRuntime: ImageRuntime {
    nonisolated let name = "oci-layout"
    let store: BlobStore
    let platform: Platform
    let indexPath: String
    private var entries: [Descriptor]

    /// The annotation recording when seed loaded an entry.
    static let loadedAtAnnotation = "io.seed.loaded-at"

    init(store: BlobStore, platform: Platform) throws {
        self.store = store
        self.platform = platform
        indexPath = store.root + "/index.json"
        let marker = store.root + "/oci-layout"
        if !FileManager.default.fileExists(atPath: marker) {
            try Self.writeAtomically(Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: marker)
        }
        if let data = FileManager.default.contents(atPath: indexPath) {
            let index = try StrictJSON.decode(ImageIndex.self, from: Array(data), what: "\(indexPath)")
            entries = index.manifests
        } else {
            entries = []
        }
        try Self.writeAtomically(try Self.encode(entries), to: indexPath)
    }

    nonisolated func ingestStore() async throws -> any ContentStore { store }

    func inventory() async throws -> [InventoryImage] {
        entries.compactMap { e in
            guard let ref = e.annotations?[Descriptor.Annotation.refName] else { return nil }
            let (complete, size) = completeness(e)
            return InventoryImage(ref: ref, digest: e.digest, complete: complete, loadedAt: e.annotations?[Self.loadedAtAnnotation], size: size)
        }
    }

    nonisolated func missing(_ digests: [Digest]) async throws -> [Digest] {
        digests.filter { !store.contains($0) }
    }

    func load(_ images: [ArchivedImage]) async throws -> [LoadedImage] {
        var next = entries
        var loaded: [LoadedImage] = []
        let now = Timestamp.now()
        for image in images {
            for ref in image.names {
                next.removeAll { $0.annotations?[Descriptor.Annotation.refName] == ref.description }
                var d = image.root
                d.annotations = [
                    Descriptor.Annotation.refName: ref.description,
                    Descriptor.Annotation.containerdImageName: ref.description,
                    Self.loadedAtAnnotation: now,
                ]
                next.append(d)
                loaded.append(LoadedImage(ref: ref.description, digest: image.root.digest))
            }
        }
        next.sort { ($0.annotations?[Descriptor.Annotation.refName] ?? "") < ($1.annotations?[Descriptor.Annotation.refName] ?? "") }
        try Self.writeAtomically(try Self.encode(next), to: indexPath)
        entries = next
        return loaded
    }

    func delete(_ ref: Reference) async throws -> Bool {
        let before = entries.count
        let next = entries.filter { $0.annotations?[Descriptor.Annotation.refName] != ref.description }
        guard next.count != before else { return false }
        try Self.writeAtomically(try Self.encode(next), to: indexPath)
        entries = next
        return true
    }

    func collectGarbage() async {
        var keep = Set<Digest>()
        for e in entries {
            // Follow everything the store holds (all platforms); a blob unreachable from any
            // entry is garbage.
            if let blobs = try? OCIArchiveWriter.plan([.init(names: [], root: e)], store: store, platform: nil, skipMissing: true) {
                keep.formUnion(blobs.map(\.digest))
            }
        }
        store.removeAll(except: keep)
    }

    /// Whether every blob the node's platform needs is present, and their total size.
    func completeness(_ root: Descriptor) -> (Bool, Int64) {
        do {
            let blobs = try OCIArchiveWriter.plan([.init(names: [], root: root)], store: store, platform: platform)
            var size: Int64 = 0
            for b in blobs {
                guard store.size(of: b.digest) == b.size else { return (false, size) }
                size += b.size
            }
            return (true, size)
        } catch {
            return (false, 0)
        }
    }

    static func encode(_ entries: [Descriptor]) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(ImageIndex(mediaType: MediaType.ociIndex, manifests: entries)))
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SeedError(.io, "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        var ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count }
        ok = ok && fsync(fd) == 0
        let err = errno
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw SeedError(err == ENOSPC ? .noSpace : .io, "cannot write \(path): \(String(cString: strerror(err)))")
        }
    }
}

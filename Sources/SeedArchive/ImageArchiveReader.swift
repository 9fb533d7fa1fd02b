import NIOCore
import SeedOCI

/// An image found in an archive and now complete in the store.
public struct ArchivedImage: Sendable, Hashable {
    /// The names the archive declares for it (docker-archive `RepoTags`, oci-archive
    /// `io.containerd.image.name` or a `org.opencontainers.image.ref.name` that is a full
    /// reference), normalised. Empty if the archive names none.
    public var names: [Reference]
    /// The image's root: its manifest, or its index if multi-platform.
    public var root: Descriptor
    /// Every blob of the image graph that the store now holds, root first.
    public var blobs: [Descriptor]
}

/// What reading an image archive produced.
public struct ImageArchiveContents: Sendable {
    /// Which layout the archive used.
    public enum Format: String, Sendable {
        /// An OCI image layout (`oci-layout`, `index.json`, `blobs/`), as skopeo and docker ≥ 25 write it.
        case oci = "oci-archive"
        /// A docker-archive (`manifest.json`), as `docker save` and skopeo write it.
        case docker = "docker-archive"
    }

    /// The archive's format.
    public var format: Format
    /// The images, in archive order.
    public var images: [ArchivedImage]
    /// Blob bytes the archive carried (verified and committed, or already present).
    public var blobBytes: Int64
}

/// Options for reading an image archive.
public struct ImageArchiveOptions: Sendable {
    /// Limits on the tar stream and its JSON documents.
    public var limits: TarLimits
    /// If set, index entries for other platforms (and attestations) may be left out of the
    /// archive; only the matching manifests must be complete. If nil, every entry must be.
    public var platform: Platform?
    /// After a failure, how much of the rest of the input to read and discard (for an HTTP
    /// upload whose sender is still sending); nil stops reading at once.
    public var drainAfterFailure: DrainPolicy?
    /// If set, only images declared under one of these names are taken, under only these
    /// names; the archive's other images are read and verified but not committed. Each name
    /// must be declared by the archive.
    public var only: Set<Reference>?

    /// Makes options.
    public init(limits: TarLimits = TarLimits(), platform: Platform? = nil, drainAfterFailure: DrainPolicy? = nil, only: Set<Reference>? = nil) {
        self.limits = limits
        self.platform = platform
        self.drainAfterFailure = drainAfterFailure
        self.only = only
    }
}

/// Reads docker-archives and oci-archives into a content store.
///
/// Every regular entry streams into the store's staging area while it is hashed; `blobs/sha256/`
/// entries must hash to their names. Nothing is committed until the whole stream has been read
/// and every image graph (index → manifests → config and layers) is complete and consistent:
/// each blob present in the archive or already in the store, with the size its descriptor
/// declares. Then blobs are committed leaves first, so the store never holds a manifest whose
/// layers it lacks, and entries no image references are thrown away.
public enum ImageArchiveReader {
    /// Reads `input` into `store`.
    public static func read<Input: AsyncSequence & Sendable>(
        _ input: Input,
        into store: any ContentStore,
        options: ImageArchiveOptions = ImageArchiveOptions()
    ) async throws -> ImageArchiveContents where Input.Element == ByteBuffer {
        let state = IngestState(store: store, limits: options.limits)
        let handoff = Handoff(state)
        do {
            try await TarReader.read(input, limits: options.limits, drainAfterFailure: options.drainAfterFailure) { entry, data in
                try handoff.value.accept(entry, data)
            }
            return try await ArchiveThread.run("seed-archive-commit") {
                try handoff.value.finish(platform: options.platform, only: options.only)
            }
        } catch {
            handoff.value.discardAll()
            throw error
        }
    }
}

/// A staged entry: its content in the store's staging area, and its first bytes (for telling
/// compressed layers apart).
final class StagedEntry {
    let content: any StagedContent
    let digest: Digest
    let size: Int64
    let head: [UInt8]

    init(content: any StagedContent, digest: Digest, size: Int64, head: [UInt8]) {
        self.content = content
        self.digest = digest
        self.size = size
        self.head = head
    }
}

/// The state of one archive read, confined to the archive thread (and then the commit thread,
/// strictly after it).
final class IngestState {
    static let metadataNames: Set<String> = ["index.json", "manifest.json", "oci-layout", "repositories"]

    let store: any ContentStore
    let limits: TarLimits
    var staged: [String: StagedEntry] = [:]
    var byDigest: [Digest: StagedEntry] = [:]
    var metadata: [String: [UInt8]] = [:]
    var links: [String: String] = [:]
    var directories: Set<String> = []
    var duplicates: [StagedEntry] = []
    var only: Set<Reference>?

    init(store: any ContentStore, limits: TarLimits) {
        self.store = store
        self.limits = limits
    }

    func accept(_ entry: TarEntry, _ data: TarEntryData) throws {
        let name = entry.name
        let shown = SeedError.quote(name)
        func duplicate() -> SeedError {
            SeedError(.malformedArchive, "entry \(shown) appears twice with different content")
        }
        switch entry.kind {
        case .directory:
            if staged[name] != nil || metadata[name] != nil || links[name] != nil { throw duplicate() }
            directories.insert(name)
        case .symlink(let target), .hardlink(let target):
            if staged[name] != nil || metadata[name] != nil || directories.contains(name) { throw duplicate() }
            if let old = links[name], old != target { throw duplicate() }
            links[name] = target
        case .file:
            if links[name] != nil || directories.contains(name) { throw duplicate() }
            if Self.metadataNames.contains(name) {
                guard entry.size <= Int64(limits.maxJSONBytes) else {
                    throw SeedError(.tooLarge, "entry \(shown) is \(entry.size) bytes, over the \(limits.maxJSONBytes)-byte limit for JSON documents")
                }
                var acc = BoundedBytes(limit: limits.maxJSONBytes, what: "entry \(shown)")
                try data.forEachChunk { try acc.append($0) }
                if let old = metadata[name], old != acc.bytes { throw duplicate() }
                metadata[name] = acc.bytes
                return
            }
            var expected: Digest?
            if name.hasPrefix("blobs/") {
                let parts = name.split(separator: "/")
                guard parts.count == 3 else {
                    throw SeedError(.malformedArchive, "entry \(shown): not a blob path (want blobs/sha256/<hex>)")
                }
                guard parts[1] == "sha256" else {
                    throw SeedError(.malformedArchive, "entry \(shown): unsupported digest algorithm \(SeedError.quote(String(parts[1])))")
                }
                do { expected = try Digest(hex: String(parts[2])) } catch {
                    throw SeedError(.malformedArchive, "entry \(shown): not a blob path (want blobs/sha256/<64 lowercase hex>)")
                }
            }
            let content = try store.stage()
            var head: [UInt8] = []
            do {
                try data.forEachChunk { chunk in
                    if head.count < 8 { head.append(contentsOf: chunk.prefix(8 - head.count)) }
                    try content.write(chunk)
                }
                let digest = try content.finish()
                if let expected, digest != expected {
                    throw SeedError(.digestMismatch, "entry \(shown): content hashes to \(digest), not to the digest in its name")
                }
                let s = StagedEntry(content: content, digest: digest, size: content.size, head: head)
                if let old = staged[name] {
                    guard old.digest == digest else { throw duplicate() }
                    duplicates.append(s)
                    return
                }
                staged[name] = s
                if byDigest[digest] == nil { byDigest[digest] = s } else { duplicates.append(s) }
            } catch {
                content.discard()
                throw error
            }
        }
    }

    /// Follows links from `name` to a staged file.
    func resolve(_ name: String) -> StagedEntry? {
        var n = name
        for _ in 0..<16 {
            if let s = staged[n] { return s }
            guard let next = links[n] else { return nil }
            n = next
        }
        return nil
    }

    func discardAll() {
        for s in staged.values { s.content.discard() }
        for s in duplicates { s.content.discard() }
    }

    // MARK: after the last entry

    func finish(platform: Platform?, only: Set<Reference>?) throws -> ImageArchiveContents {
        self.only = only
        defer { discardAll() }
        let result: ImageArchiveContents
        if metadata["oci-layout"] != nil || (metadata["index.json"] != nil && metadata["manifest.json"] == nil) {
            result = try finishOCI(platform: platform)
        } else if metadata["manifest.json"] != nil {
            result = try finishDocker()
        } else {
            throw SeedError(.malformedArchive, "neither index.json nor manifest.json found: not an oci-archive or docker-archive")
        }
        return result
    }

    /// Where a blob comes from when the graph is checked.
    enum Source {
        case staged(StagedEntry)
        case store(Int64)
    }

    func source(_ d: Descriptor) -> Source? {
        if let s = byDigest[d.digest] { return .staged(s) }
        if store.holds(d) { return .store(d.size) }
        if let size = store.size(of: d.digest) { return .store(size) }
        return nil
    }

    func readJSON(_ d: Descriptor) throws -> [UInt8] {
        switch source(d) {
        case .staged(let s): return try s.content.readAll(limit: limits.maxJSONBytes)
        case .store: return try store.readSmall(d.digest, limit: limits.maxJSONBytes)
        case nil: throw SeedError(.missingBlobs, "blob \(d.digest) is missing")
        }
    }

    /// Walks one image graph: checks every blob's presence and size, parses manifests and
    /// configs, and returns the blobs in commit order (leaves first).
    func walk(_ root: Descriptor, platform: Platform?, missing: inout [Digest]) throws -> [Descriptor] {
        var order: [Descriptor] = []
        var seen = Set<Digest>()
        func visit(_ d: Descriptor, depth: Int, what: String) throws {
            guard depth < 8 else { throw SeedError(.malformedArchive, "\(what): indexes nested deeper than 8") }
            guard let src = source(d) else {
                if !missing.contains(d.digest) { missing.append(d.digest) }
                return
            }
            let have: Int64
            switch src {
            case .staged(let s): have = s.size
            case .store(let n): have = n
            }
            guard have == d.size else {
                throw SeedError(.sizeMismatch, "\(what) \(d.digest): \(have) bytes, but its descriptor says \(d.size)")
            }
            guard seen.insert(d.digest).inserted else { return }
            if MediaType.isIndex(d.mediaType) || MediaType.isManifest(d.mediaType) {
                let doc = try ManifestDocument.parse(try readJSON(d), descriptorType: d.mediaType, what: "\(what) \(d.digest)", limit: limits.maxJSONBytes)
                switch doc {
                case .index(let index):
                    var matched = 0
                    for child in index.manifests {
                        if let platform {
                            let isAttestation = child.annotations?[Descriptor.Annotation.dockerReferenceType] != nil
                            guard let p = child.platform, !p.isUnknown, !isAttestation, platform.matches(p) else { continue }
                        }
                        matched += 1
                        try visit(child, depth: depth + 1, what: "manifest")
                    }
                    if let platform, matched == 0 {
                        throw SeedError(.malformedArchive, "index \(d.digest) has no manifest for platform \(platform)")
                    }
                case .manifest(let m):
                    try visit(m.config, depth: depth + 1, what: "config")
                    for l in m.layers { try visit(l, depth: depth + 1, what: "layer") }
                    if m.config.mediaType == MediaType.ociConfig || m.config.mediaType == MediaType.dockerConfig,
                       source(m.config) != nil {
                        let config = try StrictJSON.decode(ImageConfig.self, from: try readJSON(m.config), what: "config \(m.config.digest)", limit: limits.maxJSONBytes)
                        guard config.rootfs.diff_ids.count == m.layers.count else {
                            throw SeedError(.malformedArchive, "manifest \(d.digest) lists \(m.layers.count) layers, but its config has \(config.rootfs.diff_ids.count) diff_ids")
                        }
                    }
                }
            }
            order.append(d)
        }
        try visit(root, depth: 0, what: MediaType.isIndex(root.mediaType) ? "index" : "manifest")
        return order
    }

    func finishOCI(platform: Platform?) throws -> ImageArchiveContents {
        if let marker = metadata["oci-layout"] {
            let m = try StrictJSON.decode(OCILayoutMarker.self, from: marker, what: "entry \"oci-layout\"", limit: limits.maxJSONBytes)
            guard m.imageLayoutVersion.hasPrefix("1.") else {
                throw SeedError(.malformedArchive, "entry \"oci-layout\": unsupported imageLayoutVersion \(SeedError.quote(m.imageLayoutVersion))")
            }
        }
        guard let indexBytes = metadata["index.json"] else {
            throw SeedError(.malformedArchive, "oci-archive without index.json")
        }
        let index = try StrictJSON.decode(ImageIndex.self, from: indexBytes, what: "entry \"index.json\"", limit: limits.maxJSONBytes)
        guard !index.manifests.isEmpty else { throw SeedError(.malformedArchive, "entry \"index.json\" lists no images") }

        // One image per distinct root; names gathered from every entry pointing at it.
        var roots: [Descriptor] = []
        var names: [Digest: [Reference]] = [:]
        for d in index.manifests {
            guard MediaType.isIndex(d.mediaType) || MediaType.isManifest(d.mediaType) else {
                throw SeedError(.malformedArchive, "entry \"index.json\": \(d.digest) has media type \(SeedError.quote(d.mediaType)), not a manifest or index")
            }
            if !roots.contains(where: { $0.digest == d.digest }) {
                var root = d
                root.annotations = nil
                roots.append(root)
            }
            if let name = try Self.name(of: d) {
                if !names[d.digest, default: []].contains(name) { names[d.digest, default: []].append(name) }
            }
        }
        return try complete(format: .oci, roots: roots, names: names, platform: platform)
    }

    /// The name an index.json entry declares, if it declares a full reference.
    static func name(of d: Descriptor) throws -> Reference? {
        let candidates = [d.annotations?[Descriptor.Annotation.containerdImageName], d.annotations?[Descriptor.Annotation.refName]]
        for case let c? in candidates {
            // A bare tag ("v1", "latest") is a layout-local name, not an image reference.
            if c.contains("/") || c.contains(":") || c.contains("@") {
                do { return try Reference(c) } catch let e as SeedError {
                    throw SeedError(.invalidReference, "entry \"index.json\": \(e.message)")
                }
            }
        }
        return nil
    }

    func finishDocker() throws -> ImageArchiveContents {
        let entries = try StrictJSON.decode([DockerArchiveEntry].self, from: metadata["manifest.json"]!, what: "entry \"manifest.json\"", limit: limits.maxJSONBytes)
        guard !entries.isEmpty else { throw SeedError(.malformedArchive, "entry \"manifest.json\" lists no images") }
        var roots: [Descriptor] = []
        var names: [Digest: [Reference]] = [:]
        for (i, e) in entries.enumerated() {
            let what = "entry \"manifest.json\" image \(i)"
            guard let config = resolve(EntryName.normalizeLoosely(e.Config)) else {
                throw SeedError(.malformedArchive, "\(what): config \(SeedError.quote(e.Config)) is not in the archive")
            }
            let cfg = try StrictJSON.decode(ImageConfig.self, from: try config.content.readAll(limit: limits.maxJSONBytes), what: "config \(SeedError.quote(e.Config))", limit: limits.maxJSONBytes)
            guard cfg.rootfs.diff_ids.count == e.Layers.count else {
                throw SeedError(.malformedArchive, "\(what): \(e.Layers.count) layers, but its config has \(cfg.rootfs.diff_ids.count) diff_ids")
            }
            var layers: [(size: Int64, digest: Digest)] = []
            for (j, name) in e.Layers.enumerated() {
                guard let layer = resolve(EntryName.normalizeLoosely(name)) else {
                    throw SeedError(.malformedArchive, "\(what): layer \(SeedError.quote(name)) is not in the archive")
                }
                let compressed = layer.head.starts(with: [0x1F, 0x8B]) || layer.head.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) || layer.head.starts(with: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])
                if !compressed && layer.digest != cfg.rootfs.diff_ids[j] {
                    throw SeedError(.digestMismatch, "\(what): layer \(SeedError.quote(name)) hashes to \(layer.digest), but the config's diff_id is \(cfg.rootfs.diff_ids[j])")
                }
                layers.append((layer.size, layer.digest))
            }
            // The manifest skopeo derives for a docker-archive, byte for byte, so that digests
            // agree with `skopeo inspect --raw docker-archive:...`.
            var json = "{\"schemaVersion\":2,\"mediaType\":\"\(MediaType.dockerManifest)\",\"config\":{\"mediaType\":\"\(MediaType.dockerConfig)\",\"size\":\(config.size),\"digest\":\"\(config.digest)\"},\"layers\":["
            json += layers.map { "{\"mediaType\":\"\(MediaType.dockerLayerGzip)\",\"size\":\($0.size),\"digest\":\"\($0.digest)\"}" }.joined(separator: ",")
            json += "]}"
            let content = try store.stage()
            let bytes = Array(json.utf8)
            try bytes.withUnsafeBytes { try content.write($0) }
            let digest = try content.finish()
            let staged = StagedEntry(content: content, digest: digest, size: Int64(bytes.count), head: [])
            if byDigest[digest] == nil { byDigest[digest] = staged } else { duplicates.append(staged) }
            let root = Descriptor(mediaType: MediaType.dockerManifest, digest: digest, size: Int64(bytes.count))
            if !roots.contains(root) { roots.append(root) }
            for tag in e.RepoTags ?? [] {
                let ref: Reference
                do { ref = try Reference(tag) } catch let err as SeedError {
                    throw SeedError(.invalidReference, "\(what): RepoTags: \(err.message)")
                }
                if !names[digest, default: []].contains(ref) { names[digest, default: []].append(ref) }
            }
        }
        return try complete(format: .docker, roots: roots, names: names, platform: nil)
    }

    /// Checks every graph, refuses ambiguous names, commits leaves first.
    func complete(format: ImageArchiveContents.Format, roots: [Descriptor], names: [Digest: [Reference]], platform: Platform?) throws -> ImageArchiveContents {
        var owner: [Reference: Digest] = [:]
        for (digest, refs) in names {
            for r in refs {
                if let other = owner[r], other != digest {
                    throw SeedError(.malformedArchive, "the name \(r) is declared for two different images (\(other) and \(digest))")
                }
                owner[r] = digest
            }
        }
        var roots = roots
        var names = names
        if let only {
            for r in only.sorted(by: { $0.description < $1.description }) where owner[r] == nil {
                throw SeedError(.invalidInput, "the archive declares no image named \(r)")
            }
            for (d, refs) in names { names[d] = refs.filter(only.contains) }
            roots = roots.filter { !(names[$0.digest] ?? []).isEmpty }
        }
        var missing: [Digest] = []
        var images: [ArchivedImage] = []
        for root in roots {
            let blobs = try walk(root, platform: platform, missing: &missing)
            images.append(ArchivedImage(names: names[root.digest] ?? [], root: root, blobs: blobs.reversed()))
        }
        guard missing.isEmpty else {
            var e = SeedError(.missingBlobs, "blobs referenced but neither in the archive nor in the store: " + missing.map(\.string).joined(separator: ", "))
            e.digests = missing
            throw e
        }
        var committed = Set<Digest>()
        var bytes: Int64 = 0
        for image in images {
            for d in image.blobs.reversed() where committed.insert(d.digest).inserted {
                bytes += d.size
                if let s = byDigest[d.digest] { try s.content.commit() }
            }
        }
        return ImageArchiveContents(format: format, images: images, blobBytes: bytes)
    }
}

extension EntryName {
    /// Normalises a name found inside manifest.json; an unsafe one simply matches nothing.
    static func normalizeLoosely(_ s: String) -> String {
        (try? normalize(Array(s.utf8))) ?? "\u{0}"
    }
}

import Foundation
import NIOCore
import SeedOCI

/// Writes oci-archives of images held in a content store.
public enum OCIArchiveWriter {
    /// An image to write and the names to declare for it.
    public struct Image: Sendable, Hashable {
        /// The names; each becomes an `index.json` entry annotated with both
        /// `org.opencontainers.image.ref.name` and `io.containerd.image.name`.
        public var names: [Reference]
        /// The image's root manifest or index.
        public var root: Descriptor

        /// Makes an image to write.
        public init(names: [Reference], root: Descriptor) {
            self.names = names
            self.root = root
        }
    }

    /// The blobs of `images` in the order the archive carries them: indexes, manifests and
    /// configs (small JSON) first, then layers; each once. With `platform`, an index keeps all
    /// its entries but only matching manifests are followed.
    ///
    /// With `skipMissing`, manifests and indexes the store lacks are listed but not followed
    /// (for finding everything reachable, e.g. before collecting garbage).
    public static func plan(_ images: [Image], store: any ContentStore, platform: Platform? = nil, maxJSONBytes: Int = StrictJSON.defaultLimit, skipMissing: Bool = false) throws -> [Descriptor] {
        let parts = try planParts(images, store: store, platform: platform, maxJSONBytes: maxJSONBytes, skipMissing: skipMissing)
        return parts.json + parts.layers
    }

    /// `plan`, split into the JSON documents (indexes, manifests, configs) and the layers.
    public static func planParts(_ images: [Image], store: any ContentStore, platform: Platform? = nil, maxJSONBytes: Int = StrictJSON.defaultLimit, skipMissing: Bool = false) throws -> (json: [Descriptor], layers: [Descriptor]) {
        var json: [Descriptor] = []
        var layers: [Descriptor] = []
        var seen = Set<Digest>()
        func visit(_ d: Descriptor, depth: Int) throws {
            guard seen.insert(d.digest).inserted else { return }
            guard depth < 8 else { throw SeedError(.malformedArchive, "indexes nested deeper than 8 under \(d.digest)") }
            if MediaType.isIndex(d.mediaType) || MediaType.isManifest(d.mediaType) {
                json.append(d)
                if skipMissing && store.size(of: d.digest) == nil { return }
                let bytes = try store.readSmall(d.digest, limit: maxJSONBytes)
                guard Digest.of(bytes) == d.digest else {
                    throw SeedError(.digestMismatch, "blob \(d.digest) in the store does not hash to its name")
                }
                switch try ManifestDocument.parse(bytes, descriptorType: d.mediaType, what: "manifest \(d.digest)", limit: maxJSONBytes) {
                case .index(let index):
                    var matched = 0
                    for child in index.manifests {
                        if let platform {
                            let isAttestation = child.annotations?[Descriptor.Annotation.dockerReferenceType] != nil
                            guard let p = child.platform, !p.isUnknown, !isAttestation, platform.matches(p) else { continue }
                        }
                        matched += 1
                        try visit(child, depth: depth + 1)
                    }
                    if let platform, matched == 0 {
                        throw SeedError(.notFound, "index \(d.digest) has no manifest for platform \(platform)")
                    }
                case .manifest(let m):
                    if seen.insert(m.config.digest).inserted { json.append(m.config) }
                    for l in m.layers where seen.insert(l.digest).inserted { layers.append(l) }
                }
            } else {
                layers.append(d)
            }
        }
        for image in images { try visit(image.root, depth: 0) }
        return (json, layers)
    }

    /// The `index.json` of an archive of `images`.
    public static func indexJSON(_ images: [Image]) throws -> [UInt8] {
        var entries: [Descriptor] = []
        for image in images {
            if image.names.isEmpty { entries.append(image.root) }
            for name in image.names {
                var d = image.root
                d.annotations = [
                    Descriptor.Annotation.refName: name.description,
                    Descriptor.Annotation.containerdImageName: name.description,
                ]
                entries.append(d)
            }
        }
        return try canonicalJSON(ImageIndex(manifests: entries))
    }

    /// Streams an oci-archive of `images` from `store`, leaving out the layers in `omit` (those the
    /// receiver already has). Indexes, manifests and configs are always written: they are small,
    /// and the receiver needs them to check the image is complete. Fails before writing anything
    /// if a blob to send is not in the store.
    public static func write(
        _ images: [Image],
        from store: any ContentStore,
        omit: Set<Digest> = [],
        platform: Platform? = nil,
        compression: ArchiveCompression = .none
    ) -> TarStream {
        TarWriter.stream(compression: compression) { tar in
            let parts = try planParts(images, store: store, platform: platform)
            let blobs = parts.json + parts.layers.filter { !omit.contains($0.digest) }
            var sources: [(Descriptor, any ContentReader)] = []
            for d in blobs {
                let r = try store.open(d.digest)
                guard r.size == d.size else {
                    throw SeedError(.sizeMismatch, "blob \(d.digest) in the store has \(r.size) bytes, its descriptor says \(d.size)")
                }
                sources.append((d, r))
                if sources.count > 256 { r.close(); sources[sources.count - 1] = (d, ClosedReader(size: r.size)) }
            }
            try tar.file("oci-layout", bytes: try canonicalJSON(OCILayoutMarker.current))
            try tar.file("index.json", bytes: try indexJSON(images))
            try tar.directory("blobs")
            try tar.directory("blobs/sha256")
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buffer.deallocate() }
            for (d, reader) in sources {
                let r = reader is ClosedReader ? try store.open(d.digest) : reader
                defer { r.close() }
                try tar.file("blobs/sha256/" + d.digest.hex, size: d.size, from: r, buffer: buffer)
            }
        }
    }

    /// A placeholder for a blob checked but not kept open (too many open files otherwise).
    final class ClosedReader: ContentReader {
        let size: Int64
        init(size: Int64) { self.size = size }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { 0 }
        func close() {}
    }
}

/// JSON with sorted keys and no escaped slashes: stable bytes for documents seed writes.
func canonicalJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Array(try e.encode(value))
}

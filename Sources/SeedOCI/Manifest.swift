/// An image manifest: OCI image manifest or Docker schema-2 manifest (same shape).
public struct ImageManifest: Hashable, Sendable, Codable {
    /// Always 2.
    public var schemaVersion: Int
    /// The manifest's own media type, when it declares one.
    public var mediaType: String?
    /// The artifact type, for artifact manifests.
    public var artifactType: String?
    /// The image config.
    public var config: Descriptor
    /// The layers, base first.
    public var layers: [Descriptor]
    /// The manifest this one refers to (referrers API).
    public var subject: Descriptor?
    /// Annotations.
    public var annotations: [String: String]?

    /// Makes a manifest.
    public init(mediaType: String, config: Descriptor, layers: [Descriptor]) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }
}

/// An image index: OCI image index or Docker manifest list.
public struct ImageIndex: Hashable, Sendable, Codable {
    /// Always 2.
    public var schemaVersion: Int
    /// The index's own media type, when it declares one.
    public var mediaType: String?
    /// The manifests (or nested indexes) it lists.
    public var manifests: [Descriptor]
    /// Annotations.
    public var annotations: [String: String]?

    /// Makes an index.
    public init(mediaType: String? = MediaType.ociIndex, manifests: [Descriptor], annotations: [String: String]? = nil) {
        self.schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
        self.annotations = annotations
    }
}

/// The parts of an image config seed needs: platform and layer diff IDs.
public struct ImageConfig: Hashable, Sendable, Codable {
    /// CPU architecture.
    public var architecture: String
    /// Operating system.
    public var os: String
    /// CPU variant.
    public var variant: String?
    /// The root filesystem: the uncompressed digests of the layers.
    public var rootfs: RootFS

    /// `rootfs` of an image config.
    public struct RootFS: Hashable, Sendable, Codable {
        /// Always `layers`.
        public var type: String
        /// The digest of each layer's uncompressed tar, base first.
        public var diff_ids: [Digest]
    }

    /// The platform the config declares.
    public var platform: Platform { Platform(os: os, architecture: architecture, variant: variant) }
}

/// A parsed manifest or index.
public enum ManifestDocument: Hashable, Sendable {
    /// A single-platform image manifest.
    case manifest(ImageManifest)
    /// A multi-platform index or manifest list.
    case index(ImageIndex)

    /// Parses `bytes` as the manifest or index `descriptorType` says (the type in a descriptor
    /// or a `Content-Type`); when that is unknown, the document's own `mediaType` or shape
    /// decides. Refuses a document whose own media type contradicts the descriptor's.
    public static func parse(_ bytes: some Collection<UInt8>, descriptorType: String?, what: String, limit: Int = StrictJSON.defaultLimit) throws -> ManifestDocument {
        let array = Array(bytes)
        let probe = try StrictJSON.decode(ManifestProbe.self, from: array, what: what, limit: limit)
        guard probe.schemaVersion == 2 else {
            throw SeedError(.malformedArchive, "\(what): unsupported schemaVersion \(probe.schemaVersion.map(String.init) ?? "(none)"), want 2")
        }
        if let own = probe.mediaType, let declared = descriptorType,
           MediaType.isIndex(declared) || MediaType.isManifest(declared), own != declared {
            throw SeedError(.malformedArchive, "\(what): declares media type \(own), but was referenced as \(declared)")
        }
        let type = descriptorType.flatMap { MediaType.isIndex($0) || MediaType.isManifest($0) ? $0 : nil } ?? probe.mediaType
        let isIndex: Bool
        if MediaType.isIndex(type) { isIndex = true }
        else if MediaType.isManifest(type) { isIndex = false }
        else if probe.manifests != nil && probe.layers == nil && probe.config == nil { isIndex = true }
        else if probe.config != nil && probe.manifests == nil { isIndex = false }
        else { throw SeedError(.malformedArchive, "\(what): neither an image manifest nor an index (media type \(type ?? "none"))") }
        if isIndex {
            return .index(try StrictJSON.decode(ImageIndex.self, from: array, what: what, limit: limit))
        }
        return .manifest(try StrictJSON.decode(ImageManifest.self, from: array, what: what, limit: limit))
    }
}

/// One entry of a docker-archive's `manifest.json`.
public struct DockerArchiveEntry: Hashable, Sendable, Codable {
    /// The archive entry holding the image config.
    public var Config: String
    /// The names the image is saved under; may be null or empty.
    public var RepoTags: [String]?
    /// The archive entries holding the layers, base first.
    public var Layers: [String]
}

/// The `oci-layout` marker file of an OCI image layout.
public struct OCILayoutMarker: Codable, Sendable {
    /// `1.0.0`.
    public var imageLayoutVersion: String

    /// The marker seed writes.
    public static let current = OCILayoutMarker(imageLayoutVersion: "1.0.0")
}

/// The fields that tell a manifest from an index.
struct ManifestProbe: Decodable {
    var schemaVersion: Int?
    var mediaType: String?
    var manifests: [IgnoredValue]?
    var layers: [IgnoredValue]?
    var config: IgnoredValue?
}

/// Decodes any JSON value and throws it away.
struct IgnoredValue: Decodable {
    init(from decoder: any Decoder) throws {}
}

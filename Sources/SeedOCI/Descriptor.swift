/// An OCI content descriptor: what a blob is, its digest and its size.
public struct Descriptor: Hashable, Sendable, Codable {
    /// The media type of the referenced content.
    public var mediaType: String
    /// The digest of the referenced content.
    public var digest: Digest
    /// The size of the referenced content in bytes.
    public var size: Int64
    /// The platform, on index entries.
    public var platform: Platform?
    /// Annotations.
    public var annotations: [String: String]?
    /// Alternate download locations (foreign layers); seed does not follow them.
    public var urls: [String]?
    /// The artifact type, on index entries of artifacts.
    public var artifactType: String?

    /// Makes a descriptor.
    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }

    enum CodingKeys: String, CodingKey {
        case mediaType, digest, size, platform, annotations, urls, artifactType
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mediaType = try c.decode(String.self, forKey: .mediaType)
        digest = try c.decode(Digest.self, forKey: .digest)
        size = try c.decode(Int64.self, forKey: .size)
        guard size >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: .size, in: c, debugDescription: "negative size")
        }
        platform = try c.decodeIfPresent(Platform.self, forKey: .platform)
        annotations = try c.decodeIfPresent([String: String].self, forKey: .annotations)
        urls = try c.decodeIfPresent([String].self, forKey: .urls)
        artifactType = try c.decodeIfPresent(String.self, forKey: .artifactType)
    }

    /// Annotation keys seed reads and writes.
    public enum Annotation {
        /// The OCI image layout's reference name.
        public static let refName = "org.opencontainers.image.ref.name"
        /// The full image name containerd's importer and exporter use.
        public static let containerdImageName = "io.containerd.image.name"
        /// BuildKit's marker on attestation manifests.
        public static let dockerReferenceType = "vnd.docker.reference.type"
    }
}

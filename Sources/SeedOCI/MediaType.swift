/// Media types of the OCI image spec and Docker's image manifest v2 schema 2.
public enum MediaType {
    /// OCI image index.
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    /// OCI image manifest.
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    /// OCI image config.
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    /// OCI layer, uncompressed.
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    /// OCI layer, gzip.
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    /// OCI layer, zstd.
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    /// Docker manifest list.
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    /// Docker image manifest, schema 2.
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    /// Docker image config.
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    /// Docker layer, gzip (also used by tools for uncompressed layers).
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    /// Docker layer, uncompressed.
    public static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"
    /// Docker foreign (non-distributable) layer.
    public static let dockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

    /// Whether `type` names an index or manifest list.
    public static func isIndex(_ type: String?) -> Bool {
        type == ociIndex || type == dockerManifestList
    }

    /// Whether `type` names a single-image manifest.
    public static func isManifest(_ type: String?) -> Bool {
        type == ociManifest || type == dockerManifest
    }

    /// The media types a registry `Accept` header lists for a manifest request.
    public static let acceptedManifests = [ociIndex, dockerManifestList, ociManifest, dockerManifest]
}

import Foundation
import SeedOCI

/// The coordinator⇄agent contract (HTTP API v1): paths, headers and JSON bodies. Both sides use
/// these types and nothing else to talk to each other.
public enum Wire {
    /// API paths.
    public enum Path {
        /// `GET`: liveness, no auth.
        public static let health = "/v1/health"
        /// `GET`: what the node holds.
        public static let inventory = "/v1/inventory"
        /// `POST`: which of these digests the node lacks.
        public static let blobsMissing = "/v1/blobs/missing"
        /// `PUT` an archive; `DELETE ?ref=`.
        public static let images = "/v1/images"
        /// `GET`: Prometheus text.
        public static let metrics = "/metrics"
    }

    /// The media type of an image archive body.
    public static let tarContentType = "application/x-tar"
}

/// `GET /v1/health`.
public struct HealthResponse: Codable, Sendable, Equatable {
    /// Always `ok` when the agent answers.
    public var status: String
    /// The agent's seed version.
    public var version: String

    /// Makes a response.
    public init(status: String = "ok", version: String) {
        self.status = status
        self.version = version
    }
}

/// One image a node holds.
public struct InventoryImage: Codable, Sendable, Hashable {
    /// The normalised reference.
    public var ref: String
    /// The digest the reference points to.
    public var digest: Digest
    /// Whether every blob the node's platform needs is present.
    public var complete: Bool
    /// When seed loaded it (RFC 3339), if known.
    public var loadedAt: String?
    /// Total bytes of the blobs the node holds for it, if known.
    public var size: Int64?

    /// Makes an entry.
    public init(ref: String, digest: Digest, complete: Bool, loadedAt: String? = nil, size: Int64? = nil) {
        self.ref = ref
        self.digest = digest
        self.complete = complete
        self.loadedAt = loadedAt
        self.size = size
    }
}

/// `GET /v1/inventory`.
public struct InventoryResponse: Codable, Sendable, Equatable {
    /// The node's name.
    public var node: String
    /// The node's platform, `os/arch[/variant]`.
    public var platform: String
    /// `oci-layout` or `containerd`.
    public var runtime: String
    /// The node's labels.
    public var labels: [String: String]
    /// The images.
    public var images: [InventoryImage]

    /// Makes a response.
    public init(node: String, platform: String, runtime: String, labels: [String: String], images: [InventoryImage]) {
        self.node = node
        self.platform = platform
        self.runtime = runtime
        self.labels = labels
        self.images = images
    }
}

/// `POST /v1/blobs/missing` request.
public struct MissingRequest: Codable, Sendable, Equatable {
    /// Digests to ask about.
    public var digests: [Digest]
    /// Makes a request.
    public init(digests: [Digest]) { self.digests = digests }
}

/// `POST /v1/blobs/missing` response.
public struct MissingResponse: Codable, Sendable, Equatable {
    /// Those of the asked digests the node cannot produce locally.
    public var missing: [Digest]
    /// Makes a response.
    public init(missing: [Digest]) { self.missing = missing }
}

/// One image a `PUT /v1/images` loaded.
public struct LoadedImage: Codable, Sendable, Hashable {
    /// The reference it is now visible under.
    public var ref: String
    /// Its digest.
    public var digest: Digest
    /// Always `loaded`.
    public var state: String

    /// Makes an entry.
    public init(ref: String, digest: Digest, state: String = "loaded") {
        self.ref = ref
        self.digest = digest
        self.state = state
    }
}

/// `PUT /v1/images` response.
public struct LoadResponse: Codable, Sendable, Equatable {
    /// The images loaded, one entry per name.
    public var images: [LoadedImage]
    /// Bytes of the request body.
    public var bytes: Int64

    /// Makes a response.
    public init(images: [LoadedImage], bytes: Int64) {
        self.images = images
        self.bytes = bytes
    }
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorResponse: Codable, Sendable, Equatable {
    /// The error.
    public struct Body: Codable, Sendable, Equatable {
        /// A stable code (SeedError.Code's raw value).
        public var code: String
        /// What went wrong.
        public var message: String
        /// For `missing_blobs`: the digests.
        public var missing: [Digest]?
    }

    /// The error.
    public var error: Body

    /// Makes a response.
    public init(code: String, message: String, missing: [Digest]? = nil) {
        error = Body(code: code, message: message, missing: missing)
    }
}

extension Wire {
    /// Reads a bearer token file (agent and coordinator alike): the first line, trimmed;
    /// empty or non-printable is an error. The token never appears in a message.
    public static func readToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SeedError(.invalidInput, "cannot read the token file \(path)")
        }
        let token = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        } ?? ""
        guard !token.isEmpty else { throw SeedError(.invalidInput, "the token file \(path) is empty") }
        guard token.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw SeedError(.invalidInput, "the token in \(path) has whitespace or non-printable characters")
        }
        return token
    }
}

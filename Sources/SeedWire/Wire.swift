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

        /// Makes an error body.
        public init(code: String, message: String, missing: [Digest]? = nil) {
            self.code = code
            self.message = message
            self.missing = missing
        }
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

// MARK: - Relay

/// One node a relay forwards to.
public struct RelayHop: Codable, Sendable, Equatable {
    /// The node's name (as the coordinator knows it; results are reported under it).
    public var name: String
    /// `http(s)://host:port` of its agent.
    public var url: String
    /// The references it must load (nil: every image the archive declares).
    public var load: [String]?
    /// The index, in the plan's `hops`, of the node that forwards to this one; nil: the
    /// receiver of the plan does.
    public var via: Int?

    /// Makes a hop.
    public init(name: String, url: String, load: [String]?, via: Int?) {
        self.name = name
        self.url = url
        self.load = load
        self.via = via
    }
}

/// The `Seed-Relay` header's content: what the receiver loads and the tree of nodes the same
/// bytes travel on to.
///
/// A `PUT /v1/images` carrying this header asks the receiving agent to pass the body on, while
/// it verifies and loads it itself, to exactly the hops whose `via` is nil, each with the plan
/// of its own subtree. An agent never forwards anywhere else. The tree is a flat list in which
/// every `via` points at an earlier hop, so it cannot loop and is never nested deeply.
public struct RelayPlan: Codable, Sendable, Equatable {
    /// The references the receiver must load (nil: every image the archive declares).
    public var load: [String]?
    /// The nodes downstream of the receiver.
    public var hops: [RelayHop]

    /// Makes a plan.
    public init(load: [String]?, hops: [RelayHop]) {
        self.load = load
        self.hops = hops
    }

    /// The header's name.
    public static let header = "Seed-Relay"
    /// Most nodes one plan may name.
    public static let maxNodes = 1024
    /// Largest decoded header accepted (the HTTP server refuses headers over 80 KiB).
    public static let maxEncodedBytes = 48 * 1024

    /// The hops the receiver forwards to, each with the plan it passes on.
    public func children() -> [(hop: RelayHop, plan: RelayPlan)] {
        hops.indices.filter { hops[$0].via == nil }.map { root in
            // The subtree of `root`: hops whose `via` chain reaches it (vias point backwards).
            var index: [Int: Int] = [:]
            var sub: [RelayHop] = []
            for i in hops.indices where i > root {
                guard let v = hops[i].via else { continue }
                let mapped: Int?? = v == root ? .some(nil) : index[v].map { .some($0) }
                guard let via = mapped else { continue }
                var h = hops[i]
                h.via = via
                index[i] = sub.count
                sub.append(h)
            }
            return (hops[root], RelayPlan(load: hops[root].load, hops: sub))
        }
    }

    /// The header value: base64url of the JSON, no padding.
    public func encoded() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Data(try e.encode(self)).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes and checks a header value: size, node count, the tree's shape, URLs (http or
    /// https, a host and a port, nothing else), names and references.
    public static func decode(_ value: String) throws -> RelayPlan {
        guard value.utf8.count <= (maxEncodedBytes * 4 + 2) / 3 else {
            throw SeedError(.tooLarge, "\(header) header over \(maxEncodedBytes) bytes")
        }
        var b64 = value.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else {
            throw SeedError(.invalidInput, "\(header) header is not base64url")
        }
        let plan: RelayPlan
        do {
            plan = try StrictJSON.decode(RelayPlan.self, from: Array(data), what: "\(header) header", limit: maxEncodedBytes)
        } catch let e as SeedError {
            throw SeedError(e.code == .tooLarge ? .tooLarge : .invalidInput, e.message)
        }
        guard plan.hops.count <= maxNodes else {
            throw SeedError(.tooLarge, "\(header) header names \(plan.hops.count) nodes; at most \(maxNodes)")
        }
        try plan.load.map(checkRefs)
        for (i, h) in plan.hops.enumerated() {
            guard !h.name.isEmpty, h.name.utf8.count <= 253,
                  // The manifest's rule for node names (SeedManifest's nodeNameProblem), so every
                  // node it accepts can be named in a plan.
                  !h.name.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0.properties.isWhitespace })
            else {
                throw SeedError(.invalidInput, "\(header) header: invalid node name \(SeedError.quote(h.name))")
            }
            if let v = h.via, !(0..<i).contains(v) {
                throw SeedError(.invalidInput, "\(header) header: hop \(i) (\(h.name)) is forwarded via \(v), which is not an earlier hop")
            }
            try checkURL(h.url)
            try h.load.map(checkRefs)
        }
        let urls = plan.hops.map { $0.url.lowercased() }
        if Set(urls).count != urls.count {
            throw SeedError(.invalidInput, "\(header) header names the same agent URL twice")
        }
        let direct = plan.hops.filter { $0.via == nil }.count
        guard direct <= maxFanout, plan.hops.indices.allSatisfy({ i in plan.hops.filter { $0.via == i }.count <= maxFanout }) else {
            throw SeedError(.invalidInput, "\(header) header: a node may forward to at most \(maxFanout) others")
        }
        return plan
    }

    /// Most nodes one node forwards to.
    public static let maxFanout = 8

    /// How many hops deep the tree below the receiver goes (0: it forwards to nobody).
    public var height: Int {
        var depth = [Int](repeating: 1, count: hops.count)
        for (i, h) in hops.enumerated() { if let v = h.via { depth[i] = depth[v] + 1 } }
        return depth.max() ?? 0
    }

    static func checkRefs(_ refs: [String]) throws {
        for r in refs {
            do { _ = try Reference(r) } catch let e as SeedError {
                throw SeedError(.invalidInput, "\(header) header: \(e.message)")
            }
        }
    }

    /// An agent URL: `http` or `https`, a host, an optional port, no credentials, path, query
    /// or fragment.
    public static func checkURL(_ url: String) throws {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = c.host, !host.isEmpty, c.user == nil, c.password == nil,
              c.path.isEmpty || c.path == "/", c.query == nil, c.fragment == nil
        else {
            throw SeedError(.invalidInput, "\(header) header: \(SeedError.quote(url)) is not an agent URL (http(s)://host:port)")
        }
    }
}

/// What happened on one node of a relay.
public struct RelayOutcome: Codable, Sendable, Equatable {
    /// The node's name, as the plan gave it.
    public var node: String
    /// The images it loaded (empty if it failed).
    public var images: [LoadedImage]
    /// Request body bytes it received.
    public var bytes: Int64
    /// Why its load failed, or why it could not be reached.
    public var error: ErrorResponse.Body?

    /// Makes an outcome.
    public init(node: String, images: [LoadedImage], bytes: Int64, error: ErrorResponse.Body?) {
        self.node = node
        self.images = images
        self.bytes = bytes
        self.error = error
    }
}

/// The answer to a `PUT /v1/images` with a `Seed-Relay` header: 200 once the body was read,
/// whether or not the receiver's own load succeeded (only refusals before the body, such as
/// 401 or a bad header, answer with an error status). `relay` holds an outcome for every
/// downstream node that answered or failed to answer its sender; a node of the plan missing
/// from it was never reached.
public struct RelayResponse: Codable, Sendable, Equatable {
    /// The images the receiver loaded.
    public var images: [LoadedImage]
    /// Request body bytes the receiver got.
    public var bytes: Int64
    /// Why the receiver's own load failed.
    public var error: ErrorResponse.Body?
    /// Downstream nodes' outcomes.
    public var relay: [RelayOutcome]

    /// Makes a response.
    public init(images: [LoadedImage], bytes: Int64, error: ErrorResponse.Body?, relay: [RelayOutcome]) {
        self.images = images
        self.bytes = bytes
        self.error = error
        self.relay = relay
    }

    enum CodingKeys: String, CodingKey { case images, bytes, error, relay }

    /// Decodes; an agent that does not relay answers a plain load response (no `error`, no
    /// `relay`): its downstream nodes were then not reached.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        images = try c.decode([LoadedImage].self, forKey: .images)
        bytes = try c.decode(Int64.self, forKey: .bytes)
        error = try c.decodeIfPresent(ErrorResponse.Body.self, forKey: .error)
        relay = try c.decodeIfPresent([RelayOutcome].self, forKey: .relay) ?? []
    }
}

import SeedOCI

/// A decoded and validated desired-image manifest (`seed.yaml`, SPEC "The desired-image
/// manifest"). Every relative path in it is already resolved against the manifest's directory.
///
/// Decoding is strict: unknown or duplicate keys, nulls, wrong kinds, anchors, aliases, tags,
/// merge keys and several documents are refused with a `SeedError(.invalidInput)` whose message
/// names the file, the line and the key path (`seed.yaml:12: images[2].ref: …`). List indices in
/// key paths count from 0.
public struct SeedManifest: Sendable, Hashable {
    /// The manifest format version; always 1 (written as the unquoted integer `version: 1`).
    public var version: Int
    /// The desired images, in file order, no normalised reference twice. May be empty
    /// (`images: []`): an empty desired state is meaningful (`status` then lists only extras).
    public var images: [ImageEntry]
    /// The platforms to seed; nil means each node's own platform, as its agent reports it.
    public var platforms: [Platform]?
    /// Where registry credentials come from; nil means the default docker config lookup.
    public var auth: AuthConfig?
    /// Per-registry transport settings, keyed by `host[:port]` as written (Docker Hub's aliases
    /// `index.docker.io` and `registry-1.docker.io` are stored as `docker.io`, like references).
    public var registries: [String: RegistryConfig]
    /// Statically listed agents, in file order; names and URLs are unique.
    public var nodes: [NodeEntry]
    /// Agent discovery through DNS, if configured.
    public var discovery: Discovery?
    /// How to authenticate to and trust the agents.
    public var agents: AgentsConfig?
    /// The manifest file's absolute, normalised path.
    public var path: String
    /// The manifest file's directory (absolute); relative paths in the manifest resolve against it.
    public var baseDirectory: String

    /// The largest manifest accepted, in bytes.
    public static let maxSize = 4 << 20

    /// The deepest nesting of YAML collections accepted; a manifest needs about five levels.
    public static let maxNesting = 64

    /// Makes a manifest from parts that are already valid; `path` should be absolute.
    public init(
        version: Int = 1, images: [ImageEntry], platforms: [Platform]? = nil, auth: AuthConfig? = nil,
        registries: [String: RegistryConfig] = [:], nodes: [NodeEntry] = [], discovery: Discovery? = nil,
        agents: AgentsConfig? = nil, path: String, baseDirectory: String
    ) {
        self.version = version
        self.images = images
        self.platforms = platforms
        self.auth = auth
        self.registries = registries
        self.nodes = nodes
        self.discovery = discovery
        self.agents = agents
        self.path = path
        self.baseDirectory = baseDirectory
    }

    /// Reads and parses the manifest at `path`. A missing or unreadable file, a file over
    /// `maxSize` (refused before it is read whole) or one that is not UTF-8 is `invalidInput`.
    public static func load(path: String) throws -> SeedManifest {
        let text = try ManifestFile.read(path)
        return try parse(text, path: path)
    }

    /// Parses manifest text; `path` names the file in messages and anchors relative paths
    /// (a relative `path` is taken against the current directory).
    public static func parse(_ yaml: String, path: String) throws -> SeedManifest {
        try ManifestDecoder(yaml: yaml, path: path).decode()
    }

    /// The registry settings for `host` (a `Reference.registry`), if any.
    public func registry(_ host: String) -> RegistryConfig? {
        registries[host]
    }
}

/// One desired image.
public struct ImageEntry: Sendable, Hashable {
    /// The normalised reference the image is known by on the nodes.
    public var ref: Reference
    /// Where the image comes from.
    public var source: ImageSource
    /// The expected SHA-256 of the downloaded or local tarball (file and http sources only).
    public var sha256: Digest?
    /// Label selector: only nodes carrying all these labels get the image; empty means all nodes.
    public var nodes: [String: String]
    /// The 1-based line of the entry in the manifest, for messages.
    public var line: Int

    /// Makes an entry; `line` is 0 for an entry that was not read from a file.
    public init(ref: Reference, source: ImageSource = .registry, sha256: Digest? = nil, nodes: [String: String] = [:], line: Int = 0) {
        self.ref = ref
        self.source = source
        self.sha256 = sha256
        self.nodes = nodes
        self.line = line
    }

    /// Whether a node with `labels` is selected: it carries every selector label with its value.
    public func selects(labels: [String: String]) -> Bool {
        nodes.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// Where an image's content comes from.
public enum ImageSource: Sendable, Hashable, CustomStringConvertible {
    /// Pulled from the registry named by the reference (the default).
    case registry
    /// A docker-archive or oci-archive tarball on the coordinator's disk (absolute path).
    case file(path: String)
    /// A tarball downloaded over `http://` or `https://`.
    case http(url: String)

    /// `registry`, `file:/abs/path` or the URL.
    public var description: String {
        switch self {
        case .registry: "registry"
        case .file(let path): "file:" + path
        case .http(let url): url
        }
    }
}

/// Registry credentials settings.
public struct AuthConfig: Sendable, Hashable {
    /// A docker `config.json` or a `kubernetes.io/dockerconfigjson` Secret (absolute path).
    public var dockerConfig: String?

    /// Makes one.
    public init(dockerConfig: String? = nil) {
        self.dockerConfig = dockerConfig
    }
}

/// Transport settings for one registry.
public struct RegistryConfig: Sendable, Hashable {
    /// Speak plain HTTP to this registry.
    public var insecure: Bool
    /// A PEM bundle of CAs to trust for this registry's HTTPS (absolute path).
    public var caFile: String?

    /// Makes one.
    public init(insecure: Bool = false, caFile: String? = nil) {
        self.insecure = insecure
        self.caFile = caFile
    }
}

/// A statically listed agent.
public struct NodeEntry: Sendable, Hashable {
    /// The node's name, unique in the manifest.
    public var name: String
    /// The agent's base URL, `http(s)://host[:port]`, without a trailing slash.
    public var url: String
    /// The node's labels, matched by image selectors.
    public var labels: [String: String]

    /// Makes one.
    public init(name: String, url: String, labels: [String: String] = [:]) {
        self.name = name
        self.url = url
        self.labels = labels
    }
}

/// Agent discovery: every address `dns` resolves to is an agent.
public struct Discovery: Sendable, Hashable {
    /// The agent port when none is written.
    public static let defaultPort = 7441

    /// The DNS name to resolve (e.g. a headless Service).
    public var dns: String
    /// The agents' port (1-65535, default 7441).
    public var port: Int
    /// `http` (the default) or `https`.
    public var scheme: String

    /// Makes one.
    public init(dns: String, port: Int = Discovery.defaultPort, scheme: String = "http") {
        self.dns = dns
        self.port = port
        self.scheme = scheme
    }
}

/// How the coordinator authenticates to and trusts the agents.
public struct AgentsConfig: Sendable, Hashable {
    /// A file holding the bearer token the agents require (absolute path).
    public var tokenFile: String?
    /// A PEM bundle of CAs for `https` agents (absolute path).
    public var caFile: String?

    /// Makes one.
    public init(tokenFile: String? = nil, caFile: String? = nil) {
        self.tokenFile = tokenFile
        self.caFile = caFile
    }
}

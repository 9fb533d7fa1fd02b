/// An image platform: os, architecture and optional variant, as in an OCI index entry or a config.
public struct Platform: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Operating system, e.g. `linux`.
    public var os: String
    /// CPU architecture in GOARCH terms, e.g. `amd64`, `arm64`.
    public var architecture: String
    /// CPU variant, e.g. `v7` for `arm`.
    public var variant: String?
    /// OS version (Windows images).
    public var osVersion: String?
    /// Required OS features.
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    /// Makes a platform.
    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = (variant?.isEmpty ?? true) ? nil : variant
    }

    /// Parses `os/arch[/variant]`, as `--platform` and `platforms:` take it.
    public init(_ string: String) throws {
        let parts = string.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") } }) else {
            throw SeedError(.invalidInput, "invalid platform \(SeedError.quote(string)): want os/architecture[/variant], e.g. linux/amd64")
        }
        self.init(os: parts[0].lowercased(), architecture: parts[1].lowercased(), variant: parts.count == 3 ? parts[2].lowercased() : nil)
    }

    public var description: String {
        var s = os + "/" + architecture
        if let variant { s += "/" + variant }
        return s
    }

    /// The platform with containerd's normalisation applied: architecture aliases folded
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`), and default variants made explicit only where
    /// they matter (`arm` → `v7`; `arm64/v8` and `amd64/v1` → no variant).
    public var normalized: Platform {
        var p = Platform(os: os.lowercased(), architecture: architecture.lowercased(), variant: variant?.lowercased())
        switch p.architecture {
        case "x86_64", "x86-64": p.architecture = "amd64"
        case "aarch64": p.architecture = "arm64"
        case "armhf": p.architecture = "arm"; p.variant = p.variant ?? "v7"
        case "armel": p.architecture = "arm"; p.variant = p.variant ?? "v6"
        case "i386", "i686": p.architecture = "386"
        default: break
        }
        switch (p.architecture, p.variant) {
        case ("arm64", "v8"), ("amd64", "v1"): p.variant = nil
        case ("arm", nil): p.variant = "v7"
        default: break
        }
        return p
    }

    /// Whether an image built for `candidate` runs on this platform: same OS and architecture,
    /// and the same variant once both are normalised (a candidate without a variant matches).
    public func matches(_ candidate: Platform) -> Bool {
        let a = normalized, b = candidate.normalized
        guard a.os == b.os, a.architecture == b.architecture else { return false }
        guard let bv = b.variant else { return true }
        return a.variant == bv
    }

    /// The `unknown/unknown` platform BuildKit gives attestation manifests.
    public var isUnknown: Bool { os == "unknown" && architecture == "unknown" }
}

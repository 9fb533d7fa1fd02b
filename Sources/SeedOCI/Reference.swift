/// An image reference, parsed by the Docker reference grammar
/// (https://github.com/distribution/reference/blob/main/reference.go) and normalised the way
/// Docker and containerd do: `nginx` is `docker.io/library/nginx:latest`.
public struct Reference: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The registry host, with its port if any (`docker.io`, `127.0.0.1:5000`).
    public let registry: String
    /// The repository path inside the registry (`library/nginx`).
    public let repository: String
    /// The tag, if the reference has one. A reference with neither tag nor digest gets `latest`.
    public let tag: String?
    /// The digest the reference is pinned to, if any.
    public let digest: Digest?

    /// The canonical name of Docker Hub.
    public static let dockerHub = "docker.io"

    /// Parses and normalises a reference; throws `invalidReference` saying what is wrong.
    public init(_ string: String) throws {
        func fail(_ why: String) -> SeedError {
            SeedError(.invalidReference, "invalid image reference \(SeedError.quote(string)): \(why)")
        }
        guard !string.isEmpty else { throw fail("empty") }
        guard string.utf8.count <= 4096 else { throw fail("too long") }
        for b in string.utf8 where b <= 0x20 || b >= 0x7F {
            throw fail(b == 0x0A ? "contains a newline" : "contains whitespace, a control or a non-ASCII character")
        }

        var rest = Substring(string)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(d) } catch let e as SeedError { throw fail(e.message) }
            rest = rest[..<at]
        }
        var tag: String?
        // The tag follows the last colon, unless that colon belongs to a host:port (then a
        // slash comes after it).
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let t = rest[rest.index(after: colon)...]
            guard Reference.isValidTag(t) else { throw fail("invalid tag \(SeedError.quote(String(t)))") }
            tag = String(t)
            rest = rest[..<colon]
        }
        let name = rest
        guard !name.isEmpty else { throw fail("missing repository name") }

        var registry = Reference.dockerHub
        var path = Substring(name)
        if let slash = name.firstIndex(of: "/") {
            let first = name[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: { $0.isUppercase }) {
                guard Reference.isValidDomain(first) else { throw fail("invalid registry host \(SeedError.quote(String(first)))") }
                registry = String(first)
                path = name[name.index(after: slash)...]
            }
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Reference.dockerHub }
        if path.contains(where: { $0.isUppercase }) { throw fail("repository name must be lowercase") }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        for c in components where !Reference.isValidPathComponent(c) {
            throw fail(c.isEmpty ? "empty path component" : "invalid path component \(SeedError.quote(String(c)))")
        }
        if registry == Reference.dockerHub && !name.contains("/") && name.utf8.count == 64 && Digest.isHex64(name.utf8) {
            throw fail("a 64-digit hex name looks like an image ID; it cannot be a repository name")
        }
        var repository = String(path)
        if registry == Reference.dockerHub && components.count == 1 { repository = "library/" + repository }
        guard registry.utf8.count + 1 + repository.utf8.count <= 255 else { throw fail("name longer than 255 characters") }

        self.registry = registry
        self.repository = repository
        self.digest = digest
        self.tag = (tag == nil && digest == nil) ? "latest" : tag
    }

    /// Builds a reference from validated parts.
    public init(registry: String, repository: String, tag: String?, digest: Digest?) throws {
        var s = registry + "/" + repository
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.string }
        let parsed = try Reference(s)
        let want = (registry == "index.docker.io" || registry == "registry-1.docker.io") ? Reference.dockerHub : registry
        guard parsed.registry == want else {
            throw SeedError(.invalidReference, "invalid registry host \(SeedError.quote(registry)): a host needs a dot or a port, or must be localhost")
        }
        self = parsed
    }

    /// `registry/repository`.
    public var name: String { registry + "/" + repository }

    /// The normalised string: `registry/repository[:tag][@digest]`.
    public var description: String {
        var s = name
        if let tag { s += ":" + tag }
        if let digest { s += "@" + digest.string }
        return s
    }

    /// The same reference without its digest (the tag that a registry resolves).
    public var withoutDigest: Reference {
        Reference(registry: registry, repository: repository, tagOrNil: tag ?? "latest", digest: nil)
    }

    /// The same reference pinned to `digest`.
    public func pinned(to digest: Digest) -> Reference {
        Reference(registry: registry, repository: repository, tagOrNil: tag, digest: digest)
    }

    private init(registry: String, repository: String, tagOrNil: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tagOrNil
        self.digest = digest
    }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    // MARK: grammar pieces

    /// `[\w][\w.-]{0,127}`
    static func isValidTag(_ t: Substring) -> Bool {
        let u = Array(t.utf8)
        guard !u.isEmpty, u.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool { isAlnum(b) || b == 0x5F || (b >= 0x41 && b <= 0x5A) }
        guard word(u[0]) else { return false }
        return u.dropFirst().allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidPathComponent(_ c: Substring) -> Bool {
        let u = Array(c.utf8)
        guard let first = u.first, let last = u.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < u.count {
            if isAlnum(u[i]) { i += 1; continue }
            // A separator: ".", "_", "__" or one or more "-"; it must be followed by alnum.
            var j = i
            if u[j] == 0x2E { j += 1 }
            else if u[j] == 0x5F { j += 1; if j < u.count && u[j] == 0x5F { j += 1 } }
            else if u[j] == 0x2D { while j < u.count && u[j] == 0x2D { j += 1 } }
            else { return false }
            guard j < u.count, isAlnum(u[j]) else { return false }
            i = j
        }
        return true
    }

    /// `host[:port]`, where host is DNS-like labels or a bracketed IPv6 address.
    static func isValidDomain(_ d: Substring) -> Bool {
        var host = d
        if d.hasPrefix("[") {
            guard let close = d.firstIndex(of: "]") else { return false }
            let inner = d[d.index(after: d.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" }) else { return false }
            let after = d[d.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":") else { return false }
            return isValidPort(after.dropFirst())
        }
        if let colon = d.lastIndex(of: ":") {
            guard isValidPort(d[d.index(after: colon)...]) else { return false }
            host = d[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { l in
            let u = Array(l.utf8)
            guard let f = u.first, let z = u.last else { return false }
            func an(_ b: UInt8) -> Bool { isAlnum(b) || (b >= 0x41 && b <= 0x5A) }
            return an(f) && an(z) && u.allSatisfy { an($0) || $0 == 0x2D }
        }
    }

    static func isValidPort(_ p: Substring) -> Bool {
        guard !p.isEmpty, p.count <= 5, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) else { return false }
        return n <= 65535
    }

    static func isAlnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
}

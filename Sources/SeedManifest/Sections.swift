import SeedOCI

/// The manifest's sections, one decoding function each.
extension ManifestDecoder {
    func manifest(_ root: Value) throws -> SeedManifest {
        guard case .mapping = root.node else {
            if root.isNull { throw fail(1, .root, "the manifest is empty; want a mapping with version: 1 and images") }
            throw fail(root, "want a mapping with version: 1 and images, found \(root.found)")
        }
        let top = try fields(root, "a mapping")
        // The version comes first: a newer manifest's keys are unknown to this reader.
        try version(try required(top, "version", " (want version: 1)"))
        try allowOnly(top, Self.topKeys)

        let images = try self.images(try required(top, "images", " (write images: [] for an empty desired state)"))
        return SeedManifest(
            version: 1,
            images: images,
            platforms: try top.value("platforms").map(platforms),
            auth: try top.value("auth").map(auth),
            registries: try top.value("registries").map(registries) ?? [:],
            nodes: try top.value("nodes").map(nodes) ?? [],
            discovery: try top.value("discovery").map(discovery),
            agents: try top.value("agents").map(agents),
            path: path,
            baseDirectory: baseDirectory
        )
    }

    /// Only the unquoted integer 1: `"1"` is a string, and `1.0` or `01` are not how it is written.
    func version(_ v: Value) throws {
        if case .scalar(let s) = v.node, s.style == .plain, !Value.isNull(s) {
            if s.string == "1" { return }
            if s.string.allSatisfy({ $0.isASCII && $0.isNumber }) {
                throw fail(v, "unsupported manifest version \(s.string); this seed reads version 1")
            }
        }
        throw fail(v, "want the unquoted integer 1, found \(v.found)")
    }

    func images(_ v: Value) throws -> [ImageEntry] {
        var out: [ImageEntry] = []
        var seen: [Reference: (index: Int, line: Int)] = [:]
        for (i, item) in try list(v, "a list of images").enumerated() {
            let (entry, refValue) = try image(item)
            if let first = seen[entry.ref] {
                throw fail(refValue, "\(entry.ref) is already listed at \(v.path)[\(first.index)] (line \(first.line))")
            }
            seen[entry.ref] = (i, entry.line)
            out.append(entry)
        }
        return out
    }

    /// An entry, and the node of its `ref` for messages about it.
    func image(_ v: Value) throws -> (ImageEntry, Value) {
        let f = try fields(v, "an image entry (a mapping with ref)")
        try allowOnly(f, Self.imageKeys)
        let refValue = try required(f, "ref")
        let refText = try nonEmptyString(refValue, "an image reference")
        let ref: Reference
        do { ref = try Reference(refText) } catch let e as SeedError { throw fail(refValue, e.message) }
        let source = try f.value("source").map(imageSource) ?? .registry
        var sha256: Digest?
        if let s = f.value("sha256") {
            sha256 = try checksum(s)
            if source == .registry {
                throw fail(s, "sha256 checks a tarball, so it needs a file: or http(s):// source; pin a registry image by digest in ref (name@sha256:…)")
            }
        }
        let selector = try f.value("nodes").map(labels) ?? [:]
        return (ImageEntry(ref: ref, source: source, sha256: sha256, nodes: selector, line: v.line), refValue)
    }

    /// `file:PATH` (relative to the manifest, or absolute; `file:///abs` also works),
    /// `http://…` or `https://…`.
    func imageSource(_ v: Value) throws -> ImageSource {
        let text = try nonEmptyString(v, "a source (file:PATH, http://URL or https://URL)")
        if text.hasPrefix("file:") {
            var rest = Substring(text.dropFirst(5))
            if rest.hasPrefix("//") {
                guard rest.hasPrefix("///") else {
                    throw fail(v, "invalid source \(SeedError.quote(text)): a file:// URL has no host (file:///absolute/path); write file:PATH for a path relative to the manifest")
                }
                rest = rest.dropFirst(2)
            }
            guard !rest.isEmpty else { throw fail(v, "invalid source \(SeedError.quote(text)): no path after file:") }
            return .file(path: try resolve(String(rest), v))
        }
        let lower = text.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            if let problem = Syntax.urlProblem(text) { throw fail(v, "invalid source URL \(SeedError.quote(text)): \(problem)") }
            return .http(url: text)
        }
        throw fail(v, "unsupported source \(SeedError.quote(text)): want file:PATH, http://URL or https://URL (omit source to pull ref from its registry)")
    }

    /// 64 hex digits, optionally after `sha256:`; upper case is accepted and stored lower case.
    func checksum(_ v: Value) throws -> Digest {
        let text = try nonEmptyString(v, "a sha256 checksum")
        var hex = Substring(text)
        if hex.hasPrefix("sha256:") { hex = hex.dropFirst(7) }
        guard hex.utf8.count == 64, hex.allSatisfy(\.isHexDigit), let d = try? Digest(hex: hex.lowercased()) else {
            throw fail(v, "invalid sha256 \(SeedError.quote(text, limit: 80)): want 64 hex digits, optionally after sha256:")
        }
        return d
    }

    func platforms(_ v: Value) throws -> [Platform] {
        let items = try list(v, "a list of platforms (os/arch[/variant])")
        guard !items.isEmpty else {
            throw fail(v, "an empty list selects nothing; omit platforms to use each node's own platform")
        }
        var out: [Platform] = []
        var seen: [String: Int] = [:]
        for item in items {
            let text = try nonEmptyString(item, "a platform (os/arch[/variant])")
            let p: Platform
            do { p = try Platform(text) } catch let e as SeedError { throw fail(item, e.message) }
            if let line = seen[p.normalized.description] {
                throw fail(item, "\(p) is listed twice (first at line \(line))")
            }
            seen[p.normalized.description] = item.line
            out.append(p)
        }
        return out
    }

    func auth(_ v: Value) throws -> AuthConfig {
        let f = try fields(v, "a mapping (dockerConfig)")
        try allowOnly(f, Self.authKeys)
        return AuthConfig(dockerConfig: try f.value("dockerConfig").map(path))
    }

    /// Keys are `host[:port]` as image references name registries; Docker Hub's aliases fold
    /// into `docker.io` the way references do.
    func registries(_ v: Value) throws -> [String: RegistryConfig] {
        let f = try fields(v, "a mapping of registry host[:port] to settings")
        var out: [String: RegistryConfig] = [:]
        var lines: [String: Int] = [:]
        for e in f.entries {
            let host = try registryHost(e)
            let settings = try fields(e.value, "a mapping (insecure, caFile)")
            try allowOnly(settings, Self.registryKeys)
            let insecure = try settings.value("insecure").map(bool) ?? false
            let caFile = try settings.value("caFile").map(path)
            if insecure, caFile != nil {
                throw fail(e.value, "insecure (plain HTTP) and caFile (HTTPS) contradict each other; keep one")
            }
            if let first = lines[host] {
                throw fail(e.keyLine, e.value.path, "the same registry as the key at line \(first) (both are \(host))")
            }
            lines[host] = e.keyLine
            out[host] = RegistryConfig(insecure: insecure, caFile: caFile)
        }
        return out
    }

    private func registryHost(_ e: Fields.Entry) throws -> String {
        if let problem = Syntax.hostPortProblem(Substring(e.key)) {
            throw fail(e.keyLine, e.value.path, "invalid registry \(SeedError.quote(e.key)): \(problem); want host[:port], without scheme or path")
        }
        do {
            return try Reference(registry: e.key, repository: "x", tag: nil, digest: nil).registry
        } catch {
            throw fail(e.keyLine, e.value.path, "invalid registry \(SeedError.quote(e.key)): no image reference names a registry this way (a registry host needs a dot or a port, or must be localhost)")
        }
    }

    func nodes(_ v: Value) throws -> [NodeEntry] {
        var out: [NodeEntry] = []
        var names: [String: Int] = [:]
        var urls: [String: Int] = [:]
        for item in try list(v, "a list of nodes (name, url, labels)") {
            let f = try fields(item, "a node (a mapping with name and url)")
            try allowOnly(f, Self.nodeKeys)
            let nameValue = try required(f, "name")
            let name = try nonEmptyString(nameValue, "a node name")
            if let problem = Syntax.nodeNameProblem(name) { throw fail(nameValue, problem) }
            if let first = names[name] { throw fail(nameValue, "node name \(SeedError.quote(name)) is already used at line \(first)") }
            names[name] = nameValue.line

            let urlValue = try required(f, "url")
            let url = try agentURL(urlValue)
            if let first = urls[url] { throw fail(urlValue, "\(url) is already the url of the node at line \(first)") }
            urls[url] = urlValue.line

            let labels = try f.value("labels").map(labels) ?? [:]
            out.append(NodeEntry(name: name, url: url, labels: labels))
        }
        return out
    }

    /// `http(s)://host[:port]`, optionally with a trailing `/`, which is dropped.
    func agentURL(_ v: Value) throws -> String {
        let text = try nonEmptyString(v, "an agent URL (http://host:port)")
        let lower = text.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw fail(v, "invalid agent URL \(SeedError.quote(text)): want http://host[:port] or https://host[:port]")
        }
        if let problem = Syntax.urlProblem(text) { throw fail(v, "invalid agent URL \(SeedError.quote(text)): \(problem)") }
        let schemeEnd = text.range(of: "://")!
        let scheme = lower[..<schemeEnd.lowerBound]
        let rest = text[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard rest[authorityEnd...].isEmpty || rest[authorityEnd...] == "/" else {
            throw fail(v, "invalid agent URL \(SeedError.quote(text)): want only scheme, host and port; the agent API paths are fixed")
        }
        return scheme + "://" + rest[..<authorityEnd]
    }

    func discovery(_ v: Value) throws -> Discovery {
        let f = try fields(v, "a mapping (dns, port, scheme)")
        try allowOnly(f, Self.discoveryKeys)
        let dnsValue = try required(f, "dns")
        let dns = try nonEmptyString(dnsValue, "a DNS name")
        if let problem = Syntax.dnsNameProblem(dns) { throw fail(dnsValue, "invalid DNS name \(SeedError.quote(dns)): \(problem)") }
        let port = try f.value("port").map { try int($0, in: 1...65535) } ?? Discovery.defaultPort
        var scheme = "http"
        if let s = f.value("scheme") {
            scheme = try nonEmptyString(s, "http or https")
            guard scheme == "http" || scheme == "https" else { throw fail(s, "want http or https, found \(s.found)") }
        }
        return Discovery(dns: dns, port: port, scheme: scheme)
    }

    func agents(_ v: Value) throws -> AgentsConfig {
        let f = try fields(v, "a mapping (tokenFile, caFile)")
        try allowOnly(f, Self.agentsKeys)
        return AgentsConfig(tokenFile: try f.value("tokenFile").map(path), caFile: try f.value("caFile").map(path))
    }
}

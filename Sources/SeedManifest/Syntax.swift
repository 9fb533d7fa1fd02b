import SeedOCI

/// Checks of the small grammars inside manifest values. Each returns what is wrong, or nil.
enum Syntax {
    /// An `http(s)://` URL: printable ASCII, a valid `host[:port]`, no credentials.
    static func urlProblem(_ url: String) -> String? {
        if url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
            return "it contains whitespace, a control or a non-ASCII character (percent-encode it)"
        }
        guard let schemeEnd = url.range(of: "://") else { return "want http:// or https://" }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest[..<(rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex)]
        if authority.isEmpty { return "no host" }
        if authority.contains("@") { return "credentials in a URL are not supported (they would show in logs)" }
        return hostPortProblem(authority)
    }

    /// `host[:port]`: DNS labels or an IPv4 address, or a bracketed IPv6 address; port 1-65535.
    static func hostPortProblem(_ s: Substring) -> String? {
        if s.isEmpty { return "empty host" }
        var host = s
        var port: Substring?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return "unclosed [ in an IPv6 address" }
            let inner = s[s.index(after: s.startIndex)..<close]
            guard inner.contains(":"), inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                return "invalid IPv6 address \(String(s[...close]))"
            }
            let after = s[s.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return "unexpected text after the IPv6 address" }
                port = after.dropFirst()
            }
            host = ""
        } else if let colon = s.lastIndex(of: ":") {
            host = s[..<colon]
            port = s[s.index(after: colon)...]
        }
        if let port {
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let n = Int(port), (1...65535).contains(n) else {
                return "invalid port \(SeedError.quote(String(port))) (want 1-65535)"
            }
        }
        if !host.isEmpty, let problem = hostProblem(host) { return problem }
        return nil
    }

    /// A host name (or IPv4 address) as DNS spells it; a trailing dot is allowed.
    static func dnsNameProblem(_ name: String) -> String? {
        var host = Substring(name)
        if host.hasSuffix(".") { host = host.dropLast() }
        return hostProblem(host)
    }

    private static func hostProblem(_ host: Substring) -> String? {
        if host.isEmpty { return "empty host" }
        if host.utf8.count > 253 { return "host name longer than 253 characters" }
        for label in host.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63,
                  label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                  label.first != "-", label.last != "-" else {
                return "invalid host \(SeedError.quote(String(host))) (want letters, digits and hyphens in dot-separated labels)"
            }
        }
        return nil
    }

    /// A node name: printable, no whitespace, at most 253 characters (a Kubernetes node name fits).
    static func nodeNameProblem(_ name: String) -> String? {
        if name.utf8.count > 253 { return "a node name is at most 253 characters" }
        if name.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0.properties.isWhitespace }) {
            return "a node name must not contain whitespace or control characters"
        }
        return nil
    }

    /// A label name as agents accept it in `--label key=value`: not empty, no `=`, no whitespace.
    static func labelKeyProblem(_ key: String) -> String? {
        if key.isEmpty { return "a label name must not be empty" }
        if key.contains("=") { return "a label name must not contain =" }
        if key.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0.properties.isWhitespace }) {
            return "a label name must not contain whitespace or control characters"
        }
        return nil
    }
}

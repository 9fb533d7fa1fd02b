import SeedOCI

/// A parsed `WWW-Authenticate` challenge (RFC 7235): a scheme and its parameters.
public struct AuthChallenge: Sendable, Equatable {
    /// `basic` or `bearer` (lowercased); others are kept but not supported.
    public var scheme: String
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`).
    public var parameters: [String: String]

    /// Parses the first challenge of a header value. Strict: a malformed header is an error,
    /// never a guess.
    public static func parse(_ header: String) throws -> AuthChallenge {
        func fail(_ why: String) -> SeedError {
            SeedError(.invalidInput, "malformed WWW-Authenticate header (\(why)): \(SeedError.quote(header, limit: 120))")
        }
        var s = Substring(header).drop { $0 == " " }
        let scheme = s.prefix { $0.isLetter || $0.isNumber || $0 == "-" }
        guard !scheme.isEmpty else { throw fail("no scheme") }
        s = s.dropFirst(scheme.count)
        var params: [String: String] = [:]
        while true {
            s = s.drop { $0 == " " || $0 == "," }
            if s.isEmpty { break }
            let name = s.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
            guard !name.isEmpty else { throw fail("expected a parameter name") }
            s = s.dropFirst(name.count).drop { $0 == " " }
            guard s.first == "=" else {
                // The start of a second challenge ("Basic realm=..., Bearer ..."): stop here.
                if params.isEmpty { throw fail("expected '=' after \(name)") }
                break
            }
            s = s.dropFirst().drop { $0 == " " }
            var value = ""
            if s.first == "\"" {
                s = s.dropFirst()
                var closed = false
                while let c = s.first {
                    s = s.dropFirst()
                    if c == "\\" {
                        guard let n = s.first else { break }
                        value.append(n)
                        s = s.dropFirst()
                    } else if c == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(c)
                    }
                }
                guard closed else { throw fail("unterminated quoted string") }
            } else {
                let token = s.prefix { $0 != "," && $0 != " " }
                value = String(token)
                s = s.dropFirst(token.count)
            }
            let key = name.lowercased()
            guard params[key] == nil else { throw fail("duplicate parameter \(key)") }
            params[key] = value
        }
        return AuthChallenge(scheme: scheme.lowercased(), parameters: params)
    }
}

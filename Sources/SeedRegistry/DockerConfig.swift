import Foundation
import SeedOCI

/// Registry credentials.
public enum Credentials: Sendable, Equatable, CustomStringConvertible {
    /// A user name and password (or personal token).
    case basic(username: String, password: String)
    /// An OAuth2 refresh token (`identitytoken` in config.json), traded at the token realm.
    case identityToken(username: String, token: String)

    /// Never prints the secret.
    public var description: String {
        switch self {
        case .basic(let u, _): return "basic(\(u), ***)"
        case .identityToken(let u, _): return "identity-token(\(u), ***)"
        }
    }
}

/// Where credentials for a registry come from.
public protocol CredentialStore: Sendable {
    /// Credentials for `repository` on `registry`, or nil for anonymous access.
    func credentials(registry: String, repository: String) throws -> Credentials?
}

/// No credentials: anonymous access everywhere.
public struct AnonymousCredentials: CredentialStore {
    /// Makes one.
    public init() {}
    public func credentials(registry: String, repository: String) throws -> Credentials? { nil }
}

/// A docker `config.json`: `auths` (with `auth`, or `username`/`password`, or `identitytoken`),
/// `credHelpers` and `credsStore` (the docker-credential-NAME protocol). Lookup order follows
/// Docker: a credential helper for the registry, then the credentials store, then `auths` by
/// `registry/repository` and then by registry (Docker Hub also under its legacy key
/// `https://index.docker.io/v1/`).
public struct DockerConfig: CredentialStore {
    struct Entry: Decodable {
        var auth: String?
        var username: String?
        var password: String?
        var identitytoken: String?
        var registrytoken: String?
    }

    struct File: Decodable {
        var auths: [String: Entry]?
        var credHelpers: [String: String]?
        var credsStore: String?
    }

    let auths: [String: Entry]
    let credHelpers: [String: String]
    let credsStore: String?
    /// Names the file in errors.
    public let source: String

    /// Parses config.json bytes; `source` names the file in errors (never the secrets).
    public init(json: [UInt8], source: String) throws {
        let file: File
        do {
            file = try StrictJSON.decode(File.self, from: json, what: source, limit: 4 << 20)
        } catch let e as SeedError {
            throw SeedError(.invalidInput, "\(source) is not a valid docker config.json: \(e.message.replacingOccurrences(of: source + ": ", with: ""))")
        }
        var auths: [String: Entry] = [:]
        for (k, v) in file.auths ?? [:] { auths[Self.normalizeKey(k)] = v }
        self.auths = auths
        var helpers: [String: String] = [:]
        for (k, v) in file.credHelpers ?? [:] { helpers[Self.normalizeKey(k)] = v }
        credHelpers = helpers
        credsStore = file.credsStore.flatMap { $0.isEmpty ? nil : $0 }
        self.source = source
        // Everything that can be wrong with the file is found now, before anything is fetched
        // or sent (invalid input, exit code 2), not halfway through a run.
        for (key, entry) in auths { _ = try decode(entry, key: key) }
        for helper in Array(credHelpers.values) + (credsStore.map { [$0] } ?? []) {
            try Self.checkHelper(helper, source: source)
        }
    }

    /// A helper name must be a plain word and `docker-credential-NAME` must be on PATH.
    @discardableResult
    static func checkHelper(_ name: String, source: String) throws -> String {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw SeedError(.invalidInput, "\(source): invalid credential helper name \(SeedError.quote(name))")
        }
        let exe = "docker-credential-" + name
        guard let path = findExecutable(exe) else {
            throw SeedError(.invalidInput, "\(source) names the credential helper \(name), but \(exe) is not on PATH")
        }
        return path
    }

    /// `https://host/v1/` → `host`; `host/repo/` → `host/repo`; Docker Hub aliases → `docker.io`.
    static func normalizeKey(_ key: String) -> String {
        var k = key
        for p in ["https://", "http://"] where k.hasPrefix(p) { k.removeFirst(p.count) }
        while k.hasSuffix("/") { k.removeLast() }
        for suffix in ["/v1", "/v2"] where k.hasSuffix(suffix) { k.removeLast(suffix.count) }
        if let slash = k.firstIndex(of: "/") {
            let host = String(k[..<slash])
            return hubAlias(host) + k[slash...]
        }
        return hubAlias(k)
    }

    static func hubAlias(_ host: String) -> String {
        ["index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"].contains(host) ? Reference.dockerHub : host
    }

    public func credentials(registry: String, repository: String) throws -> Credentials? {
        let host = Self.hubAlias(registry)
        let helperServer = host == Reference.dockerHub ? "https://index.docker.io/v1/" : host
        if let helper = credHelpers[host] {
            return try Self.fromHelper(helper, server: helperServer, source: source)
        }
        if let store = credsStore, let c = try Self.fromHelper(store, server: helperServer, source: source) {
            return c
        }
        for key in [host + "/" + repository, host] {
            if let e = auths[key], let c = try decode(e, key: key) { return c }
        }
        return nil
    }

    func decode(_ e: Entry, key: String) throws -> Credentials? {
        var user = e.username
        var pass = e.password
        if let auth = e.auth, !auth.isEmpty {
            guard let data = Data(base64Encoded: auth), let s = String(data: data, encoding: .utf8), let colon = s.firstIndex(of: ":") else {
                throw SeedError(.invalidInput, "\(source): the auth entry for \(key) is not base64 of user:password")
            }
            user = String(s[..<colon])
            pass = String(s[s.index(after: colon)...])
        }
        if let token = e.identitytoken, !token.isEmpty {
            return .identityToken(username: user ?? "", token: token)
        }
        if let user, let pass, !(user.isEmpty && pass.isEmpty) {
            return .basic(username: user, password: pass)
        }
        return nil
    }

    /// Runs `docker-credential-NAME get` with the server on stdin. "credentials not found" is nil.
    static func fromHelper(_ name: String, server: String, source: String) throws -> Credentials? {
        let exe = "docker-credential-" + name
        let path = try checkHelper(name, source: source)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["get"]
        let input = Pipe(), output = Pipe(), err = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = err
        try p.run()
        input.fileHandleForWriting.write(Data(server.utf8))
        try? input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let outText = String(decoding: out, as: UTF8.self)
        if p.terminationStatus != 0 {
            if outText.lowercased().contains("credentials not found") || errText.lowercased().contains("credentials not found") { return nil }
            throw SeedError(.invalidInput, "credential helper \(exe) failed for \(server) (exit \(p.terminationStatus))")
        }
        struct Reply: Decodable { var Username: String?; var Secret: String? }
        guard let r = try? JSONDecoder().decode(Reply.self, from: out), let secret = r.Secret, !secret.isEmpty else {
            throw SeedError(.invalidInput, "credential helper \(exe) gave no usable answer for \(server)")
        }
        if r.Username == "<token>" { return .identityToken(username: "", token: secret) }
        return .basic(username: r.Username ?? "", password: secret)
    }

    static func findExecutable(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

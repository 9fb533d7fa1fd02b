import Foundation
import SeedOCI
@testable import SeedRegistry
import Testing

@Suite("WWW-Authenticate parsing")
struct ChallengeTests {
    @Test("valid challenges", arguments: [
        // Docker Hub's form.
        (#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#, "bearer",
         ["realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/nginx:pull"]),
        // Basic with a realm.
        (#"Basic realm="Registry Realm""#, "basic", ["realm": "Registry Realm"]),
        // Scheme case and spaces after commas.
        (#"bearer Realm="https://a/t", Service="s""#, "bearer", ["realm": "https://a/t", "service": "s"]),
        // An escaped quote inside a value.
        (#"Bearer realm="https://a/t",error="say \"no\"""#, "bearer", ["realm": "https://a/t", "error": "say \"no\""]),
        // A token (unquoted) value.
        ("Bearer realm=https://a/t", "bearer", ["realm": "https://a/t"]),
        // Two challenges: the first is used.
        (#"Basic realm="r", Bearer realm="https://x""#, "basic", ["realm": "r"]),
    ])
    func valid(header: String, scheme: String, params: [String: String]) throws {
        let c = try AuthChallenge.parse(header)
        #expect(c.scheme == scheme)
        #expect(c.parameters == params)
    }

    @Test("malformed challenges are errors, not guesses", arguments: [
        "",                                         // nothing
        #"Bearer realm="https://a"#,                // unterminated quote
        #"Bearer realm="a",realm="b""#,             // duplicate parameter
        #"Bearer ,="x""#,                           // no parameter name
        "=x",                                       // no scheme
    ])
    func malformed(header: String) {
        #expect(throws: SeedError.self) { try AuthChallenge.parse(header) }
    }
}

@Suite("docker config.json")
struct DockerConfigTests {
    static func config(_ json: String) throws -> DockerConfig {
        try DockerConfig(json: Array(json.utf8), source: "test-config.json")
    }

    @Test("auths: base64 auth, username/password, identity token; repository before registry; Hub's legacy key")
    func lookup() throws {
        let c = try Self.config("""
        {"auths": {
          "registry.example.com": {"auth": "\(Data("alice:pw1".utf8).base64EncodedString())"},
          "registry.example.com/team/special": {"username": "bob", "password": "pw2"},
          "https://index.docker.io/v1/": {"auth": "\(Data("hubuser:hubpw".utf8).base64EncodedString())"},
          "https://other.example.com:5000/v2/": {"identitytoken": "refresh-me"}
        }}
        """)
        #expect(try c.credentials(registry: "registry.example.com", repository: "team/api") == .basic(username: "alice", password: "pw1"))
        #expect(try c.credentials(registry: "registry.example.com", repository: "team/special") == .basic(username: "bob", password: "pw2"))
        #expect(try c.credentials(registry: "docker.io", repository: "library/nginx") == .basic(username: "hubuser", password: "hubpw"))
        #expect(try c.credentials(registry: "other.example.com:5000", repository: "x") == .identityToken(username: "", token: "refresh-me"))
        #expect(try c.credentials(registry: "unknown.example.com", repository: "x") == nil)
    }

    @Test("a bad auth entry names the registry and the file, never the secret")
    func badAuth() throws {
        // Found when the file is read (exit 2 before anything is fetched), not at first use.
        do {
            _ = try Self.config(#"{"auths": {"r.example.com": {"auth": "bm90LWEtcGFpcg=="}}}"#)
            Issue.record("accepted")
        } catch let e as SeedError {
            #expect(e.message.contains("r.example.com"))
            #expect(e.message.contains("test-config.json"))
            #expect(!e.message.contains("not-a-pair"))
        }
        #expect(throws: SeedError.self) { try Self.config("{not json") }
        #expect(throws: SeedError.self) { try Self.config(#"{"auths": []}"#) }
    }

    @Test("credHelpers and credsStore run docker-credential-NAME get")
    func helpers() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("seed-credhelper-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            #!/bin/sh
            read server
            case "$server" in
              helped.example.com) echo '{"ServerURL":"helped.example.com","Username":"carol","Secret":"pw3"}' ;;
              stored.example.com) echo '{"ServerURL":"stored.example.com","Username":"<token>","Secret":"idtok"}' ;;
              *) echo "credentials not found in native keychain"; exit 1 ;;
            esac
            """
        for name in ["docker-credential-testhelper", "docker-credential-teststore"] {
            try script.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
            chmod(dir + "/" + name, 0o755)
        }
        let oldPath = ProcessInfo.processInfo.environment["PATH"] ?? ""
        setenv("PATH", dir + ":" + oldPath, 1)
        defer { setenv("PATH", oldPath, 1) }
        let c = try Self.config(#"{"credHelpers": {"helped.example.com": "testhelper"}, "credsStore": "teststore", "auths": {"plain.example.com": {"username": "dave", "password": "pw4"}}}"#)
        #expect(try c.credentials(registry: "helped.example.com", repository: "x") == .basic(username: "carol", password: "pw3"))
        #expect(try c.credentials(registry: "stored.example.com", repository: "x") == .identityToken(username: "", token: "idtok"))
        // The store does not know it: fall back to auths.
        #expect(try c.credentials(registry: "plain.example.com", repository: "x") == .basic(username: "dave", password: "pw4"))
        #expect(throws: SeedError.self) { try Self.config(#"{"credHelpers": {"h.example.com": "nosuchhelper"}}"#) }
        #expect(throws: SeedError.self) { try Self.config(#"{"credsStore": "bad name"}"#) }
    }

    @Test("Retry-After in seconds or as an HTTP date")
    func retryAfter() {
        #expect(RegistryClient.parseRetryAfter("3") == 3)
        #expect(RegistryClient.parseRetryAfter("garbage") == nil)
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        let inTen = f.string(from: Date().addingTimeInterval(10))
        let v = RegistryClient.parseRetryAfter(inTen) ?? -1
        #expect(v > 7 && v <= 10)
    }

    @Test("secrets are redacted from URLs in messages")
    func redact() {
        #expect(Redact.url("https://user:pw@s3.example.com/bucket/blob?X-Amz-Signature=abc") == "https://s3.example.com/bucket/blob")
    }
}

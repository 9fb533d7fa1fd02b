import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// Proves the test harness: the real CNCF registry starts with each kind of authentication,
/// skopeo pushes to it, and what the harness reports (digests, blob paths, 401s) is true.
@Suite("Registry harness (docker-registry 2.8)", .serialized)
struct RegistryHarnessTests {
    static let user = "seed-user"
    static let password = "s3cret-pass"

    enum Mode: String, CaseIterable, CustomStringConvertible, Sendable {
        case none, htpasswd, token
        var description: String { rawValue }
        var auth: RegistryProcess.Auth {
            switch self {
            case .none: .none
            case .htpasswd: .htpasswd(user: RegistryHarnessTests.user, password: RegistryHarnessTests.password)
            case .token: .token(user: RegistryHarnessTests.user, password: RegistryHarnessTests.password)
            }
        }
    }

    static let amd64 = Platform(os: "linux", architecture: "amd64")
    static let arm64 = Platform(os: "linux", architecture: "arm64", variant: "v8")

    /// `skopeo inspect --raw` of `repository:tag` with the registry's credentials (or `creds`).
    func inspectRaw(_ registry: RegistryProcess, _ repository: String, _ tag: String, creds: String? = nil) throws -> ProcessResult {
        var args = [try tool("skopeo"), "inspect", "--raw", "--tls-verify=false", "--retry-times", "0"]
        if let c = creds ?? registry.credentials { args += ["--creds", c] } else { args.append("--no-creds") }
        return try run(args + ["docker://\(registry.host)/\(repository):\(tag)"], check: false)
    }

    /// Every blob an image refers to (configs and layers of each manifest), from its layout.
    func blobs(of image: ImageFactory.Image) throws -> [Digest] {
        var out: [Digest] = []
        for manifest in image.manifests.values {
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(image.layout)/blobs/sha256/\(manifest.digest.hex)"))
            let m = try JSONDecoder().decode(ImageManifest.self, from: data)
            out.append(m.config.digest)
            out += m.layers.map(\.digest)
        }
        return out
    }

    @Test("push, resolve and inspect", arguments: Mode.allCases)
    func pushAndResolve(mode: Mode) throws {
        let registry = try RegistryProcess(auth: mode.auth)
        defer { registry.stop() }
        let work = try TempDir("seed-harness")
        defer { work.remove() }
        let layout = work.sub("layout")
        let single = try ImageFactory.make(layout: layout, tag: "single", layers: [.init(), .init(gzip: false)], salt: "single-\(mode)")
        let multi = try ImageFactory.make(layout: layout, tag: "multi", platforms: [Self.amd64, Self.arm64], layers: [.init(), .init(files: 1)], salt: "multi-\(mode)")

        try registry.push(layout: layout, tag: "single", to: "team/single", reference: "1.0")
        try registry.push(layout: layout, tag: "multi", to: "team/multi", reference: "2.0", all: true)

        for (repository, tag, image) in [("team/single", "1.0", single), ("team/multi", "2.0", multi)] {
            let digest = try registry.digest(of: repository, reference: tag)
            #expect(digest == image.root.digest.string, "skopeo --preserve-digests keeps the layout's digest")
            let raw = try inspectRaw(registry, repository, tag)
            #expect(raw.status == 0, "\(raw.stderr)")
            #expect(Digest.of(Data(raw.stdout.utf8)).string == digest)
            // By digest too.
            #expect(try registry.digest(of: repository, reference: digest) == digest)
            for blob in try blobs(of: image) {
                let path = registry.blobDataPath(blob.string)
                #expect(FileManager.default.fileExists(atPath: path), "\(path)")
                #expect(try sha256(file: path) == blob)
            }
        }
        // Each platform manifest of the index was pushed.
        for manifest in multi.manifests.values {
            #expect(try registry.digest(of: "team/multi", reference: manifest.digest.string) == manifest.digest.string)
        }

        if mode == .none {
            #expect(registry.credentials == nil)
            #expect(registry.tokenRequests == 0)
            let anonymous = try registry.request("GET", "/v2/team/single/manifests/1.0", anonymous: true)
            #expect(anonymous.status == 200)
        } else {
            let wrong = try inspectRaw(registry, "team/single", "1.0", creds: "\(Self.user):wrong")
            #expect(wrong.status != 0)
            let stranger = try inspectRaw(registry, "team/single", "1.0", creds: "stranger:\(Self.password)")
            #expect(stranger.status != 0)
            let noCreds = try run([try tool("skopeo"), "inspect", "--raw", "--tls-verify=false", "--retry-times", "0", "--no-creds", "docker://\(registry.host)/team/single:1.0"], check: false)
            #expect(noCreds.status != 0)
            let push = try run([try tool("skopeo"), "copy", "--dest-tls-verify=false", "--retry-times", "0", "--dest-creds", "\(Self.user):wrong",
                                "oci:\(layout):single", "docker://\(registry.host)/team/other:1.0"], check: false)
            #expect(push.status != 0)
        }
    }

    @Test("htpasswd: anonymous and wrong Basic credentials get 401 with a Basic challenge")
    func htpasswdChallenges() throws {
        let registry = try RegistryProcess(auth: Mode.htpasswd.auth)
        defer { registry.stop() }
        let anonymous = try registry.request("GET", "/v2/", anonymous: true)
        #expect(anonymous.status == 401)
        #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Basic realm=") == true)
        let ok = try registry.request("GET", "/v2/")
        #expect(ok.status == 200)
        let wrong = try Curl.request(["-u", "\(Self.user):wrong", registry.url + "/v2/"])
        #expect(wrong.status == 401)
    }

    @Test("token: challenges, issuer checks credentials, anonymous tokens grant nothing")
    func tokenProtocol() throws {
        let registry = try RegistryProcess(auth: Mode.token.auth)
        defer { registry.stop() }
        let work = try TempDir("seed-harness")
        defer { work.remove() }
        let layout = work.sub("layout")
        let image = try ImageFactory.make(layout: layout, tag: "t", layers: [.init()], salt: "token-protocol")
        #expect(registry.tokenRequests == 0)
        try registry.push(layout: layout, tag: "t", to: "team/api", reference: "1.0")
        #expect(registry.tokenRequests > 0, "skopeo asked the issuer for a token")
        let pushed = registry.tokenRequestLog
        #expect(pushed.allSatisfy { $0.user == Self.user && $0.status == 200 && $0.service == registry.tokenService })
        #expect(pushed.contains { $0.scopes.contains("repository:team/api:pull,push") }, "\(pushed.map(\.scopes))")

        // Anonymous: the registry challenges with the realm, service and scope.
        let manifestPath = "/v2/team/api/manifests/1.0"
        let anonymous = try registry.request("GET", manifestPath, anonymous: true)
        #expect(anonymous.status == 401)
        let challenge = anonymous.headers["www-authenticate"] ?? ""
        #expect(challenge.hasPrefix("Bearer "))
        #expect(challenge.contains("realm=\"\(registry.tokenRealm!)\""))
        #expect(challenge.contains("service=\"\(registry.tokenService!)\""))
        #expect(challenge.contains("scope=\"repository:team/api:pull\""))

        let realm = registry.tokenRealm!
        let query = "?service=\(registry.tokenService!)&scope=repository:team/api:pull"
        // Wrong credentials: 401 from the issuer.
        let before = registry.tokenRequests
        let wrong = try Curl.request(["-u", "\(Self.user):wrong", realm + query])
        #expect(wrong.status == 401)
        #expect(registry.tokenRequests == before + 1)
        #expect(registry.tokenRequestLog.last?.status == 401)

        // No credentials: a token that grants nothing; the registry refuses the pull with it.
        let anonToken = try Curl.request([realm + query])
        #expect(anonToken.status == 200)
        let anonJWT = try #require(try anonToken.json()["token"] as? String)
        let refused = try Curl.request(["-H", "Authorization: Bearer \(anonJWT)", "-H", "Accept: " + RegistryProcess.manifestTypes.joined(separator: ","), registry.url + manifestPath])
        #expect(refused.status == 401, "\(refused.body)")
        #expect(refused.body.contains("UNAUTHORIZED"))
        // /v2/ itself: challenged without a scope, open to any valid token.
        let base = try registry.request("GET", "/v2/", anonymous: true)
        #expect(base.status == 401)
        #expect(base.headers["www-authenticate"]?.contains("scope=") == false)
        #expect(try Curl.request(["-H", "Authorization: Bearer \(anonJWT)", registry.url + "/v2/"]).status == 200)

        // Right credentials: a token the registry accepts.
        let granted = try Curl.request(["-u", "\(Self.user):\(Self.password)", realm + query])
        #expect(granted.status == 200)
        let json = try granted.json()
        let jwt = try #require(json["token"] as? String)
        #expect(json["access_token"] as? String == jwt)
        #expect(json["expires_in"] as? Int == 300)
        #expect(json["issued_at"] is String)
        let fetched = try Curl.request(["-H", "Authorization: Bearer \(jwt)", "-H", "Accept: " + RegistryProcess.manifestTypes.joined(separator: ","), registry.url + manifestPath])
        #expect(fetched.status == 200)
        #expect(Digest.of(Data(fetched.body.utf8)) == image.root.digest)
        // A pull token does not allow pushing.
        let upload = try Curl.request(["-X", "POST", "-H", "Authorization: Bearer \(jwt)", registry.url + "/v2/team/api/blobs/uploads/"])
        #expect(upload.status == 401)
        // An expired token (beyond the registry's 60 s leeway) is refused.
        let issuer = try #require(registry.tokenIssuer)
        issuer.expiresIn = -120
        let expired = try issuer.mint(subject: Self.user, access: [("repository", "team/api", ["pull"])])
        issuer.expiresIn = 300
        let stale = try Curl.request(["-H", "Authorization: Bearer \(expired)", "-H", "Accept: " + RegistryProcess.manifestTypes.joined(separator: ","), registry.url + manifestPath])
        #expect(stale.status == 401)
        // The OAuth2 password grant works too.
        let form = try Curl.request(["-X", "POST", "--data-urlencode", "grant_type=password", "--data-urlencode", "username=\(Self.user)",
                                     "--data-urlencode", "password=\(Self.password)", "--data-urlencode", "service=\(registry.tokenService!)",
                                     "--data-urlencode", "scope=repository:team/api:pull", realm])
        #expect(form.status == 200)
        #expect(try form.json()["access_token"] is String)
    }

    @Test("a corrupted blob is served as stored")
    func corruptedBlob() throws {
        let registry = try RegistryProcess(auth: .none)
        defer { registry.stop() }
        let work = try TempDir("seed-harness")
        defer { work.remove() }
        let image = try ImageFactory.make(layout: work.sub("layout"), tag: "t", layers: [.init()], salt: "corrupt")
        try registry.push(layout: image.layout, tag: "t", to: "c/img", reference: "1")
        let layer = try blobs(of: image).last!
        let path = registry.blobDataPath(layer.string)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let out = work.sub("blob")
        let r = try Curl.request(["-o", out, registry.url + "/v2/c/img/blobs/\(layer.string)"])
        #expect(r.status == 200)
        #expect(try sha256(file: out) != layer)
    }

    @Test("stop ends the process and removes its files")
    func stopCleansUp() throws {
        let registry = try RegistryProcess(auth: Mode.token.auth)
        let dir = registry.dir.path
        let pid = registry.process.processIdentifier
        let realm = registry.tokenRealm!
        registry.stop()
        registry.stop()
        #expect(!registry.process.isRunning)
        #expect(kill(pid, 0) != 0)
        #expect(!FileManager.default.fileExists(atPath: dir))
        let r = try Curl.request(["--max-time", "2", realm])
        #expect(r.status == 0, "the token issuer no longer listens")
    }
}

import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// `seed fetch` (the real binary) against the real CNCF registry, with real auth.
@Suite("seed fetch", .serialized)
struct FetchTests {
    static let user = "seeduser"
    static let password = "pw-\(UUID().uuidString.prefix(12))"

    /// A registry holding team/api:1.4.2 (three layers) and team/multi:2 (amd64 + arm64).
    final class World {
        let tmp: TempDir
        let registry: RegistryProcess
        let layout: String

        init(_ auth: String) throws {
            tmp = try TempDir("seed-fetch")
            registry = try RegistryProcess(auth: auth == "token" ? .token(user: FetchTests.user, password: FetchTests.password)
                                                                 : .htpasswd(user: FetchTests.user, password: FetchTests.password))
            layout = tmp.sub("layout")
            _ = try ImageFactory.make(layout: layout, tag: "api", layers: [
                .init(files: 2, fileSize: 40_000, gzip: true),
                .init(files: 2, fileSize: 9000, gzip: false),
                .init(files: 3, fileSize: 60_000, gzip: true, random: true),
            ], salt: "api")
            _ = try ImageFactory.make(layout: layout, tag: "multi", platforms: [Platform(os: "linux", architecture: "amd64"), Platform(os: "linux", architecture: "arm64")],
                                      layers: [.init(files: 2, fileSize: 5000, gzip: true)], salt: "multi")
            try registry.push(layout: layout, tag: "api", to: "team/api", reference: "1.4.2")
            try registry.push(layout: layout, tag: "multi", to: "team/multi", reference: "2", all: true)
        }

        deinit {
            registry.stop()
            tmp.remove()
        }

        /// A docker config.json with the given password.
        func configJSON(password: String = FetchTests.password, host: String? = nil) -> String {
            let auth = Data("\(FetchTests.user):\(password)".utf8).base64EncodedString()
            return #"{"auths": {"\#(host ?? registry.host)": {"auth": "\#(auth)"}}}"#
        }

        /// Writes seed.yaml; returns its path.
        func manifest(images: [String], credentials: String? = "config.json", extra: String = "", host: String? = nil) throws -> String {
            var y = "version: 1\nimages:\n"
            for i in images { y += "  - \(i)\n" }
            if let credentials { y += "auth:\n  dockerConfig: \(credentials)\n" }
            y += "registries:\n  \"\(host ?? registry.host)\": {insecure: true}\n" + extra
            let path = tmp.sub("seed.yaml")
            try y.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func write(_ text: String, to name: String) throws {
            try text.write(toFile: tmp.sub(name), atomically: true, encoding: .utf8)
        }

        /// Runs `seed fetch -o json`; returns exit status, parsed JSON (if any), and all output.
        func fetch(_ manifest: String, cache: String? = nil, extra: [String] = []) throws -> (Int32, [String: Any]?, String) {
            let r = try run([try seedBinary(), "fetch", "-f", manifest, "--cache", cache ?? tmp.sub("cache"), "-o", "json"] + extra, check: false)
            let json = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            return (r.status, json, r.stdout + r.stderr)
        }
    }

    static func images(_ json: [String: Any]?) -> [String: [String: Any]] {
        var out: [String: [String: Any]] = [:]
        for i in (json?["images"] as? [[String: Any]]) ?? [] { out[i["ref"] as! String] = i }
        return out
    }

    /// Every cached blob hashes to its name; returns their digests.
    static func verifiedCache(_ dir: String) throws -> Set<String> {
        var out = Set<String>()
        for name in listFiles(dir + "/blobs/sha256") {
            #expect(try sha256(file: dir + "/blobs/sha256/" + name).hex == name)
            out.insert("sha256:" + name)
        }
        return out
    }

    @Test("several images, one multi-platform, credentials from a config.json or a dockerconfigjson Secret, htpasswd and token auth",
          arguments: [("htpasswd", "config"), ("htpasswd", "secret-yaml"), ("token", "config"), ("token", "secret-json")])
    func fetchAll(auth: String, credentials: String) throws {
        let w = try World(auth)
        let config = w.configJSON()
        switch credentials {
        case "config": try w.write(config, to: "creds")
        case "secret-yaml":
            try w.write("""
                apiVersion: v1
                kind: Secret
                metadata: {name: regcred, namespace: seed-system}
                type: kubernetes.io/dockerconfigjson
                data:
                  .dockerconfigjson: \(Data(config.utf8).base64EncodedString())
                """, to: "creds")
        default:
            let secret: [String: Any] = ["apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                                         "stringData": [".dockerconfigjson": config]]
            try w.write(String(decoding: try JSONSerialization.data(withJSONObject: secret), as: UTF8.self), to: "creds")
        }
        let api = "\(w.registry.host)/team/api:1.4.2"
        let multi = "\(w.registry.host)/team/multi:2"
        let m = try w.manifest(images: ["ref: \(api)", "ref: \(multi)"], credentials: "creds")
        let (status, json, output) = try w.fetch(m)
        #expect(status == 0, "\(output)")
        let got = Self.images(json)
        #expect(got[api]?["digest"] as? String == (try w.registry.digest(of: "team/api", reference: "1.4.2")))
        #expect(got[multi]?["digest"] as? String == (try w.registry.digest(of: "team/multi", reference: "2")))
        let cached = try Self.verifiedCache(w.tmp.sub("cache"))
        // Every blob of both images (both platforms of the multi-platform one) is in the cache.
        let raw = try w.registry.request("GET", "/v2/team/multi/manifests/2", repository: "team/multi")
        let index = try JSONDecoder().decode(ImageIndex.self, from: Data(raw.body.utf8))
        for child in index.manifests { #expect(cached.contains(child.digest.string)) }
        // api: manifest, config, 3 layers; multi: index, 2 manifests, 2 configs, 2 layers.
        #expect(cached.count == 5 + 7)
        #expect(!output.contains(Self.password))
        // A second run downloads nothing.
        let (again, json2, _) = try w.fetch(m)
        #expect(again == 0)
        #expect(json2?["downloaded"] as? Int == 0)
    }

    @Test("failures: wrong password, unknown repository, unknown tag — exit 1, named, password never shown")
    func failures() throws {
        let w = try World("token")
        try w.write(w.configJSON(password: "wrong-\(Self.password)"), to: "config.json")
        let api = "\(w.registry.host)/team/api:1.4.2"
        var (status, json, output) = try w.fetch(try w.manifest(images: ["ref: \(api)"]))
        #expect(status == 1)
        #expect((Self.images(json)[api]?["error"] as? [String: Any])?["code"] as? String == "unauthorized", "\(output)")
        #expect(!output.contains(Self.password))

        try w.write(w.configJSON(), to: "config.json")
        let noRepo = "\(w.registry.host)/team/nothing:1"
        let noTag = "\(w.registry.host)/team/api:9.9.9"
        (status, json, output) = try w.fetch(try w.manifest(images: ["ref: \(noRepo)", "ref: \(noTag)", "ref: \(api)"]))
        #expect(status == 1)
        let got = Self.images(json)
        for ref in [noRepo, noTag] {
            let e = got[ref]?["error"] as? [String: Any]
            #expect(e?["code"] as? String == "not_found", "\(ref): \(output)")
            #expect((e?["message"] as? String)?.contains(ref) == true)
        }
        // The good image still made it.
        #expect(got[api]?["ok"] as? Bool == true)
        #expect(!output.contains(Self.password))
    }

    @Test("a registry answering 500 then recovering, and a 429 with Retry-After, are retried")
    func retries() throws {
        let w = try World("htpasswd")
        let proxy = try FaultProxy(upstreamPort: w.registry.port)
        defer { proxy.stop() }
        try w.write(w.configJSON(host: proxy.host), to: "config.json")
        let api = "\(proxy.host)/team/api:1.4.2"
        let m = try w.manifest(images: ["ref: \(api)"], host: proxy.host)
        try proxy.set(mode: "500:2")
        var (status, json, output) = try w.fetch(m, cache: w.tmp.sub("c1"))
        #expect(status == 0, "\(output)")
        #expect(Self.images(json)[api]?["digest"] as? String == (try w.registry.digest(of: "team/api", reference: "1.4.2")))
        let restarted = try FaultProxy(upstreamPort: w.registry.port)
        defer { restarted.stop() }
        try w.write(w.configJSON(host: restarted.host), to: "config.json")
        let api2 = "\(restarted.host)/team/api:1.4.2"
        try restarted.set(mode: "429:1")
        let start = Date()
        (status, json, output) = try w.fetch(try w.manifest(images: ["ref: \(api2)"], host: restarted.host), cache: w.tmp.sub("c2"))
        #expect(status == 0, "\(output)")
        #expect(Date().timeIntervalSince(start) >= 1)
        #expect(!output.contains(Self.password))
    }

    @Test("a blob download redirected to another host gets no credentials there")
    func redirectCarriesNoCredentials() throws {
        let w = try World("htpasswd")
        let proxy = try FaultProxy(upstreamPort: w.registry.port)
        defer { proxy.stop() }
        try proxy.setUpstreamAuthorization("Basic " + Data("\(Self.user):\(Self.password)".utf8).base64EncodedString())
        try proxy.set(mode: "redirect")
        try w.write(w.configJSON(host: proxy.host), to: "config.json")
        let api = "\(proxy.host)/team/api:1.4.2"
        let (status, _, output) = try w.fetch(try w.manifest(images: ["ref: \(api)"], host: proxy.host))
        #expect(status == 0, "\(output)")
        #expect(!proxy.redirected.isEmpty)
        #expect(proxy.redirected.allSatisfy { $0.hasSuffix("auth=none") }, "\(proxy.redirected)")
        // The registry's own origin did get credentials.
        #expect(proxy.log.contains { $0.contains("/manifests/") && $0.hasSuffix("auth=yes") })
    }

    @Test("a blob corrupted in the registry's storage fails that image with a digest mismatch and never enters the cache")
    func corruptedBlob() throws {
        let w = try World("htpasswd")
        try w.write(w.configJSON(), to: "config.json")
        let raw = try w.registry.request("GET", "/v2/team/api/manifests/1.4.2", repository: "team/api")
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(raw.body.utf8))
        let victim = manifest.layers[2].digest
        let path = w.registry.blobDataPath(victim.string)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let api = "\(w.registry.host)/team/api:1.4.2"
        let (status, json, output) = try w.fetch(try w.manifest(images: ["ref: \(api)"]))
        #expect(status == 1)
        let e = Self.images(json)[api]?["error"] as? [String: Any]
        #expect(e?["code"] as? String == "digest_mismatch", "\(output)")
        #expect((e?["message"] as? String)?.contains(victim.string) == true)
        #expect(!(try Self.verifiedCache(w.tmp.sub("cache"))).contains(victim.string))
        #expect(listFiles(w.tmp.sub("cache/tmp")).isEmpty)
    }

    @Test("file and HTTP archive sources, with sha256; a wrong sha256 fails naming the source")
    func archiveSources() throws {
        let w = try World("htpasswd")
        let docker = w.tmp.sub("web/debug.tar")
        try FileManager.default.createDirectory(atPath: w.tmp.sub("web"), withIntermediateDirectories: true)
        try skopeo(["copy", "-q", "oci:\(w.layout):api", "docker-archive:\(docker):example.com/tools/debug:2.0"])
        try run(["gzip", "-k", docker])
        let oci = w.tmp.sub("web/server.tar")
        try skopeo(["copy", "-q", "oci:\(w.layout):api", "oci-archive:\(oci):example.com/ml/server:3.1"])
        let ociSum = try sha256(file: oci).hex
        let server = try FileServer(directory: w.tmp.sub("web"))
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/server.tar"
        let good = try w.manifest(images: [
            "ref: example.com/tools/debug:2.0\n    source: file:web/debug.tar.gz",
            "ref: example.com/ml/server:3.1\n    source: \(url)\n    sha256: \(ociSum)",
        ], credentials: nil)
        var (status, json, output) = try w.fetch(good)
        #expect(status == 0, "\(output)")
        let got = Self.images(json)
        #expect(got["example.com/tools/debug:2.0"]?["digest"] as? String == Digest.of(Array(try skopeo(["inspect", "--raw", "docker-archive:\(docker)"]).utf8)).string)
        #expect(got["example.com/ml/server:3.1"]?["digest"] as? String == Digest.of(Array(try skopeo(["inspect", "--raw", "oci-archive:\(oci)"]).utf8)).string)
        _ = try Self.verifiedCache(w.tmp.sub("cache"))

        let wrong = String(repeating: "0", count: 64)
        (status, json, output) = try w.fetch(try w.manifest(images: ["ref: example.com/ml/server:3.1\n    source: \(url)\n    sha256: \(wrong)"], credentials: nil), cache: w.tmp.sub("cache2"))
        #expect(status == 1)
        let e = Self.images(json)["example.com/ml/server:3.1"]?["error"] as? [String: Any]
        #expect(e?["code"] as? String == "digest_mismatch")
        #expect((e?["message"] as? String)?.contains(url) == true, "\(output)")
    }

    @Test("a second fetch on the same cache exits 3 at once; a cache filled before carries a run with the registry gone")
    func lockAndOffline() throws {
        let w = try World("htpasswd")
        try w.write(w.configJSON(), to: "config.json")
        let api = "\(w.registry.host)/team/api:1.4.2"
        let m = try w.manifest(images: ["ref: \(api)"])
        var (status, json, output) = try w.fetch(m)
        #expect(status == 0, "\(output)")
        let digest = Self.images(json)[api]?["digest"] as? String

        // Hold the cache lock from another process.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: try tool("flock"))
        holder.arguments = ["-x", w.tmp.sub("cache/lock"), "sleep", "30"]
        try holder.run()
        defer { holder.terminate(); holder.waitUntilExit() }
        usleep(300_000)
        let start = Date()
        (status, _, output) = try w.fetch(m)
        #expect(status == 3, "\(output)")
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(output.contains("lock"))
        holder.terminate()
        holder.waitUntilExit()

        // The registry goes away: the cached digest carries the run, and the output says so.
        w.registry.stop()
        (status, json, output) = try w.fetch(m)
        #expect(status == 0, "\(output)")
        let got = Self.images(json)[api]
        #expect(got?["digest"] as? String == digest)
        #expect((got?["note"] as? String)?.contains("unreachable") == true)
    }

    @Test("a fetch killed mid-download leaves a cache the next run reuses: verified blobs are not downloaded again")
    func killedRunResumes() throws {
        let w = try World("htpasswd")
        _ = try ImageFactory.make(layout: w.layout, tag: "big", layers: [
            .init(files: 1, fileSize: 1 << 20, gzip: false, random: true),
            .init(files: 1, fileSize: 1 << 20, gzip: false, random: true),
            .init(files: 1, fileSize: 1 << 20, gzip: false, random: true),
        ], salt: "big")
        try w.registry.push(layout: w.layout, tag: "big", to: "team/big", reference: "1")
        let proxy = try FaultProxy(upstreamPort: w.registry.port)
        defer { proxy.stop() }
        try proxy.set(mode: "slow:2000000")
        try w.write(w.configJSON(host: proxy.host), to: "config.json")
        let big = "\(proxy.host)/team/big:1"
        let m = try w.manifest(images: ["ref: \(big)"], host: proxy.host)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try seedBinary())
        p.arguments = ["fetch", "-f", m, "--cache", w.tmp.sub("cache"), "--concurrency", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Kill it once the first layer (over 1 MiB) is committed and another is on its way.
        let deadline = Date().addingTimeInterval(30)
        var committed: [String] = []
        while Date() < deadline {
            committed = listFiles(w.tmp.sub("cache/blobs/sha256")).filter {
                ((try? FileManager.default.attributesOfItem(atPath: w.tmp.sub("cache/blobs/sha256/\($0)"))[.size] as? NSNumber)?.intValue ?? 0) > 1 << 20
            }
            if !committed.isEmpty && !listFiles(w.tmp.sub("cache/tmp")).isEmpty { break }
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(committed.count >= 1 && committed.count < 3, "\(committed)")
        try proxy.set(mode: "pass")
        let (status, json, out) = try w.fetch(m)
        #expect(status == 0, "\(out)")
        let got = Self.images(json)[big]
        let downloaded = got?["downloaded"] as? Int ?? -1
        let total = got?["bytes"] as? Int ?? -1
        // The committed layers were reused: at least one layer's worth less was downloaded.
        #expect(downloaded > 0 && downloaded <= total - (1 << 20), "downloaded \(downloaded) of \(total)")
        #expect(listFiles(w.tmp.sub("cache/tmp")).isEmpty)
        _ = try Self.verifiedCache(w.tmp.sub("cache"))
    }

    @Test("invalid input: a malformed manifest or an unreadable credentials file exits 2 and fetches nothing")
    func invalidInput() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        try "version: 1\nimages:\n  - ref: UPPER/Case:1\n".write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        var r = try run([try seedBinary(), "fetch", "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("cache")], check: false)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("seed.yaml:3"))
        try "version: 1\nimages:\n  - ref: example.com/a:1\nauth:\n  dockerConfig: missing.json\n".write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        r = try run([try seedBinary(), "fetch", "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("cache")], check: false)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("missing.json"))
        #expect(listFiles(tmp.sub("cache")).isEmpty)
    }
}

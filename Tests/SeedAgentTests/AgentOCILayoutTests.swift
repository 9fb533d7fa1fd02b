import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// The real `seed agent` binary with the oci-layout runtime, driven with curl.
@Suite("Agent (oci-layout)", .serialized)
struct AgentOCILayoutTests {
    static let token = "test-token-\(UUID().uuidString)"

    /// A temp dir with a token file and skopeo-made archives of two images that share layers.
    struct Fixture {
        let tmp: TempDir
        let tokenFile: String
        let dockerArchive: String     // example.com/test/a:1
        let ociArchive: String        // example.com/test/a:oci
        let layout: String

        init() throws {
            tmp = try TempDir("seed-agent")
            tokenFile = tmp.sub("token")
            try (AgentOCILayoutTests.token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
            layout = tmp.sub("layout")
            _ = try ImageFactory.make(layout: layout, tag: "a", layers: [
                .init(files: 2, fileSize: 30_000, gzip: true),
                .init(files: 3, fileSize: 50_000, gzip: true, random: true),
            ], salt: "agent-a")
            dockerArchive = tmp.sub("a-docker.tar")
            ociArchive = tmp.sub("a-oci.tar")
            try skopeo(["copy", "-q", "oci:\(layout):a", "docker-archive:\(dockerArchive):example.com/test/a:1"])
            try skopeo(["copy", "-q", "oci:\(layout):a", "oci-archive:\(ociArchive):example.com/test/a:oci"])
        }

        func agent(_ extra: [String] = [], store: String? = nil) throws -> AgentProcess {
            try AgentProcess(store: store ?? tmp.sub("store"), log: tmp.sub("agent-\(UUID().uuidString).log"),
                             args: ["--token-file", tokenFile] + extra)
        }
    }

    static let auth = ["-H", "Authorization: Bearer \(token)"]

    static func put(_ agent: AgentProcess, _ file: String, auth: [String] = AgentOCILayoutTests.auth) throws -> Curl.Response {
        try Curl.request(auth + ["-T", file, "-H", "Content-Type: application/x-tar", agent.url + "/v1/images"])
    }

    /// Makes a 4 MiB image as a docker-archive (example.com/test/big:1), starts a slow curl
    /// upload of it to `agent`, waits until the agent is staging data, and SIGKILLs the agent.
    /// Returns the archive's path.
    static func killDuringUpload(_ f: Fixture, agent: AgentProcess) throws -> String {
        _ = try ImageFactory.make(layout: f.layout, tag: "big", layers: [.init(files: 4, fileSize: 1 << 20, gzip: false, random: true)], salt: "big")
        let big = f.tmp.sub("big.tar")
        try skopeo(["copy", "-q", "oci:\(f.layout):big", "docker-archive:\(big):example.com/test/big:1"])
        let upload = Process()
        upload.executableURL = URL(fileURLWithPath: try tool("curl"))
        upload.arguments = ["-sS", "--limit-rate", "500K", "-T", big, "-H", "Authorization: Bearer \(token)", agent.url + "/v1/images"]
        upload.standardOutput = FileHandle.nullDevice
        upload.standardError = FileHandle.nullDevice
        try upload.run()
        let deadline = Date().addingTimeInterval(20)
        while listFiles(f.tmp.sub("store/tmp")).isEmpty && Date() < deadline { usleep(50_000) }
        #expect(!listFiles(f.tmp.sub("store/tmp")).isEmpty)
        agent.killHard()
        upload.waitUntilExit()
        return big
    }

    static func inventory(_ agent: AgentProcess) throws -> [String: String] {
        let r = try Curl.request(auth + [agent.url + "/v1/inventory"])
        #expect(r.status == 200)
        var out: [String: String] = [:]
        for i in (try r.json()["images"] as? [[String: Any]]) ?? [] {
            if (i["complete"] as? Bool) == true { out[i["ref"] as! String] = i["digest"] as? String }
        }
        return out
    }

    @Test("curl PUT of a docker-archive and an oci-archive loads both at the digests skopeo reports")
    func loadBoth() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent()
        defer { agent.stop() }
        let d1 = try Self.put(agent, f.dockerArchive)
        #expect(d1.status == 200, "\(d1.body)")
        let d2 = try Self.put(agent, f.ociArchive)
        #expect(d2.status == 200, "\(d2.body)")
        let want1 = Digest.of(Array(try skopeo(["inspect", "--raw", "docker-archive:\(f.dockerArchive)"]).utf8))
        let want2 = Digest.of(Array(try skopeo(["inspect", "--raw", "oci-archive:\(f.ociArchive)"]).utf8))
        let inv = try Self.inventory(agent)
        #expect(inv["example.com/test/a:1"] == want1.string)
        #expect(inv["example.com/test/a:oci"] == want2.string)
        // The store is an OCI layout skopeo reads (for OCI media types; skopeo 1.9 does not look
        // up Docker schema-2 manifests by name in a layout).
        #expect(Digest.of(Array(try skopeo(["inspect", "--raw", "oci:\(f.tmp.sub("store")):example.com/test/a:oci"]).utf8)) == want2)
        try skopeo(["copy", "-q", "oci:\(f.tmp.sub("store")):example.com/test/a:oci", "oci:\(f.tmp.sub("copy")):x"])
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        #expect(agent.stop() == 0)
        // The token never appears in the log.
        #expect(!agent.log.contains(Self.token))
    }

    @Test("blobs/missing answers from the store; a second image whose shared layers are left out loads")
    func sharedLayers() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        // Image b shares layer 1 with a and adds one of its own.
        let b = try ImageFactory.make(layout: f.layout, tag: "b", layers: [
            .init(files: 2, fileSize: 30_000, gzip: true),
            .init(files: 1, fileSize: 10_000, gzip: true, random: true),
        ], salt: "agent-a")
        let agent = try f.agent()
        defer { agent.stop() }
        #expect(try Self.put(agent, f.ociArchive).status == 200)
        // Ask which of b's blobs the node lacks.
        let manifestBytes = try Data(contentsOf: URL(fileURLWithPath: f.layout + "/blobs/sha256/" + b.root.digest.hex))
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: manifestBytes)
        let ask = ["digests": [b.root.digest.string, manifest.config.digest.string] + manifest.layers.map(\.digest.string)]
        let r = try Curl.request(Self.auth + ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", String(decoding: try JSONSerialization.data(withJSONObject: ask), as: UTF8.self), agent.url + "/v1/blobs/missing"])
        #expect(r.status == 200)
        let missing = Set((try r.json()["missing"] as? [String]) ?? [])
        // The shared gzip layer is identical in both layouts' skopeo copies only if skopeo kept
        // it; what matters is that the node does not ask for what it has.
        let store = f.tmp.sub("store/blobs/sha256/")
        for d in manifest.layers.map(\.digest) {
            #expect(missing.contains(d.string) == !FileManager.default.fileExists(atPath: store + d.hex))
        }
        // Build b's archive without the layers the node has: tar of a layout holding only the rest.
        let partial = f.tmp.sub("b-partial")
        try FileManager.default.createDirectory(atPath: partial + "/blobs/sha256", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.layout + "/oci-layout", toPath: partial + "/oci-layout")
        var entry = b.root
        entry.annotations = [Descriptor.Annotation.refName: "example.com/test/b:1"]
        try JSONEncoder().encode(ImageIndex(manifests: [entry])).write(to: URL(fileURLWithPath: partial + "/index.json"))
        for d in [b.root.digest, manifest.config.digest] + manifest.layers.map(\.digest) where missing.contains(d.string) || d == b.root.digest || d == manifest.config.digest {
            try FileManager.default.copyItem(atPath: f.layout + "/blobs/sha256/" + d.hex, toPath: partial + "/blobs/sha256/" + d.hex)
        }
        let tar = f.tmp.sub("b-partial.tar")
        try run(["tar", "-C", partial, "-cf", tar, "oci-layout", "index.json", "blobs"])
        let put = try Self.put(agent, tar)
        #expect(put.status == 200, "\(put.body)")
        #expect(try Self.inventory(agent)["example.com/test/b:1"] == b.root.digest.string)
    }

    @Test("no token or a wrong token: 401, nothing written, and the token never logged")
    func unauthorized() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent()
        defer { agent.stop() }
        for auth in [[], ["-H", "Authorization: Bearer wrong"], ["-H", "Authorization: Bearer \(Self.token)x"], ["-H", "Authorization: Basic \(Self.token)"]] {
            let r = try Self.put(agent, f.dockerArchive, auth: auth)
            #expect(r.status == 401)
            #expect(try (r.json()["error"] as? [String: Any])?["code"] as? String == "unauthorized")
            #expect(try Curl.request(auth + [agent.url + "/v1/inventory"]).status == 401)
        }
        #expect(listFiles(f.tmp.sub("store/blobs")).isEmpty)
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        #expect(try Curl.request([agent.url + "/v1/health"]).status == 200)
        agent.stop()
        #expect(!agent.log.contains(Self.token))
    }

    @Test("hostile archives over HTTP: a 4xx JSON error each; the store keeps only verified blobs; the loaded image is untouched")
    func hostile() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent(["--max-uncompressed-bytes", String(32 << 20), "--max-entries", "100"])
        defer { agent.stop() }
        #expect(try Self.put(agent, HostileArchives.dir + "/valid.tar").status == 200)
        let before = try Self.inventory(agent)
        let storeBefore = listFiles(f.tmp.sub("store/blobs"))
        for c in HostileArchives.cases where !c.defaultLimits {
            let r = try Self.put(agent, HostileArchives.dir + "/" + c.file)
            #expect((400..<500).contains(r.status) || r.status == 507, "\(c.file): \(r.status) \(r.body)")
            let code = ((try? r.json())?["error"] as? [String: Any])?["code"] as? String
            #expect(code == c.code.rawValue, "\(c.file): \(r.body)")
        }
        #expect(try Self.inventory(agent) == before)
        #expect(listFiles(f.tmp.sub("store/blobs")) == storeBefore)
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        for name in listFiles(f.tmp.sub("store/blobs/sha256")) {
            #expect(try sha256(file: f.tmp.sub("store/blobs/sha256/\(name)")).hex == name)
        }
        let top = Set(try FileManager.default.contentsOfDirectory(atPath: f.tmp.path))
        #expect(top.isSubset(of: ["store", "token", "layout", "a-docker.tar", "a-oci.tar"]) || top.allSatisfy { $0.hasSuffix(".log") || ["store", "token", "layout", "a-docker.tar", "a-oci.tar"].contains($0) })
    }

    @Test("SIGKILL mid-upload: no partial image, temp files gone at restart, the same push then succeeds")
    func killMidStream() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        var agent = try f.agent()
        let big = try Self.killDuringUpload(f, agent: agent)
        agent = try f.agent()
        defer { agent.stop() }
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        #expect(try Self.inventory(agent)["example.com/test/big:1"] == nil)
        let r = try Self.put(agent, big)
        #expect(r.status == 200, "\(r.body)")
        #expect(try Self.inventory(agent)["example.com/test/big:1"] != nil)
    }

    @Test("DELETE removes an image from the layout and the inventory, and its blobs")
    func delete() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent()
        defer { agent.stop() }
        #expect(try Self.put(agent, f.dockerArchive).status == 200)
        let ref = "example.com/test/a:1"
        let url = agent.url + "/v1/images?ref=" + ref.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try Curl.request(Self.auth + ["-X", "DELETE", url]).status == 200)
        #expect(try Self.inventory(agent)[ref] == nil)
        #expect(try Curl.request(Self.auth + ["-X", "DELETE", url]).status == 404)
        #expect(listFiles(f.tmp.sub("store/blobs")).isEmpty)
        let bad = try Curl.request(Self.auth + ["-X", "DELETE", agent.url + "/v1/images?ref=UPPER/Case"])
        #expect(bad.status == 400)
    }

    @Test("concurrent pushes of different images both succeed")
    func concurrent() async throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent()
        defer { agent.stop() }
        async let a = Task { try Self.put(agent, f.dockerArchive) }.value
        async let b = Task { try Self.put(agent, f.ociArchive) }.value
        let (ra, rb) = try await (a, b)
        #expect(ra.status == 200, "\(ra.body)")
        #expect(rb.status == 200, "\(rb.body)")
        #expect(try Self.inventory(agent).count == 2)
    }

    @Test("health, metrics, and the rules for listening without a token")
    func healthMetricsListen() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent()
        let h = try Curl.request([agent.url + "/v1/health"])
        #expect(h.status == 200)
        #expect(try h.json()["status"] as? String == "ok")
        #expect(try Self.put(agent, f.dockerArchive).status == 200)
        let m = try Curl.request(Self.auth + [agent.url + "/metrics"])
        #expect(m.status == 200)
        #expect(m.body.contains("seed_agent_requests_total"))
        #expect(m.body.contains("seed_agent_images_loaded_total 1"))
        #expect(try Curl.request([agent.url + "/metrics"]).status == 401)
        #expect(agent.stop() == 0)

        // No token on a non-loopback address: refused, exit 2, says why.
        let r = try run([try seedBinary(), "agent", "--listen", "0.0.0.0:0", "--store", f.tmp.sub("s2")], check: false)
        #expect(r.status == 2)
        #expect(r.stderr.contains("without a token"))
        // A second agent on a locked store: exit 3.
        let first = try f.agent()
        defer { first.stop() }
        let second = try run([try seedBinary(), "agent", "--listen", "127.0.0.1:0", "--store", f.tmp.sub("store")], check: false)
        #expect(second.status == 3)
    }

    @Test("an upload that stalls is aborted after the idle timeout and leaves nothing")
    func idleTimeout() throws {
        let f = try Fixture(); defer { f.tmp.remove() }
        let agent = try f.agent(["--idle-timeout", "1"])
        defer { agent.stop() }
        // Announce the whole archive, send its first 3000 bytes, then nothing, keeping the
        // connection open; the answer must come after about a second. (A raw socket, since curl
        // reading a stalled stdin would not show the answer until its input ends.)
        let client = """
            import socket, sys, time
            body = open(sys.argv[1], "rb").read()
            s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
            s.sendall(b"PUT /v1/images HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " + sys.argv[3].encode() + b"\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body[:3000])
            t = time.time(); s.settimeout(10)
            print(round(time.time() - t, 2), s.recv(4096).split(b"\\r\\n")[0].decode())
            """
        let r = try run(["python3", "-c", client, f.dockerArchive, String(agent.port), Self.token])
        let parts = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 1)
        #expect(parts.last == "HTTP/1.1 408 Request Timeout", "\(r.stdout)")
        #expect((Double(parts.first ?? "") ?? 99) < 5, "\(r.stdout)")
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        #expect(listFiles(f.tmp.sub("store/blobs")).isEmpty)
    }
}

import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// `seed sync` and `seed plan` (the real binary) against the real registry and real agents:
/// three with the oci-layout runtime, one with a private containerd.
@Suite("seed sync", .serialized)
struct SyncTests {
    static let token = "sync-token-\(UUID().uuidString)"

    final class Fleet {
        let tmp: TempDir
        let registry: RegistryProcess
        let containerd: ContainerdProcess
        var agents: [AgentProcess] = []
        let layout: String

        init() throws {
            tmp = try TempDir("seed-sync")
            registry = try RegistryProcess(auth: .htpasswd(user: FetchTests.user, password: FetchTests.password))
            containerd = try ContainerdProcess()
            layout = tmp.sub("layout")
            try (SyncTests.token + "\n").write(toFile: tmp.sub("token"), atomically: true, encoding: .utf8)
            for i in 0..<4 { agents.append(try startAgent(i)) }
        }

        func startAgent(_ i: Int) throws -> AgentProcess {
            var args = ["--token-file", tmp.sub("token"), "--name", "node-\(i)"]
            if i == 3 {
                args += ["--runtime", "containerd", "--containerd-address", containerd.address, "--namespace", containerd.namespace, "--snapshotter", "native"]
            }
            return try AgentProcess(store: tmp.sub("store-\(i)"), log: tmp.sub("agent-\(i)-\(UUID().uuidString.prefix(6)).log"), args: args)
        }

        deinit {
            for a in agents { a.stop() }
            containerd.stop()
            registry.stop()
            tmp.remove()
        }

        /// Pushes an image with `layers` (the first `shared` built from the "base" salt) to REPO:TAG.
        @discardableResult
        func push(_ repo: String, _ tag: String, salt: String, extraLayerSize: Int = 200_000) throws -> Descriptor {
            let img = try ImageFactory.make(layout: layout, tag: "\(repo)-\(tag)-\(salt)", layers: [
                .init(files: 2, fileSize: 300_000, gzip: true, random: false),
                .init(files: 1, fileSize: extraLayerSize, gzip: false, random: true),
            ], salt: salt)
            try registry.push(layout: layout, tag: "\(repo)-\(tag)-\(salt)", to: repo, reference: tag)
            return img.root
        }

        func write(images: [String]) throws -> String {
            let auth = Data("\(FetchTests.user):\(FetchTests.password)".utf8).base64EncodedString()
            let config = #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#
            try """
                apiVersion: v1
                kind: Secret
                type: kubernetes.io/dockerconfigjson
                data:
                  .dockerconfigjson: \(Data(config.utf8).base64EncodedString())
                """.write(toFile: tmp.sub("regcred.yaml"), atomically: true, encoding: .utf8)
            var y = "version: 1\nimages:\n"
            for i in images { y += "  - ref: \(registry.host)/\(i)\n" }
            y += "auth:\n  dockerConfig: regcred.yaml\nregistries:\n  \"\(registry.host)\": {insecure: true}\nnodes:\n"
            for (i, a) in agents.enumerated() { y += "  - name: node-\(i)\n    url: \(a.url)\n" }
            y += "agents:\n  tokenFile: token\n"
            try y.write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
            return tmp.sub("seed.yaml")
        }

        func sync(_ extra: [String] = [], command: String = "sync") throws -> (Int32, [String: Any], String) {
            let r = try run([try seedBinary(), command, "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("cache"), "-o", "json"] + extra, check: false)
            let j = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            return (r.status, j, r.stdout + r.stderr)
        }

        /// Per node name: ref → digest of complete images, from the agents themselves.
        func inventories() throws -> [String: [String: String]] {
            var out: [String: [String: String]] = [:]
            for (i, a) in agents.enumerated() {
                let r = try Curl.request(["-H", "Authorization: Bearer \(SyncTests.token)", a.url + "/v1/inventory"])
                var m: [String: String] = [:]
                for img in (try r.json()["images"] as? [[String: Any]]) ?? [] where img["complete"] as? Bool == true {
                    m[img["ref"] as! String] = img["digest"] as? String
                }
                out["node-\(i)"] = m
            }
            return out
        }

        func loadedCount(_ i: Int) throws -> Int {
            let m = try Curl.request(["-H", "Authorization: Bearer \(SyncTests.token)", agents[i].url + "/metrics"]).body
            for line in m.split(separator: "\n") where line.hasPrefix("seed_agent_images_loaded_total ") {
                return Int(Double(line.split(separator: " ").last!)!)
            }
            return 0
        }
    }

    static func node(_ j: [String: Any], _ name: String) -> [String: Any]? {
        (j["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    @Test("sync converges four nodes, then sends nothing; a new tag moves one layer; a moved tag is replaced; a stopped node fails alone")
    func lifecycle() throws {
        let f = try Fleet()
        try f.push("team/api", "1", salt: "v1")
        try f.push("team/worker", "7", salt: "w7")
        _ = try f.write(images: ["team/api:1", "team/worker:7"])
        let api = "\(f.registry.host)/team/api:1"
        let worker = "\(f.registry.host)/team/worker:7"
        let want = [api: try f.registry.digest(of: "team/api", reference: "1"), worker: try f.registry.digest(of: "team/worker", reference: "7")]

        // plan: everything to send, nothing sent.
        var (status, j, out) = try f.sync(command: "plan")
        #expect(status == 0, "\(out)")
        #expect((j["bytes"] as? Int ?? 0) > 0)
        #expect(try f.inventories().values.allSatisfy { $0.isEmpty })

        // 1. Converge.
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        #expect(j["ok"] as? Bool == true)
        for (node, images) in try f.inventories() {
            #expect(images[api] == want[api], "\(node)")
            #expect(images[worker] == want[worker], "\(node)")
        }
        let ctd = try f.containerd.images()
        #expect(ctd[api]?.digest == want[api])
        #expect(ctd[api]?.labels.contains("io.cri-containerd.pinned=pinned") == true)
        #expect(try f.containerd.check()[api] == "complete")
        #expect(!out.contains(FetchTests.password))
        #expect(!out.contains(SyncTests.token))

        // 2. Again: zero bytes, no import anywhere.
        let loaded = try (0..<4).map { try f.loadedCount($0) }
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        #expect(j["bytes"] as? Int == 0)
        #expect(try (0..<4).map { try f.loadedCount($0) } == loaded)

        // 3. A new tag sharing all but one layer: only that layer (plus JSON) moves.
        let extra = 150_000
        try f.push("team/api", "2", salt: "v1", extraLayerSize: extra)
        _ = try f.write(images: ["team/api:1", "team/worker:7", "team/api:2"])
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        for i in 0..<4 {
            let bytes = Self.node(j, "node-\(i)")?["bytes"] as? Int ?? -1
            // The new random layer (an uncompressed tar a little over `extra`) and a few KiB of JSON;
            // far less than the shared 600 KB layer.
            #expect(bytes > extra && bytes < extra + 60_000, "node-\(i) moved \(bytes)")
        }

        // 4. The tag moves in the registry: every node gets the new image under the same name.
        let moved = try f.push("team/api", "1", salt: "v1-moved")
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        for (node, images) in try f.inventories() {
            #expect(images[api] == moved.digest.string, "\(node)")
        }
        #expect(try f.containerd.images()[api]?.digest == moved.digest.string)

        // 5. One agent stopped: exit 1, named; the others converge; restarted, it catches up.
        f.agents[1].stop()
        try f.push("team/worker", "8", salt: "w8")
        _ = try f.write(images: ["team/api:1", "team/worker:7", "team/api:2", "team/worker:8"])
        (status, j, out) = try f.sync()
        #expect(status == 1)
        #expect(Self.node(j, "node-1")?["ok"] as? Bool == false)
        let nodeError = Self.node(j, "node-1")?["error"] as? String ?? ""
        #expect(nodeError.contains("node-1"), "\(nodeError)")
        let w8 = "\(f.registry.host)/team/worker:8"
        for i in [0, 2, 3] { #expect(Self.node(j, "node-\(i)")?["ok"] as? Bool == true) }
        f.agents[1] = try f.startAgent(1)
        _ = try f.write(images: ["team/api:1", "team/worker:7", "team/api:2", "team/worker:8"])
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        #expect(try f.inventories()["node-1"]?[w8] != nil)
    }
}

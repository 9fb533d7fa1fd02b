import Foundation
import SeedOCI
import SeedTestSupport
import SeedWire
import Testing

/// Relay distribution with the real binary: real agents on loopback, a real skopeo archive.
@Suite("seed sync through relays", .serialized)
struct RelayTests {
    static let token = "relay-token-\(UUID().uuidString)"

    final class Chain {
        let tmp: TempDir
        var agents: [AgentProcess] = []
        /// Per node index, a proxy its URL in the manifest goes through.
        var proxies: [Int: StallProxy] = [:]
        let ref = "example.com/relay/app:1"
        let want: String
        let archiveBytes: Int

        /// `count` oci-layout agents and an oci-archive with one random layer of `layer` bytes.
        init(count: Int = 3, layer: Int, args: [Int: [String]] = [:]) throws {
            tmp = try TempDir("seed-relay")
            try (RelayTests.token + "\n").write(toFile: tmp.sub("token"), atomically: true, encoding: .utf8)
            _ = try ImageFactory.make(layout: tmp.sub("layout"), tag: "app", layers: [
                .init(files: 1, fileSize: layer, gzip: false, random: true),
                .init(files: 2, fileSize: 4096),
            ], salt: UUID().uuidString)
            try skopeo(["copy", "-q", "oci:\(tmp.sub("layout")):app", "oci-archive:\(tmp.sub("app.tar")):\(ref)"])
            want = Digest.of(Array(try skopeo(["inspect", "--raw", "oci-archive:\(tmp.sub("app.tar"))"]).utf8)).string
            archiveBytes = (try FileManager.default.attributesOfItem(atPath: tmp.sub("app.tar"))[.size] as? Int) ?? 0
            for i in 0..<count { agents.append(try startAgent(i, args[i] ?? [])) }
            try writeManifest()
        }

        func startAgent(_ i: Int, _ extra: [String] = []) throws -> AgentProcess {
            try AgentProcess(store: tmp.sub("store-\(i)"), log: tmp.sub("agent-\(i)-\(UUID().uuidString.prefix(6)).log"),
                             args: ["--token-file", tmp.sub("token"), "--name", "node-\(i)"] + extra)
        }

        func writeManifest() throws {
            var y = "version: 1\nimages:\n  - ref: \(ref)\n    source: file:app.tar\nnodes:\n"
            for (i, a) in agents.enumerated() { y += "  - name: node-\(i)\n    url: \(proxies[i]?.url ?? a.url)\n" }
            y += "agents:\n  tokenFile: token\n"
            try y.write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        }

        func syncProcess(_ extra: [String]) throws -> (Process, String, String) {
            let out = tmp.sub("out-\(UUID().uuidString.prefix(6))"), err = out + ".err"
            _ = FileManager.default.createFile(atPath: out, contents: nil)
            _ = FileManager.default.createFile(atPath: err, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try seedBinary())
            p.arguments = ["sync", "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("cache"), "-o", "json"] + extra
            p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
            try p.run()
            return (p, out, err)
        }

        func sync(_ extra: [String] = []) throws -> (Int32, [String: Any], String) {
            let (p, out, err) = try syncProcess(extra)
            p.waitUntilExit()
            return finished(p, out, err)
        }

        func finished(_ p: Process, _ out: String, _ err: String) -> (Int32, [String: Any], String) {
            let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            let j = (try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any]) ?? [:]
            return (p.terminationStatus, j, stdout + stderr)
        }

        func digest(_ i: Int) throws -> String? {
            let r = try Curl.request(["-H", "Authorization: Bearer \(RelayTests.token)", agents[i].url + "/v1/inventory"])
            let images = (try r.json()["images"] as? [[String: Any]]) ?? []
            return images.first { $0["ref"] as? String == ref && $0["complete"] as? Bool == true }?["digest"] as? String
        }

        func metric(_ i: Int, _ name: String) throws -> Double {
            let m = try Curl.request(["-H", "Authorization: Bearer \(RelayTests.token)", agents[i].url + "/metrics"]).body
            for line in m.split(separator: "\n") where line.hasPrefix(name + " ") {
                return Double(line.split(separator: " ").last!) ?? 0
            }
            return 0
        }

        deinit {
            for p in proxies.values { p.stop() }
            for a in agents {
                kill(a.process.processIdentifier, SIGCONT)
                a.stop()
            }
            tmp.remove()
        }
    }

    static func node(_ j: [String: Any], _ name: String) -> [String: Any] {
        (j["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == name } ?? [:]
    }

    @Test("a chain of three: one copy leaves the coordinator, every node loads it, every hop is named; then a tree")
    func chainAndTree() throws {
        let c = try Chain(layer: 4 << 20)
        // plan shows the chain it would use, and sends nothing.
        let plan = try run([try seedBinary(), "plan", "-f", c.tmp.sub("seed.yaml"), "--cache", c.tmp.sub("cache"), "-o", "json"], check: false)
        let pj = (try? JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any]) ?? [:]
        #expect(pj["fanout"] as? String == "chain", "\(plan.stdout)\(plan.stderr)")
        let groups = (pj["relay"] as? [[[String: Any]]]) ?? []
        #expect(groups.map { $0.map { "\($0["via"] as? String ?? "-")>\($0["node"] as? String ?? "")" } } == [["->node-0", "node-0>node-1", "node-1>node-2"]])
        let planText = try run([try seedBinary(), "plan", "-f", c.tmp.sub("seed.yaml"), "--cache", c.tmp.sub("cache"), "--fanout", "tree"], check: false)
        #expect(planText.stdout.contains("relay: coordinator → node-0, node-0 → node-1, node-0 → node-2"), "\(planText.stdout)")
        #expect(try c.digest(0) == nil)
        var (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        for i in 0..<3 { #expect(try c.digest(i) == c.want, "node-\(i)") }
        #expect(Self.node(j, "node-0")["via"] is NSNull)
        #expect(Self.node(j, "node-1")["via"] as? String == "node-0")
        #expect(Self.node(j, "node-2")["via"] as? String == "node-1")
        // Measured, not assumed: what left the coordinator is one archive, not three.
        let egress = j["egressBytes"] as? Int ?? -1
        #expect(egress > 4 << 20 && egress < c.archiveBytes + 64 << 10, "egress \(egress), archive \(c.archiveBytes)")
        #expect(try c.metric(0, "seed_agent_relayed_bytes_total") > 4e6)
        #expect(try c.metric(1, "seed_agent_relayed_bytes_total") > 4e6)
        #expect(try c.metric(2, "seed_agent_relayed_bytes_total") == 0)
        for i in 0..<3 { #expect((Self.node(j, "node-\(i)")["bytes"] as? Int ?? 0) > 4 << 20) }
        #expect(out.contains("node-0 → node-1"), "\(out)")

        // Nothing to do: nothing leaves.
        (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        #expect(j["egressBytes"] as? Int == 0)

        // A tree over fresh agents: the head forwards to both others.
        for a in c.agents { a.stop() }
        try? FileManager.default.removeItem(atPath: c.tmp.sub("store-0"))
        try? FileManager.default.removeItem(atPath: c.tmp.sub("store-1"))
        try? FileManager.default.removeItem(atPath: c.tmp.sub("store-2"))
        c.agents = try (0..<3).map { try c.startAgent($0) }
        try c.writeManifest()
        (status, j, out) = try c.sync(["--fanout", "tree"])
        #expect(status == 0, "\(out)")
        for i in 0..<3 { #expect(try c.digest(i) == c.want, "node-\(i)") }
        #expect(Self.node(j, "node-1")["via"] as? String == "node-0")
        #expect(Self.node(j, "node-2")["via"] as? String == "node-0")
        let treeEgress = j["egressBytes"] as? Int ?? -1
        #expect(treeEgress < c.archiveBytes + 64 << 10)
    }

    @Test("a relay killed mid-chain: its downstream node is reattached and loads; the dead one fails by name; restarted, it catches up")
    func relayKilledMidChain() throws {
        let c = try Chain(layer: 32 << 20)
        // node-2 is reached through a proxy that stops reading its upload after 1 MiB: the chain
        // stalls with node-1 mid-stream, and node-1 is killed there.
        let proxy = try StallProxy(upstreamPort: c.agents[2].port)
        c.proxies[2] = proxy
        try c.writeManifest()
        proxy.stall(true)
        let (p, outPath, errPath) = try c.syncProcess(["--fanout", "chain"])
        let deadline = Date().addingTimeInterval(60)
        while !proxy.stalled, p.isRunning, Date() < deadline { usleep(20_000) }
        usleep(300_000)
        #expect(p.isRunning, "the sync finished before node-1 could be killed")
        #expect(try c.metric(1, "seed_agent_uploads_in_flight") == 1)
        c.agents[1].killHard()
        proxy.stall(false)
        p.waitUntilExit()
        var (status, j, out) = c.finished(p, outPath, errPath)
        #expect(status == 1, "\(out)")
        #expect(Self.node(j, "node-0")["ok"] as? Bool == true, "\(out)")
        #expect(Self.node(j, "node-1")["ok"] as? Bool == false)
        let failure = "\(Self.node(j, "node-1")["images"] ?? "")" + "\(Self.node(j, "node-1")["error"] ?? "")"
        #expect(failure.contains("node-1"), "\(failure)")
        #expect(Self.node(j, "node-2")["ok"] as? Bool == true, "\(out)")
        #expect(Self.node(j, "node-2")["via"] is NSNull, "node-2 is reattached to the coordinator")
        #expect(out.contains("reattaching node"), "\(out)")
        #expect(try c.digest(0) == c.want)
        #expect(try c.digest(2) == c.want)
        // The chain's copy plus the reattached node's: two copies, not three.
        let egress = j["egressBytes"] as? Int ?? -1
        #expect(egress < 2 * c.archiveBytes + 128 << 10, "egress \(egress)")

        c.agents[1] = try c.startAgent(1)
        try c.writeManifest()
        (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        #expect(try c.digest(1) == c.want)
        #expect(Self.node(j, "node-0")["images"].map { "\($0)" }?.contains("present") == true)
    }

    @Test("a downstream node that stops reading is abandoned by its relay; the chain above it completes")
    func stalledDownstream() throws {
        let c = try Chain(layer: 16 << 20, args: [1: ["--idle-timeout", "4"], 2: ["--idle-timeout", "4"]])
        let proxy = try StallProxy(upstreamPort: c.agents[2].port)
        c.proxies[2] = proxy
        try c.writeManifest()
        proxy.stall(true)
        let start = Date()
        var (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 1, "\(out)")
        #expect(Date().timeIntervalSince(start) < 40, "the stall held the sync for \(Date().timeIntervalSince(start)) s")
        #expect(Self.node(j, "node-0")["ok"] as? Bool == true, "\(out)")
        #expect(Self.node(j, "node-1")["ok"] as? Bool == true, "\(out)")
        #expect(Self.node(j, "node-2")["ok"] as? Bool == false)
        #expect(try c.digest(1) == c.want)
        #expect(try c.digest(2) == nil)
        #expect(c.agents[1].log.contains("took no data") || "\(Self.node(j, "node-2"))".contains("no data"), "\(out)")

        proxy.stall(false)
        (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        #expect(try c.digest(2) == c.want)
    }

    @Test("a relay whose own load fails still forwards; an agent with --no-relay is sent to directly")
    func localFailureAndNoRelay() throws {
        let c = try Chain(layer: 1 << 20, args: [1: ["--max-body-bytes", "100000"]])
        var (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 1, "\(out)")
        #expect(Self.node(j, "node-1")["ok"] as? Bool == false)
        #expect("\(Self.node(j, "node-1")["images"] ?? "")".contains("too_large") || "\(Self.node(j, "node-1")["images"] ?? "")".contains("limit"), "\(out)")
        #expect(Self.node(j, "node-2")["ok"] as? Bool == true, "\(out)")
        #expect(Self.node(j, "node-2")["via"] as? String == "node-1")
        #expect(try c.digest(1) == nil)
        #expect(try c.digest(2) == c.want)

        c.agents[1].stop()
        c.agents[1] = try c.startAgent(1, ["--no-relay"])
        try c.writeManifest()
        (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        #expect(try c.digest(1) == c.want)
        #expect(Self.node(j, "node-1")["via"] is NSNull)

        // At the head of a chain too: node-0 refuses to relay, both nodes still get the image.
        for i in [0, 2] {
            c.agents[i].stop()
            try? FileManager.default.removeItem(atPath: c.tmp.sub("store-\(i)"))
        }
        c.agents[0] = try c.startAgent(0, ["--no-relay"])
        c.agents[2] = try c.startAgent(2)
        try c.writeManifest()
        (status, j, out) = try c.sync(["--fanout", "chain"])
        #expect(status == 0, "\(out)")
        #expect(try c.digest(0) == c.want)
        #expect(try c.digest(2) == c.want)
    }

    @Test("the agent checks the token and the relay header before it forwards anything")
    func agentRefusesBadRelays() throws {
        let c = try Chain(count: 2, layer: 100_000)
        let hop = RelayHop(name: "node-1", url: c.agents[1].url, load: nil, via: nil)
        let good = try RelayPlan(load: nil, hops: [hop]).encoded()
        func put(_ header: String, token: String = RelayTests.token) throws -> Curl.Response {
            try Curl.request(["-X", "PUT", "-T", c.tmp.sub("app.tar"), "-H", "Authorization: Bearer \(token)", "-H", "Seed-Relay: \(header)",
                              c.agents[0].url + "/v1/images"])
        }
        var r = try put(good, token: "wrong")
        #expect(r.status == 401)
        let bad: [(RelayPlan, String)] = [
            (RelayPlan(load: nil, hops: [RelayHop(name: "x", url: c.agents[1].url + "/v1/images", load: nil, via: nil)]), "agent URL"),
            (RelayPlan(load: nil, hops: [RelayHop(name: "x", url: "http://user:pw@127.0.0.1:1", load: nil, via: nil)]), "agent URL"),
            (RelayPlan(load: nil, hops: [RelayHop(name: "x", url: "file:///etc/passwd", load: nil, via: nil)]), "agent URL"),
            (RelayPlan(load: nil, hops: [RelayHop(name: "x", url: c.agents[1].url, load: nil, via: 0)]), "earlier hop"),
            (RelayPlan(load: ["not a ref"], hops: [hop]), "invalid"),
            (RelayPlan(load: nil, hops: [hop, RelayHop(name: "again", url: c.agents[1].url, load: nil, via: nil)]), "twice"),
        ]
        for (plan, message) in bad {
            r = try put(try plan.encoded())
            #expect(r.status == 400, "\(plan): \(r.body)")
            #expect(r.body.contains(message), "\(r.body)")
        }
        r = try put("%%%")
        #expect(r.status == 400)
        // Nothing reached node-1, nothing loaded on node-0.
        #expect(try c.metric(1, "seed_agent_uploads_in_flight") == 0)
        #expect(!c.agents[1].log.contains("path=/v1/images"), "\(c.agents[1].log)")
        #expect(try c.digest(0) == nil)

        // An agent without a token (loopback only) loads plain uploads but does not relay.
        let open = try AgentProcess(store: c.tmp.sub("store-open"), log: c.tmp.sub("agent-open.log"), args: ["--name", "open"])
        defer { open.stop() }
        r = try Curl.request(["-X", "PUT", "-T", c.tmp.sub("app.tar"), "-H", "Seed-Relay: \(good)", open.url + "/v1/images"])
        #expect(r.status == 403, "\(r.body)")
        #expect(r.body.contains("token"), "\(r.body)")

        // The same upload with a good header loads on both, by hand with curl.
        r = try put(good)
        #expect(r.status == 200, "\(r.body)")
        let answer = try JSONDecoder().decode(RelayResponse.self, from: Data(r.body.utf8))
        #expect(answer.error == nil)
        #expect(answer.relay.map(\.node) == ["node-1"])
        #expect(answer.relay.first?.error == nil)
        #expect(try c.digest(0) == c.want)
        #expect(try c.digest(1) == c.want)
    }

    @Test("relay plans: subtrees keep their shape")
    func planChildren() throws {
        // head → a → c, head → b → d → e
        let hops = [
            RelayHop(name: "a", url: "http://a:1", load: nil, via: nil),
            RelayHop(name: "b", url: "http://b:1", load: ["example.com/x:1"], via: nil),
            RelayHop(name: "c", url: "http://c:1", load: nil, via: 0),
            RelayHop(name: "d", url: "http://d:1", load: nil, via: 1),
            RelayHop(name: "e", url: "http://e:1", load: nil, via: 3),
        ]
        let plan = RelayPlan(load: nil, hops: hops)
        let decoded = try RelayPlan.decode(try plan.encoded())
        #expect(decoded == plan)
        let kids = plan.children()
        #expect(kids.map(\.hop.name) == ["a", "b"])
        #expect(kids[0].plan.hops.map(\.name) == ["c"])
        #expect(kids[0].plan.hops[0].via == nil)
        #expect(kids[1].plan.load == ["example.com/x:1"])
        #expect(kids[1].plan.hops.map(\.name) == ["d", "e"])
        #expect(kids[1].plan.hops.map(\.via) == [nil, 0])
        #expect(kids[1].plan.children()[0].plan.hops.map(\.name) == ["e"])
    }
}

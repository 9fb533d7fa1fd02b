import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// `seed status` (the real binary): every state and exit code, on the fleet of SyncTests.
@Suite("seed status", .serialized)
struct StatusTests {
    static func status(_ f: SyncTests.Fleet, _ extra: [String] = []) throws -> (Int32, [String: Any], String) {
        let r = try run([try seedBinary(), "status", "-f", f.tmp.sub("seed.yaml"), "--cache", f.tmp.sub("cache"), "-o", "json"] + extra, check: false)
        let j = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        return (r.status, j, r.stdout + r.stderr)
    }

    static func state(_ j: [String: Any], node: String, ref: String) -> String? {
        let n = (j["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == node }
        return (n?["images"] as? [[String: Any]])?.first { $0["ref"] as? String == ref }?["state"] as? String
    }

    @Test("present, missing, incomplete (layout and containerd), stale, extra, unreachable; repaired by sync")
    func states() throws {
        let f = try SyncTests.Fleet()
        try f.push("team/api", "1", salt: "s1")
        _ = try f.write(images: ["team/api:1"])
        let api = "\(f.registry.host)/team/api:1"
        var (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        (status, j, out) = try Self.status(f)
        #expect(status == 0, "\(out)")
        #expect(j["inSync"] as? Bool == true)
        #expect((j["summary"] as? [String: Any])?["present"] as? Int == 4)

        // missing: deleted on node-0.
        let del = try Curl.request(["-X", "DELETE", "-H", "Authorization: Bearer \(SyncTests.token)",
                                    f.agents[0].url + "/v1/images?ref=" + api.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!])
        #expect(del.status == 200)
        // incomplete: a layer removed from node-1's layout, and from containerd's content store on node-3.
        let raw = try f.registry.request("GET", "/v2/team/api/manifests/1", repository: "team/api")
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(raw.body.utf8))
        let layer = manifest.layers[1].digest
        try FileManager.default.removeItem(atPath: f.tmp.sub("store-1/blobs/sha256/\(layer.hex)"))
        try f.containerd.ctr(["content", "rm", layer.string])
        // extra: something the manifest does not list, on node-2.
        let extraArchive = f.tmp.sub("extra.tar")
        try skopeo(["copy", "-q", "oci:\(f.layout):team/api-1-s1", "oci-archive:\(extraArchive):example.com/not/listed:1"])
        #expect(try Curl.request(["-H", "Authorization: Bearer \(SyncTests.token)", "-T", extraArchive, f.agents[2].url + "/v1/images"]).status == 200)

        (status, j, out) = try Self.status(f)
        #expect(status == 1)
        #expect(Self.state(j, node: "node-0", ref: api) == "missing", "\(out)")
        #expect(Self.state(j, node: "node-1", ref: api) == "incomplete", "\(out)")
        #expect(Self.state(j, node: "node-2", ref: api) == "present")
        #expect(Self.state(j, node: "node-3", ref: api) == "incomplete", "\(out)")
        let node2 = (j["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "node-2" }
        #expect((node2?["extra"] as? [String]) == ["example.com/not/listed:1"])

        // A sync repairs all of it.
        (status, j, out) = try f.sync()
        #expect(status == 0, "\(out)")
        (status, j, out) = try Self.status(f)
        // Extra images are reported, not drift.
        #expect(status == 0, "\(out)")
        #expect(Self.state(j, node: "node-0", ref: api) == "present")
        #expect(Self.state(j, node: "node-1", ref: api) == "present")
        #expect(Self.state(j, node: "node-3", ref: api) == "present")
        #expect(try f.containerd.check()[api] == "complete")

        // stale: the tag moves in the registry.
        try f.push("team/api", "1", salt: "s2")
        (status, j, out) = try Self.status(f)
        #expect(status == 1)
        for i in 0..<4 { #expect(Self.state(j, node: "node-\(i)", ref: api) == "stale", "\(out)") }
        // Offline, the cache's record (the old digest) is the reference: present again.
        (status, j, out) = try Self.status(f, ["--offline"])
        #expect(Self.state(j, node: "node-0", ref: api) == "present", "\(out)")

        // unreachable: a stopped agent.
        f.agents[0].stop()
        (status, j, out) = try Self.status(f, ["--offline"])
        #expect(status == 1)
        let node0 = (j["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == "node-0" }
        #expect(node0?["reachable"] as? Bool == false)
        #expect(node0?["error"] is String)
        #expect((node0?["images"] as? [Any])?.isEmpty == true)

        // Text output: a table and a summary line.
        let text = try run([try seedBinary(), "status", "-f", f.tmp.sub("seed.yaml"), "--cache", f.tmp.sub("cache"), "--offline"], check: false)
        #expect(text.stdout.contains("unreachable"))
        #expect(text.stdout.contains("status: drift"))
    }
}

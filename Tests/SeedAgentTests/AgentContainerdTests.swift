import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// The real `seed agent` binary with the containerd runtime, against a private containerd the
/// test starts (its own root, state and socket in a temp dir).
@Suite("Agent (containerd)", .serialized)
struct AgentContainerdTests {
    static let token = AgentOCILayoutTests.token
    static let auth = AgentOCILayoutTests.auth

    struct Fixture {
        let base: AgentOCILayoutTests.Fixture
        let containerd: ContainerdProcess
        var tmp: TempDir { base.tmp }

        init() throws {
            base = try AgentOCILayoutTests.Fixture()
            containerd = try ContainerdProcess()
        }

        func agent(store: String? = nil) throws -> AgentProcess {
            try base.agent(["--runtime", "containerd", "--containerd-address", containerd.address,
                            "--namespace", containerd.namespace, "--snapshotter", "native"], store: store)
        }

        func stop() {
            containerd.stop()
            tmp.remove()
        }
    }

    @Test("docker-archive and oci-archive load into containerd at skopeo's digests, complete, unpacked, pinned")
    func load() throws {
        let f = try Fixture(); defer { f.stop() }
        let agent = try f.agent()
        defer { agent.stop() }
        let r1 = try AgentOCILayoutTests.put(agent, f.base.dockerArchive)
        #expect(r1.status == 200, "\(r1.body)")
        let r2 = try AgentOCILayoutTests.put(agent, f.base.ociArchive)
        #expect(r2.status == 200, "\(r2.body)")
        let want1 = Digest.of(Array(try skopeo(["inspect", "--raw", "docker-archive:\(f.base.dockerArchive)"]).utf8))
        let want2 = Digest.of(Array(try skopeo(["inspect", "--raw", "oci-archive:\(f.base.ociArchive)"]).utf8))
        let images = try f.containerd.images()
        #expect(images["example.com/test/a:1"]?.digest == want1.string)
        #expect(images["example.com/test/a:oci"]?.digest == want2.string)
        #expect(images["example.com/test/a:1"]?.labels.contains("io.cri-containerd.pinned=pinned") == true)
        #expect(images["example.com/test/a:oci"]?.labels.contains("io.cri-containerd.pinned=pinned") == true)
        // Only the real names: no temporary import names left behind.
        #expect(Set(images.keys) == ["example.com/test/a:1", "example.com/test/a:oci"])
        let check = try f.containerd.check()
        #expect(check["example.com/test/a:1"] == "complete")
        #expect(check["example.com/test/a:oci"] == "complete")
        let unpacked = try f.containerd.ctr(["images", "check", "--snapshotter", "native"])
        #expect(unpacked.split(separator: "\n").dropFirst().allSatisfy { $0.hasSuffix("true") || $0.hasSuffix("true ") }, "\(unpacked)")
        // The inventory reports them; the agent keeps no second copy of the layers.
        let inv = try AgentOCILayoutTests.inventory(agent)
        #expect(inv["example.com/test/a:1"] == want1.string)
        #expect(inv["example.com/test/a:oci"] == want2.string)
        #expect(listFiles(f.tmp.sub("store/blobs")).isEmpty)
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
    }

    @Test("layers containerd already has are not asked for, and an archive without them loads")
    func sharedLayers() throws {
        let f = try Fixture(); defer { f.stop() }
        let agent = try f.agent()
        defer { agent.stop() }
        #expect(try AgentOCILayoutTests.put(agent, f.base.ociArchive).status == 200)
        // The same image under a new name, archive holding only index, manifest and config.
        let raw = Array(try skopeo(["inspect", "--raw", "oci-archive:\(f.base.ociArchive)"]).utf8)
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: Data(raw))
        let layers = manifest.layers.map(\.digest.string)
        let ask = try JSONSerialization.data(withJSONObject: ["digests": layers])
        let m = try Curl.request(Self.auth + ["-X", "POST", "--data-binary", String(decoding: ask, as: UTF8.self), agent.url + "/v1/blobs/missing"])
        #expect(m.status == 200)
        #expect((try m.json()["missing"] as? [String]) == [])
        let dir = f.tmp.sub("partial")
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        try #"{"imageLayoutVersion":"1.0.0"}"#.write(toFile: dir + "/oci-layout", atomically: true, encoding: .utf8)
        let md = Digest.of(raw)
        try Data(raw).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + md.hex))
        let config = Array(try skopeo(["inspect", "--raw", "--config", "oci-archive:\(f.base.ociArchive)"]).utf8)
        #expect(Digest.of(config) == manifest.config.digest)
        try Data(config).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + manifest.config.digest.hex))
        let entry = Descriptor(mediaType: MediaType.ociManifest, digest: md, size: Int64(raw.count), annotations: [Descriptor.Annotation.refName: "example.com/test/again:2"])
        try JSONEncoder().encode(ImageIndex(manifests: [entry])).write(to: URL(fileURLWithPath: dir + "/index.json"))
        let tar = f.tmp.sub("partial.tar")
        try run(["tar", "-C", dir, "-cf", tar, "oci-layout", "index.json", "blobs"])
        let r = try AgentOCILayoutTests.put(agent, tar)
        #expect(r.status == 200, "\(r.body)")
        #expect(try f.containerd.images()["example.com/test/again:2"]?.digest == md.string)
        #expect(try f.containerd.check()["example.com/test/again:2"] == "complete")
    }

    @Test("a layer missing from both the archive and containerd: 409 naming it, nothing visible")
    func missingLayer() throws {
        let f = try Fixture(); defer { f.stop() }
        let agent = try f.agent()
        defer { agent.stop() }
        let r = try AgentOCILayoutTests.put(agent, HostileArchives.dir + "/missing-blob.tar")
        #expect(r.status == 409)
        #expect(((try r.json()["error"] as? [String: Any])?["missing"] as? [String])?.count == 1)
        #expect(try f.containerd.images().isEmpty)
    }

    @Test("SIGKILL mid-upload: nothing in containerd, the same push then succeeds")
    func killMidStream() throws {
        let f = try Fixture(); defer { f.stop() }
        var agent = try f.agent()
        let big = try AgentOCILayoutTests.killDuringUpload(f.base, agent: agent)
        #expect(try f.containerd.images().isEmpty)
        agent = try f.agent()
        defer { agent.stop() }
        #expect(listFiles(f.tmp.sub("store/tmp")).isEmpty)
        let r = try AgentOCILayoutTests.put(agent, big)
        #expect(r.status == 200, "\(r.body)")
        #expect(try f.containerd.check()["example.com/test/big:1"] == "complete")
    }

    @Test("DELETE removes the image from containerd and the inventory")
    func delete() throws {
        let f = try Fixture(); defer { f.stop() }
        let agent = try f.agent()
        defer { agent.stop() }
        #expect(try AgentOCILayoutTests.put(agent, f.base.dockerArchive).status == 200)
        let url = agent.url + "/v1/images?ref=" + "example.com/test/a:1".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try Curl.request(Self.auth + ["-X", "DELETE", url]).status == 200)
        #expect(try f.containerd.images()["example.com/test/a:1"] == nil)
        #expect(try AgentOCILayoutTests.inventory(agent)["example.com/test/a:1"] == nil)
        #expect(try Curl.request(Self.auth + ["-X", "DELETE", url]).status == 404)
    }

    @Test("a retagged image replaces the old one under the same name; an unrelated image is untouched")
    func replace() throws {
        let f = try Fixture(); defer { f.stop() }
        let agent = try f.agent()
        defer { agent.stop() }
        #expect(try AgentOCILayoutTests.put(agent, f.base.ociArchive).status == 200)
        #expect(try AgentOCILayoutTests.put(agent, f.base.dockerArchive).status == 200)
        _ = try ImageFactory.make(layout: f.base.layout, tag: "a2", layers: [.init(files: 1, fileSize: 1000, gzip: true)], salt: "v2")
        let v2 = f.tmp.sub("v2.tar")
        try skopeo(["copy", "-q", "oci:\(f.base.layout):a2", "oci-archive:\(v2):example.com/test/a:oci"])
        let want = Digest.of(Array(try skopeo(["inspect", "--raw", "oci-archive:\(v2)"]).utf8))
        let before = try f.containerd.images()["example.com/test/a:1"]?.digest
        #expect(try AgentOCILayoutTests.put(agent, v2).status == 200)
        let images = try f.containerd.images()
        #expect(images["example.com/test/a:oci"]?.digest == want.string)
        #expect(images["example.com/test/a:1"]?.digest == before)
    }
}

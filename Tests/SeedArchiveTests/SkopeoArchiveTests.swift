import Foundation
import NIOCore
import SeedArchive
import SeedOCI
import SeedStore
import SeedTestSupport
import Testing

/// Archives made by skopeo from layouts the tests build, read into a store: every digest must
/// equal what `skopeo inspect --raw` reports, and every blob must hash to its name.
@Suite("Reading skopeo-made archives", .serialized)
struct SkopeoArchiveTests {
    /// Builds: image `a` (three layers: gzip, uncompressed, gzip) and multi-platform image `m`.
    static func fixtures(_ tmp: TempDir) throws -> (a: ImageFactory.Image, m: ImageFactory.Image) {
        let layout = tmp.sub("layout")
        let a = try ImageFactory.make(layout: layout, tag: "a", layers: [
            .init(files: 3, fileSize: 20_000, gzip: true),
            .init(files: 2, fileSize: 5_000, gzip: false),
            .init(files: 4, fileSize: 70_000, gzip: true, random: true),
        ], salt: "a")
        let m = try ImageFactory.make(layout: layout, tag: "m", platforms: [amd64, arm64], layers: [
            .init(files: 2, fileSize: 3000, gzip: true),
            .init(files: 1, fileSize: 9000, gzip: false),
        ], salt: "m")
        return (a, m)
    }

    @Test("oci-archive written by skopeo: digests equal skopeo inspect --raw")
    func ociArchive() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (a, _) = try Self.fixtures(tmp)
        let archive = tmp.sub("a.tar")
        try skopeo(["copy", "-q", "oci:\(a.layout):a", "oci-archive:\(archive):example.com/test/a:1"])
        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(archive, into: store)
        let (digest, doc) = try skopeoRaw("oci-archive:\(archive)")
        #expect(got.format == .oci)
        #expect(got.images.count == 1)
        let image = try #require(got.images.first)
        #expect(image.root.digest == digest)
        #expect(image.names == [try Reference("example.com/test/a:1")])
        guard case .manifest(let m) = doc else { Issue.record("expected a manifest"); return }
        #expect(Set(image.blobs.map(\.digest)) == Set([digest, m.config.digest] + m.layers.map(\.digest)))
        #expect(try verifyAll(store) == 2 + m.layers.count)
        #expect(listFiles(store.tmpDir).isEmpty)
    }

    @Test("docker-archive written by skopeo (layer symlinks): digests equal skopeo inspect --raw")
    func dockerArchive() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (a, _) = try Self.fixtures(tmp)
        let archive = tmp.sub("d.tar")
        try skopeo(["copy", "-q", "oci:\(a.layout):a", "docker-archive:\(archive):example.com/test/a:1"])
        // skopeo writes legacy <id>/layer.tar entries as symlinks to the real layer files.
        #expect(try run(["tar", "-tvf", archive]).stdout.contains("layer.tar -> "))
        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(archive, into: store)
        let (digest, doc) = try skopeoRaw("docker-archive:\(archive)")
        #expect(got.format == .docker)
        let image = try #require(got.images.first)
        #expect(image.root.digest == digest)
        #expect(image.names == [try Reference("example.com/test/a:1")])
        guard case .manifest(let m) = doc else { Issue.record("expected a manifest"); return }
        #expect(Set(image.blobs.map(\.digest)) == Set([digest, m.config.digest] + m.layers.map(\.digest)))
        #expect(try verifyAll(store) == 2 + m.layers.count)
        // Legacy entries (<id>/json, VERSION, repositories) are not blobs of the image: gone.
        #expect(listFiles(store.tmpDir).isEmpty)
    }

    @Test("multi-platform oci-archive: the index digest, every platform's manifest, or only one platform")
    func multiPlatform() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (_, m) = try Self.fixtures(tmp)
        let archive = tmp.sub("m.tar")
        try skopeo(["copy", "-q", "--all", "oci:\(m.layout):m", "oci-archive:\(archive):example.com/test/m:2"])
        let (digest, doc) = try skopeoRaw("oci-archive:\(archive)")
        guard case .index(let index) = doc else { Issue.record("expected an index"); return }
        #expect(index.manifests.count == 2)

        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(archive, into: store)
        let image = try #require(got.images.first)
        #expect(image.root.digest == digest)
        #expect(MediaType.isIndex(image.root.mediaType))
        for child in index.manifests {
            #expect(image.blobs.contains { $0.digest == child.digest })
        }
        try verifyAll(store)

        // Only arm64 wanted: an archive with just the arm64 subtree is complete for arm64.
        let armOnly = tmp.sub("arm.tar")
        try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store, platform: arm64), to: armOnly)
        let fresh = try BlobStore(root: tmp.sub("fresh"))
        let partial = try await readArchive(armOnly, into: fresh, options: .init(platform: arm64))
        let armManifest = try #require(index.manifests.first { $0.platform.map(arm64.matches) ?? false })
        let amdManifest = try #require(index.manifests.first { $0.platform.map(amd64.matches) ?? false })
        #expect(partial.images.first?.blobs.contains { $0.digest == armManifest.digest } == true)
        #expect(!fresh.contains(amdManifest.digest))
        // Without a platform, the same archive is incomplete.
        let other = try BlobStore(root: tmp.sub("other"))
        await #expect(throws: SeedError.self) { try await readArchive(armOnly, into: other) }
        #expect(other.list().isEmpty)
    }

    @Test("a layout tarred as is (uncompressed and gzip layers side by side)", arguments: ["", "gzip", "zstd", "xz"])
    func tarredLayout(compressor: String) async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (a, m) = try Self.fixtures(tmp)
        var archive = tmp.sub("layout.tar")
        try run(["tar", "--exclude=.work-*", "-C", a.layout, "-cf", archive, "oci-layout", "index.json", "blobs"])
        let digestA = try skopeoRaw("oci-archive:\(archive):a").digest
        #expect(digestA == a.root.digest)
        if !compressor.isEmpty {
            try run([compressor, "-q", archive])
            archive += ["gzip": ".gz", "zstd": ".zst", "xz": ".xz"][compressor]!
        }
        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(archive, into: store)
        #expect(Set(got.images.map(\.root.digest)) == [a.root.digest, m.root.digest])
        // Bare tags in ref.name are layout-local names, not image references.
        #expect(got.images.allSatisfy { $0.names.isEmpty })
        try verifyAll(store)
    }
}

import Foundation
import NIOCore
import SeedArchive
import SeedOCI
import SeedStore
import SeedTestSupport
import Testing

/// Archives seed writes: accepted by skopeo and tar, byte-exact at the end, re-readable.
@Suite("Writing oci-archives", .serialized)
struct WriterTests {
    /// A store holding image `a` under example.com/test/a:1, read from a skopeo-made
    /// docker-archive (a Docker schema-2 manifest) or oci-archive (an OCI manifest).
    static func loaded(_ tmp: TempDir, format: String = "docker-archive") async throws -> (BlobStore, ArchivedImage) {
        let (a, _) = try SkopeoArchiveTests.fixtures(tmp)
        let archive = tmp.sub("src.tar")
        try skopeo(["copy", "-q", "oci:\(a.layout):a", "\(format):\(archive):example.com/test/a:1"])
        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(archive, into: store)
        return (store, got.images[0])
    }

    // skopeo 1.9 looks up names in an OCI layout only among OCI media types, so the interop
    // check uses an image with an OCI manifest; the Docker schema-2 case is covered by the rest.
    @Test("skopeo inspects and copies what we write; tar lists it cleanly; nothing after the end marker")
    func acceptedBySkopeoAndTar() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (store, image) = try await Self.loaded(tmp, format: "oci-archive")
        let out = tmp.sub("out.tar")
        try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store), to: out)

        let raw = try skopeoRaw("oci-archive:\(out):example.com/test/a:1")
        #expect(raw.digest == image.root.digest)
        try skopeo(["copy", "-q", "oci-archive:\(out):example.com/test/a:1", "oci:\(tmp.sub("copy")):x"])
        #expect(try skopeoRaw("oci:\(tmp.sub("copy")):x").digest == image.root.digest)

        let listing = try run(["tar", "-tvf", out])
        #expect(listing.stderr.isEmpty)
        #expect(listing.stdout.contains("index.json"))
        // The archive ends exactly after the two zero blocks of the end-of-archive marker.
        let end = try run(["python3", "-c", """
            import tarfile, sys, os
            t = tarfile.open(sys.argv[1]); m = t.getmembers()[-1]
            print(m.offset_data + (m.size + 511) // 512 * 512 + 1024, os.path.getsize(sys.argv[1]))
            """, out]).stdout.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        #expect(end[0] == end[1])

        // And our own reader takes it back, same digests.
        let again = try BlobStore(root: tmp.sub("again"))
        let back = try await readArchive(out, into: again)
        #expect(back.images.map(\.root) == [image.root])
        #expect(back.images[0].names == image.names)
        #expect(Set(again.list().keys) == Set(image.blobs.map(\.digest)))
    }

    @Test("blobs the receiver has are left out; a receiver without them reports exactly those")
    func omit() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (store, image) = try await Self.loaded(tmp)
        let layers = Set(image.blobs.filter { $0.mediaType == MediaType.dockerLayerGzip }.map(\.digest))
        #expect(layers.count == 3)
        let bytes = try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store, omit: layers))
        let full = try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store))
        #expect(bytes.count < full.count)

        let empty = try BlobStore(root: tmp.sub("empty"))
        do {
            _ = try await ImageArchiveReader.read(BytesChunks(bytes), into: empty)
            Issue.record("an archive without its layers was accepted by a store without them")
        } catch let e as SeedError {
            #expect(e.code == .missingBlobs)
            for d in layers { #expect(e.message.contains(d.string)) }
        }
        #expect(empty.list().isEmpty)
        #expect(listFiles(empty.tmpDir).isEmpty)

        // The original store has the layers: the same archive completes the image there.
        let got = try await ImageArchiveReader.read(BytesChunks(bytes), into: store)
        #expect(got.images[0].root == image.root)
    }

    @Test("compressed output reads back", arguments: ArchiveCompression.allCases)
    func compressed(compression: ArchiveCompression) async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (store, image) = try await Self.loaded(tmp)
        let bytes = try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store, compression: compression))
        let other = try BlobStore(root: tmp.sub("other"))
        let got = try await ImageArchiveReader.read(BytesChunks(bytes, chunkSize: 4096), into: other)
        #expect(got.images[0].root == image.root)
        try verifyAll(other)
    }

    @Test("a consumer that stops early stops the writer")
    func earlyStop() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (store, image) = try await Self.loaded(tmp)
        let stream = OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store)
        var n = 0
        for try await _ in stream { n += 1; if n == 1 { break } }
        #expect(n == 1)
    }

    @Test("a blob missing from the store fails the stream before any bytes")
    func missingInStore() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let (store, image) = try await Self.loaded(tmp)
        let layer = image.blobs.last!
        store.remove(layer.digest)
        await #expect(throws: SeedError.self) {
            _ = try await collect(OCIArchiveWriter.write([.init(names: image.names, root: image.root)], from: store))
        }
    }
}

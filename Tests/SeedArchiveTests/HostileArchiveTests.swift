import Foundation
import NIOCore
import SeedArchive
import SeedOCI
import SeedStore
import SeedTestSupport
import Testing

/// Hostile archives (written by Fixtures/hostile.py): each is refused with the right error,
/// naming what is wrong, and afterwards the store holds exactly what it held before, its
/// temporary area is empty, and nothing exists outside it.
@Suite("Hostile archives")
struct HostileArchiveTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var file: String
        var code: SeedError.Code
        var mentions: String
        var limits = HostileArchiveTests.limits
        var testDescription: String { file }
    }

    static let cases: [Case] = [
        .init(file: "dotdot.tar", code: .unsafeEntry, mentions: "../evil"),
        .init(file: "dotdot-inside.tar", code: .unsafeEntry, mentions: "blobs/../../evil"),
        .init(file: "absolute.tar", code: .unsafeEntry, mentions: "/tmp/seed-evil"),
        .init(file: "symlink-out.tar", code: .unsafeEntry, mentions: "\"blobs/evil\""),
        .init(file: "symlink-absolute.tar", code: .unsafeEntry, mentions: "/etc/passwd"),
        .init(file: "hardlink-out.tar", code: .unsafeEntry, mentions: "\"evil\""),
        .init(file: "hardlink-absolute.tar", code: .unsafeEntry, mentions: "/etc/passwd"),
        .init(file: "chardev.tar", code: .unsafeEntry, mentions: "\"dev/null\": device"),
        .init(file: "blockdev.tar", code: .unsafeEntry, mentions: "\"dev/sda\": device"),
        .init(file: "fifo.tar", code: .unsafeEntry, mentions: "\"evil-fifo\": fifo"),
        .init(file: "duplicate-index.tar", code: .malformedArchive, mentions: "\"index.json\" appears twice"),
        .init(file: "duplicate-file.tar", code: .malformedArchive, mentions: "\"extra/layer.tar\" appears twice"),
        .init(file: "blob-mismatch.tar", code: .digestMismatch, mentions: "entry \"blobs/sha256/"),
        .init(file: "layer-corrupted.tar", code: .digestMismatch, mentions: "entry \"blobs/sha256/"),
        .init(file: "truncated-boundary.tar", code: .malformedArchive, mentions: "end-of-archive marker is missing"),
        .init(file: "truncated-mid-entry.tar", code: .malformedArchive, mentions: "truncated"),
        .init(file: "truncated-mid-header.tar", code: .malformedArchive, mentions: "truncated"),
        .init(file: "truncated.tar.gz", code: .malformedArchive, mentions: "decompress"),
        .init(file: "trailing-garbage.tar", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "trailing-garbage-after-marker.tar", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "trailing-garbage.tar.gz", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "not-a-tar.bin", code: .malformedArchive, mentions: "not a tar archive"),
        .init(file: "text.txt", code: .malformedArchive, mentions: "not a tar archive"),
        .init(file: "empty.tar", code: .malformedArchive, mentions: "empty archive"),
        .init(file: "only-end-marker.tar", code: .malformedArchive, mentions: "neither index.json nor manifest.json"),
        .init(file: "bomb.tar.gz", code: .tooLarge, mentions: "expands past the limit"),
        .init(file: "nul-in-name.tar", code: .unsafeEntry, mentions: "nul"),
        .init(file: "nul-in-pax-path.tar", code: .unsafeEntry, mentions: "nul"),
        .init(file: "invalid-utf8-name.tar", code: .unsafeEntry, mentions: "\\xff"),
        .init(file: "invalid-utf8-pax.tar", code: .unsafeEntry, mentions: "\\xff"),
        .init(file: "control-char-name.tar", code: .unsafeEntry, mentions: "\\x0a"),
        .init(file: "huge-index.tar", code: .tooLarge, mentions: "\"index.json\" is 52428"),
        .init(file: "huge-manifest.tar", code: .tooLarge, mentions: "limit for json", limits: TarLimits()),
        .init(file: "missing-blob.tar", code: .missingBlobs, mentions: "neither in the archive nor in the store: sha256:"),
        .init(file: "size-mismatch.tar", code: .sizeMismatch, mentions: "layer sha256:"),
        .init(file: "no-index.tar", code: .malformedArchive, mentions: "neither index.json nor manifest.json"),
        .init(file: "bad-ref-name.tar", code: .invalidReference, mentions: "example.com/UPPER/case:1"),
        .init(file: "duplicate-json-key.tar", code: .malformedArchive, mentions: "duplicate key \"schemaVersion\""),
        .init(file: "many-entries.tar", code: .tooLarge, mentions: "more than 100 entries"),
        .init(file: "docker-diffid-mismatch.tar", code: .digestMismatch, mentions: "\"l/layer.tar\" hashes to"),
        .init(file: "docker-bad-repotag.tar", code: .invalidReference, mentions: "Bad Name:1"),
        .init(file: "docker-missing-layer.tar", code: .malformedArchive, mentions: "\"nowhere/layer.tar\" is not in the archive"),
        .init(file: "docker-link-loop.tar", code: .malformedArchive, mentions: "\"l/layer.tar\" is not in the archive"),
    ]

    /// The generated archives, made once per test process.
    static let dir: String = {
        let tmp = try! TempDir("seed-hostile")
        let script = Bundle.module.path(forResource: "hostile", ofType: "py", inDirectory: "Fixtures")!
        try! run(["python3", script, tmp.path])
        return tmp.path
    }()

    static let limits = TarLimits(maxUncompressedBytes: 32 << 20, maxEntries: 100)

    @Test("the valid base archive is accepted (so every rejection below is the hostile part's doing)")
    func validBase() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("store"))
        let got = try await readArchive(Self.dir + "/valid.tar", into: store, options: .init(limits: Self.limits))
        #expect(got.images.map(\.names) == [[try Reference("example.com/hostile/app:1")]])
        #expect(try verifyAll(store) == 3)
    }

    @Test("refused, with nothing written", arguments: cases)
    func refused(_ c: Case) async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("store"))
        // An image already in the store must come through untouched.
        let existing = try await readArchive(Self.dir + "/valid.tar", into: store)
        let before = store.list()
        do {
            let got = try await readArchive(Self.dir + "/" + c.file, into: store, options: .init(limits: c.limits))
            Issue.record("\(c.file) was accepted: \(got.images)")
        } catch let e as SeedError {
            #expect(e.code == c.code, "\(c.file): \(e)")
            #expect(e.message.lowercased().contains(c.mentions.lowercased()), "\(c.file): message \(e.message)")
        }
        #expect(store.list() == before)
        #expect(listFiles(store.tmpDir).isEmpty)
        for d in before.keys { try store.verify(d) }
        #expect(existing.images.count == 1)
        // Nothing beside the store.
        let top = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        #expect(top == ["store"])
        #expect(!FileManager.default.fileExists(atPath: "/tmp/seed-evil"))
    }

    @Test("bytes arriving one at a time parse the same as large chunks")
    func tinyChunks() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("store"))
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.dir + "/valid.tar")))
        let got = try await ImageArchiveReader.read(BytesChunks(bytes, chunkSize: 7), into: store)
        #expect(got.images.count == 1)
        let truncated = Array(try Data(contentsOf: URL(fileURLWithPath: Self.dir + "/truncated-boundary.tar")))
        await #expect(throws: SeedError.self) {
            try await ImageArchiveReader.read(BytesChunks(truncated, chunkSize: 7), into: store)
        }
    }

    @Test("an input stream that fails mid-way fails the read with its error and leaves nothing")
    func inputFailure() async throws {
        struct Boom: Error {}
        struct Failing: AsyncSequence, Sendable {
            typealias Element = ByteBuffer
            let first: [UInt8]
            struct AsyncIterator: AsyncIteratorProtocol {
                var sent = false
                let first: [UInt8]
                mutating func next() async throws -> ByteBuffer? {
                    if sent { throw Boom() }
                    sent = true
                    return ByteBuffer(bytes: first)
                }
            }
            func makeAsyncIterator() -> AsyncIterator { AsyncIterator(first: first) }
        }
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("store"))
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.dir + "/valid.tar")))
        await #expect(throws: Boom.self) {
            try await ImageArchiveReader.read(Failing(first: Array(bytes.prefix(3000))), into: store)
        }
        #expect(store.list().isEmpty)
        #expect(listFiles(store.tmpDir).isEmpty)
    }
}

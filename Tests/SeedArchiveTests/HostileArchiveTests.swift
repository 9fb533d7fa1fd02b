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
    typealias Case = HostileArchives.Case
    static let cases = HostileArchives.cases
    static let dir = HostileArchives.dir

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
            let got = try await readArchive(Self.dir + "/" + c.file, into: store, options: .init(limits: c.defaultLimits ? TarLimits() : Self.limits))
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

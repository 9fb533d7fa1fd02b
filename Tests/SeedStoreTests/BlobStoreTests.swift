import Foundation
import SeedOCI
import SeedStore
import SeedTestSupport
import Testing

@Suite("Blob store")
struct BlobStoreTests {
    @Test("put, size, verify, list, and the file layout blobs/sha256/<hex>")
    func basics() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        let bytes = Array("hello seed".utf8)
        let d = try store.put(bytes)
        #expect(d == Digest.of(bytes))
        #expect(store.size(of: d) == Int64(bytes.count))
        #expect(FileManager.default.fileExists(atPath: tmp.sub("s/blobs/sha256/\(d.hex)")))
        try store.verify(d)
        #expect(store.list() == [d: Int64(bytes.count)])
        #expect(try store.readSmall(d) == bytes)
        // Committed blobs are read-only.
        let mode = try (FileManager.default.attributesOfItem(atPath: store.path(of: d))[.posixPermissions] as! NSNumber).intValue
        #expect(mode == 0o444)
    }

    @Test("content that does not match the digest it was announced under is refused and leaves nothing")
    func mismatch() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        #expect(throws: SeedError.self) { try store.put(Array("a".utf8), expected: Digest.of(Array("b".utf8))) }
        #expect(store.list().isEmpty)
        #expect(listFiles(store.tmpDir).isEmpty)
    }

    @Test("staged content is invisible until commit; discard leaves nothing")
    func staging() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        let s = try store.stage()
        try Array("abc".utf8).withUnsafeBytes { try s.write($0) }
        let d = try s.finish()
        #expect(!store.contains(d))
        #expect(try s.readAll(limit: 10) == Array("abc".utf8))
        #expect(throws: SeedError.self) { try s.readAll(limit: 2) }
        s.discard()
        #expect(listFiles(store.tmpDir).isEmpty)
        #expect(!store.contains(d))
    }

    @Test("a crash leaves only temporary files, which opening the store sweeps")
    func crashSweep() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let root = tmp.sub("s")
        let kept: Digest
        do {
            let store = try BlobStore(root: root)
            kept = try store.put(Array("kept".utf8))
        }
        // A writer killed mid-blob: run a child process that stages and is SIGKILLed.
        let script = """
            mkdir -p '\(root)/tmp' && head -c 100000 /dev/urandom > '\(root)/tmp/ingest-abc123' && kill -9 $$
            """
        _ = try run(["sh", "-c", script], check: false)
        #expect(listFiles(root + "/tmp") == ["ingest-abc123"])
        let store = try BlobStore(root: root)
        #expect(listFiles(store.tmpDir).isEmpty)
        #expect(store.list().keys.sorted() == [kept])
        // A shared opener never sweeps (the owner may be mid-write).
        _ = FileManager.default.createFile(atPath: root + "/tmp/ingest-live", contents: Data("x".utf8))
        _ = try BlobStore(root: root, access: .shared)
        #expect(listFiles(root + "/tmp") == ["ingest-live"])
    }

    @Test("the exclusive lock keeps a second owner out until the first is gone")
    func lock() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        var first: BlobStore? = try BlobStore(root: tmp.sub("s"))
        do {
            _ = try BlobStore(root: tmp.sub("s"))
            Issue.record("a second exclusive open succeeded")
        } catch let e as SeedError {
            #expect(e.code == .locked)
            #expect(e.exitCode == 3)
        }
        // Another process (flock is per open file description) is kept out too.
        let other = try run(["flock", "-n", "-x", tmp.sub("s/lock"), "true"], check: false)
        #expect(other.status != 0)
        #expect(first != nil)
        first = nil
        _ = try BlobStore(root: tmp.sub("s"))
    }

    @Test("concurrent ingest of the same digest from many threads is safe")
    func concurrentSameDigest() async throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let want = Digest.of(bytes)
        try await withThrowingTaskGroup(of: Digest.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    let s = try store.stage()
                    defer { s.discard() }
                    var i = 0
                    while i < bytes.count {
                        let end = min(bytes.count, i + 7000)
                        try bytes[i..<end].withUnsafeBytes { try s.write($0) }
                        i = end
                    }
                    let d = try s.finish()
                    try s.commit()
                    return d
                }
            }
            for try await d in group { #expect(d == want) }
        }
        #expect(store.list() == [want: Int64(bytes.count)])
        try store.verify(want)
        #expect(listFiles(store.tmpDir).isEmpty)
    }

    @Test("removal with a keep-list")
    func removeExcept() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        let a = try store.put(Array("a".utf8)), b = try store.put(Array("bb".utf8)), c = try store.put(Array("ccc".utf8))
        let removed = store.removeAll(except: [b])
        #expect(removed.count == 2)
        #expect(removed.bytes == 4)
        #expect(Set(store.list().keys) == [b])
        #expect(!store.contains(a) && !store.contains(c))
        #expect(store.remove(b))
        #expect(!store.remove(b))
    }

    @Test("a blob altered on disk fails verification")
    func tamper() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        let d = try store.put(Array("original".utf8))
        chmod(store.path(of: d), 0o644)
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: store.path(of: d)))
        #expect(throws: SeedError.self) { try store.verify(d) }
    }

    @Test("files in blobs/sha256 that are not digests are ignored by list")
    func strayFiles() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        let store = try BlobStore(root: tmp.sub("s"))
        _ = FileManager.default.createFile(atPath: store.blobsDir + "/not-a-digest", contents: Data())
        _ = FileManager.default.createFile(atPath: store.blobsDir + "/" + String(repeating: "A", count: 64), contents: Data())
        #expect(store.list().isEmpty)
    }
}

import Foundation
import NIOCore
import SeedArchive
import SeedOCI
import SeedStore
import SeedTestSupport

/// Collects a tar stream into a file.
func collect(_ stream: TarStream, to path: String) async throws {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? h.close() }
    for try await chunk in stream {
        h.write(Data(chunk.readableBytesView))
    }
}

/// Collects a tar stream into memory.
func collect(_ stream: TarStream) async throws -> [UInt8] {
    var out: [UInt8] = []
    for try await chunk in stream { out.append(contentsOf: chunk.readableBytesView) }
    return out
}

/// The digest of what `skopeo inspect --raw` prints, and the parsed document.
func skopeoRaw(_ transport: String) throws -> (digest: Digest, doc: ManifestDocument) {
    let raw = Array(try skopeo(["inspect", "--raw", transport]).utf8)
    return (Digest.of(raw), try ManifestDocument.parse(raw, descriptorType: nil, what: transport))
}

/// Reads an archive file into a store.
func readArchive(_ path: String, into store: BlobStore, options: ImageArchiveOptions = ImageArchiveOptions()) async throws -> ImageArchiveContents {
    try await ImageArchiveReader.read(FileChunks(path, chunkSize: 100_000), into: store, options: options)
}

/// Checks every blob in a store hashes to its name; returns how many there are.
@discardableResult
func verifyAll(_ store: BlobStore) throws -> Int {
    let all = store.list()
    for d in all.keys { try store.verify(d) }
    return all.count
}

let amd64 = Platform(os: "linux", architecture: "amd64")
let arm64 = Platform(os: "linux", architecture: "arm64")

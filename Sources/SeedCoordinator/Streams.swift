import struct Crypto.SHA256
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SeedOCI

/// A local file as an async sequence of byte buffers.
struct FileByteStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle
        let chunkSize: Int
        mutating func next() async throws -> ByteBuffer? {
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else { return nil }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(handle: FileHandle(forReadingAtPath: path)!, chunkSize: chunkSize)
    }

    /// Opens `path`, failing with a clear error if it cannot be read.
    static func open(_ path: String, chunkSize: Int = 1 << 20) throws -> FileByteStream {
        guard FileHandle(forReadingAtPath: path) != nil else {
            throw SeedError(.notFound, "cannot read \(path)")
        }
        return FileByteStream(path: path, chunkSize: chunkSize)
    }
}

/// SHA-256 and byte count of everything that passed through a `HashingStream`.
final class StreamDigest: @unchecked Sendable {
    // SHA256 is a value type without Sendable; every access goes through the lock.
    private let state = NIOLockedValueBox((hasher: SHA256(), bytes: Int64(0)))
    func update(_ b: ByteBuffer) {
        state.withLockedValue { s in
            b.withUnsafeReadableBytes { s.hasher.update(bufferPointer: $0) }
            s.bytes += Int64(b.readableBytes)
        }
    }
    var bytes: Int64 { state.withLockedValue { $0.bytes } }
    func finalize() -> Digest { state.withLockedValue { Digest($0.hasher.finalize()) } }
}

/// Passes a byte stream through unchanged while hashing it.
struct HashingStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let digest: StreamDigest
    let onChunk: @Sendable (Int) -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let digest: StreamDigest
        let onChunk: @Sendable (Int) -> Void
        mutating func next() async throws -> ByteBuffer? {
            guard let b = try await base.next() else { return nil }
            digest.update(b)
            onChunk(b.readableBytes)
            return b
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), digest: digest, onChunk: onChunk)
    }
}

import Foundation
import CArchive
import NIOCore
import SeedOCI

/// Compression applied to a written archive.
public enum ArchiveCompression: String, Sendable, CaseIterable {
    /// Plain tar.
    case none
    /// gzip.
    case gzip
    /// zstd.
    case zstd
}

/// Writes entries on the archive thread. Obtained inside `TarWriter.stream`'s body.
public final class TarWriterContext {
    let handle: WriteHandle
    let sink: TarWriter.WriteSink
    let entry: OpaquePointer
    var pendingError: (any Error)? { sink.pendingError }

    init(handle: WriteHandle, sink: TarWriter.WriteSink) throws {
        self.handle = handle
        self.sink = sink
        guard let e = archive_entry_new() else { throw SeedError(.internal, "archive_entry_new failed") }
        entry = e
    }

    deinit { archive_entry_free(entry) }

    /// Writes a directory entry.
    public func directory(_ name: String) throws {
        try header(name.hasSuffix("/") ? name : name + "/", type: LA.ifdir, perm: 0o755, size: 0)
    }

    /// Writes a file entry whose data is `bytes`.
    public func file(_ name: String, bytes: [UInt8]) throws {
        try header(name, type: LA.ifreg, perm: 0o644, size: Int64(bytes.count))
        try bytes.withUnsafeBytes { try data($0) }
    }

    /// Writes a file entry of `size` bytes whose data `reader` supplies. Fails if the reader
    /// delivers a different number of bytes.
    public func file(_ name: String, size: Int64, from reader: any ContentReader, buffer: UnsafeMutableRawBufferPointer) throws {
        try header(name, type: LA.ifreg, perm: 0o644, size: size)
        var total: Int64 = 0
        while true {
            let n = try reader.read(into: buffer)
            if n == 0 { break }
            total += Int64(n)
            guard total <= size else { break }
            try data(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        }
        guard total == size else {
            throw SeedError(.sizeMismatch, "\(name): source has \(total > size ? "more than" : "only") \(total) bytes, expected \(size)")
        }
    }

    func header(_ name: String, type: UInt32, perm: UInt32, size: Int64) throws {
        archive_entry_clear(entry)
        archive_entry_set_pathname(entry, name)
        archive_entry_set_filetype(entry, type)
        archive_entry_set_perm(entry, mode_t(perm))
        archive_entry_set_size(entry, size)
        archive_entry_set_mtime(entry, 0, 0)
        let rc = archive_write_header(handle.a, entry)
        if let e = pendingError { throw e }
        try handle.check(rc, "cannot write the header of \(name)")
    }

    func data(_ bytes: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < bytes.count {
            let n = archive_write_data(handle.a, bytes.baseAddress! + off, bytes.count - off)
            if let e = pendingError { throw e }
            guard n > 0 else { throw SeedError(.internal, "cannot write archive data: \(handle.errorString)") }
            off += n
        }
    }
}

/// A tar stream produced on the archive thread, consumed as an async sequence of byte buffers.
/// The producer runs only while the consumer keeps up (a bounded queue sits between them), and
/// stops with `cancelled` when the consumer goes away.
public final class TarStream: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    let channel: BoundedChannel<ByteBuffer>
    let start: @Sendable () -> Void
    let started = Atomic()

    init(channel: BoundedChannel<ByteBuffer>, start: @escaping @Sendable () -> Void) {
        self.channel = channel
        self.start = start
    }

    /// An iterator; the stream can be iterated once.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let box: Box

        final class Box: Sendable {
            let stream: TarStream
            init(_ s: TarStream) { stream = s }
            deinit { stream.channel.close() }
        }

        public mutating func next() async throws -> ByteBuffer? {
            try await box.stream.channel.receive()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        precondition(started.setOnce(), "a TarStream can be iterated only once")
        start()
        return AsyncIterator(box: .init(self))
    }

    /// Drops the stream without reading it; the producer stops.
    public func cancel() { channel.close() }
}

/// A flag set once, from any thread.
final class Atomic: @unchecked Sendable {
    private let lock = NSLockShim()
    private var value = false
    func setOnce() -> Bool {
        lock.withLock {
            if value { return false }
            value = true
            return true
        }
    }
}

/// Writes tar archives with libarchive on their own thread.
public enum TarWriter {
    /// Output block size: large blocks mean few callbacks and few buffers.
    static let blockSize = 256 << 10

    /// A stream of the archive `body` writes. `body` runs on the archive thread when iteration
    /// starts. The archive is pax (ustar where it can be), ends with the end-of-archive marker and
    /// no padding beyond it.
    public static func stream(
        compression: ArchiveCompression = .none,
        body: @escaping (TarWriterContext) throws -> Void
    ) -> TarStream {
        let channel = BoundedChannel<ByteBuffer>(capacity: 8)
        let handoff = Handoff(body)
        return TarStream(channel: channel) {
            Task {
                do {
                    try await ArchiveThread.run("seed-tar-writer") {
                        try write(compression: compression, to: channel, body: handoff.value)
                    }
                    channel.finish()
                } catch {
                    channel.finish(throwing: error)
                }
            }
        }
    }

    static func write(compression: ArchiveCompression, to channel: BoundedChannel<ByteBuffer>, body: (TarWriterContext) throws -> Void) throws {
        let handle = try WriteHandle()
        let sink = WriteSink(channel: channel)
        let ctx = try TarWriterContext(handle: handle, sink: sink)
        try handle.check(archive_write_set_format_pax_restricted(handle.a), "pax format")
        switch compression {
        case .none: break
        case .gzip: try handle.check(archive_write_add_filter_gzip(handle.a), "gzip filter")
        case .zstd: try handle.check(archive_write_add_filter_zstd(handle.a), "zstd filter")
        }
        try handle.check(archive_write_set_bytes_per_block(handle.a, Int32(blockSize)), "block size")
        try handle.check(archive_write_set_bytes_in_last_block(handle.a, 1), "last block")
        let me = Unmanaged.passUnretained(sink).toOpaque()
        let rc = archive_write_open2(handle.a, me, nil, { _, ctx, buf, len in
            let s = Unmanaged<WriteSink>.fromOpaque(ctx!).takeUnretainedValue()
            return s.write(buf!, len)
        }, nil, nil)
        // libarchive may call the write callback until the handle is freed: the sink must outlive it.
        handle.client = sink
        do {
            try handle.check(rc, "cannot start the archive")
            try body(ctx)
            let closeRC = archive_write_close(handle.a)
            if let e = ctx.pendingError { throw e }
            try handle.check(closeRC, "cannot finish the archive")
        } catch {
            // A failed archive must not be finished (no end marker after a partial entry).
            archive_write_fail(handle.a)
            throw error
        }
    }

    final class WriteSink {
        let channel: BoundedChannel<ByteBuffer>
        let allocator = ByteBufferAllocator()
        var pendingError: (any Error)?

        init(channel: BoundedChannel<ByteBuffer>) {
            self.channel = channel
        }

        func write(_ buf: UnsafeRawPointer, _ len: Int) -> Int {
            var b = allocator.buffer(capacity: len)
            b.writeBytes(UnsafeRawBufferPointer(start: buf, count: len))
            do {
                try channel.sendBlocking(b)
                return len
            } catch {
                pendingError = pendingError ?? error
                return -1
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import struct Crypto.SHA256
import Foundation
import SeedOCI

/// A content-addressed blob store on the local filesystem:
///
///     ROOT/blobs/sha256/<hex>   committed blobs, read-only, each hashing to its name
///     ROOT/tmp/                 content being staged; swept when the store is opened exclusively
///     ROOT/lock                 flock(2) target for the exclusive owner
///
/// New content is written to a temporary file while it is hashed, fsynced, checked, and renamed
/// into place, so a crash leaves only temporary files and a committed blob is always complete.
/// Two writers of the same digest are safe: each renames a complete, identical file.
public final class BlobStore: ContentStore, @unchecked Sendable {
    /// The store's root directory.
    public let root: String
    /// Where committed blobs live.
    public let blobsDir: String
    /// Where staged content lives until commit.
    public let tmpDir: String
    private let lockFD: Int32?

    /// How the store is opened.
    public enum Access: Sendable {
        /// Take the exclusive lock (fail with `locked` if another process holds it) and sweep
        /// temporary files a crashed owner left behind.
        case exclusive
        /// Share the store with its owner; never sweeps.
        case shared
    }

    /// Opens (creating if needed) the store at `root`.
    public init(root: String, access: Access = .exclusive) throws {
        self.root = root
        self.blobsDir = root + "/blobs/sha256"
        self.tmpDir = root + "/tmp"
        for dir in [root, root + "/blobs", blobsDir, tmpDir] {
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                throw SeedError(errno == ENOSPC ? .noSpace : .io, "cannot create store directory \(dir): \(Errno.text(errno))")
            }
        }
        switch access {
        case .exclusive:
            let fd = Glibc.open(root + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SeedError(.io, "cannot open \(root)/lock: \(Errno.text(errno))") }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                let e = errno
                close(fd)
                if e == EWOULDBLOCK {
                    throw SeedError(.locked, "the store \(root) is locked by another process")
                }
                throw SeedError(.io, "cannot lock \(root)/lock: \(Errno.text(e))")
            }
            lockFD = fd
            sweepTemporaries()
        case .shared:
            lockFD = nil
        }
    }

    deinit {
        if let lockFD { close(lockFD) }
    }

    /// Removes everything in the temporary area (only safe while holding the exclusive lock).
    @discardableResult
    public func sweepTemporaries() -> Int {
        var removed = 0
        for name in Self.listDirectory(tmpDir) where unlink(tmpDir + "/" + name) == 0 { removed += 1 }
        return removed
    }

    /// The path of a committed blob (it may not exist).
    public func path(of digest: Digest) -> String { blobsDir + "/" + digest.hex }

    public func size(of digest: Digest) -> Int64? {
        var st = stat()
        guard stat(path(of: digest), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Whether the store holds `digest`.
    public func contains(_ digest: Digest) -> Bool { size(of: digest) != nil }

    public func stage() throws -> any StagedContent {
        try Staged(store: self)
    }

    public func open(_ digest: Digest) throws -> any ContentReader {
        try FileReader(path: path(of: digest), digest: digest)
    }

    /// Stages `bytes`, checks them against `expected` if given, and commits them.
    @discardableResult
    public func put(_ bytes: some Collection<UInt8>, expected: Digest? = nil) throws -> Digest {
        let s = try stage()
        defer { s.discard() }
        try Array(bytes).withUnsafeBytes { try s.write($0) }
        let d = try s.finish()
        if let expected, expected != d {
            throw SeedError(.digestMismatch, "content announced as \(expected) hashes to \(d)")
        }
        try s.commit()
        return d
    }

    /// Every committed blob and its size. Files whose names are not 64 lowercase hex digits are
    /// not blobs and are left out.
    public func list() -> [Digest: Int64] {
        var out: [Digest: Int64] = [:]
        for name in Self.listDirectory(blobsDir) {
            guard let d = try? Digest(hex: name), let s = size(of: d) else { continue }
            out[d] = s
        }
        return out
    }

    /// Removes every committed blob not in `keep`; returns how many and how many bytes.
    @discardableResult
    public func removeAll(except keep: Set<Digest>) -> (count: Int, bytes: Int64) {
        var count = 0
        var bytes: Int64 = 0
        for (d, s) in list() where !keep.contains(d) {
            if unlink(path(of: d)) == 0 { count += 1; bytes += s }
        }
        return (count, bytes)
    }

    /// Removes one blob; returns whether it existed.
    @discardableResult
    public func remove(_ digest: Digest) -> Bool { unlink(path(of: digest)) == 0 }

    /// Rehashes a committed blob; throws `digestMismatch` if the file no longer matches its name.
    public func verify(_ digest: Digest) throws {
        let r = try open(digest)
        defer { r.close() }
        var hasher = SHA256()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buf.deallocate() }
        while true {
            let n = try r.read(into: buf)
            if n == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buf[..<n]))
        }
        let got = Digest(hasher.finalize())
        guard got == digest else {
            throw SeedError(.digestMismatch, "blob \(digest) in \(root) hashes to \(got)")
        }
    }

    static func listDirectory(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    func fsyncDirectory(_ path: String) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

/// Content being written to `tmp/`.
final class Staged: StagedContent {
    let store: BlobStore
    let tmpPath: String
    private var fd: Int32
    private var hasher = SHA256()
    private(set) var size: Int64 = 0
    private var digest: Digest?
    private var done = false
    /// Writes of a large blob run on their own thread, so hashing and writing overlap.
    private var writer: BackgroundWriter?
    static let backgroundThreshold: Int64 = 4 << 20

    init(store: BlobStore) throws {
        self.store = store
        var template = Array((store.tmpDir + "/ingest-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw SeedError(errno == ENOSPC ? .noSpace : .io, "cannot create a temporary file in \(store.tmpDir): \(Errno.text(errno))")
        }
        self.fd = fd
        self.tmpPath = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    deinit { discard() }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(digest == nil, "write after finish")
        guard fd >= 0 else { throw SeedError(.io, "write to discarded content") }
        hasher.update(bufferPointer: bytes)
        if writer == nil && size + Int64(bytes.count) > Self.backgroundThreshold {
            writer = BackgroundWriter(fd: fd)
        }
        let failed: Int32?
        if let writer {
            failed = writer.enqueue(bytes)
        } else {
            failed = BackgroundWriter.writeAll(fd, bytes)
        }
        if let e = failed { throw writeError(e) }
        size += Int64(bytes.count)
    }

    func writeError(_ e: Int32) -> SeedError {
        discard()
        if e == ENOSPC || e == EDQUOT {
            return SeedError(.noSpace, "no space left on the device holding \(store.root)")
        }
        return SeedError(.io, "cannot write to \(tmpPath): \(Errno.text(e))")
    }

    func finish() throws -> Digest {
        if let digest { return digest }
        guard fd >= 0, !done else { throw SeedError(.io, "finish of discarded content") }
        if let writer {
            self.writer = nil
            if let e = writer.finish() { throw writeError(e) }
        }
        if fsync(fd) != 0 {
            let e = errno
            discard()
            throw SeedError(e == ENOSPC || e == EDQUOT ? .noSpace : .io, "cannot flush \(tmpPath): \(Errno.text(e))")
        }
        let d = Digest(hasher.finalize())
        digest = d
        // Finished content keeps no descriptor open: an archive may stage thousands of blobs
        // before the first is committed.
        close(fd)
        fd = -1
        return d
    }

    func readAll(limit: Int) throws -> [UInt8] {
        guard digest != nil, !done else { throw SeedError(.internal, "readAll before finish") }
        guard size <= Int64(limit) else {
            throw SeedError(.tooLarge, "content is \(size) bytes, over the \(limit)-byte limit for JSON documents")
        }
        let rfd = Glibc.open(tmpPath, O_RDONLY | O_CLOEXEC)
        guard rfd >= 0 else { throw SeedError(.io, "cannot read back \(tmpPath): \(Errno.text(errno))") }
        defer { Glibc.close(rfd) }
        var out = [UInt8](repeating: 0, count: Int(size))
        var filled = 0
        while filled < out.count {
            let n = out.withUnsafeMutableBytes { pread(rfd, $0.baseAddress! + filled, $0.count - filled, off_t(filled)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SeedError(.io, "cannot read back \(tmpPath): \(Errno.text(errno))") }
            filled += n
        }
        return out
    }

    func commit() throws {
        guard let digest else { throw SeedError(.internal, "commit before finish") }
        guard !done else { return }
        chmod(tmpPath, 0o444)
        let final = store.path(of: digest)
        if rename(tmpPath, final) != 0 {
            let e = errno
            discard()
            throw SeedError(e == ENOSPC ? .noSpace : .io, "cannot commit \(digest) into \(store.blobsDir): \(Errno.text(e))")
        }
        store.fsyncDirectory(store.blobsDir)
        done = true
    }

    func discard() {
        guard !done else { return }
        done = true
        if let writer {
            self.writer = nil
            _ = writer.finish(abandon: true)
        }
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmpPath)
    }
}

/// Writes a file's chunks on a dedicated thread through a bounded queue (at most 8 MiB waiting),
/// so the caller can hash the next chunk while the previous one is written.
final class BackgroundWriter: @unchecked Sendable {
    // All state is guarded by `cond`.
    private let fd: Int32
    private let cond = NSCondition()
    private var queue: [[UInt8]] = []
    private var queued = 0
    private var closing = false
    private var running = true
    private var error: Int32?
    static let maxQueued = 8 << 20

    init(fd: Int32) {
        self.fd = fd
        let t = Thread { [self] in loop() }
        t.name = "seed-blob-writer"
        t.start()
    }

    /// Queues a copy of `bytes`; returns the errno of an earlier failed write, if any.
    func enqueue(_ bytes: UnsafeRawBufferPointer) -> Int32? {
        cond.lock()
        defer { cond.unlock() }
        while queued >= Self.maxQueued && error == nil { cond.wait() }
        if let error { return error }
        queue.append(Array(bytes))
        queued += bytes.count
        cond.broadcast()
        return nil
    }

    /// Waits until everything queued is written (or, with `abandon`, drops it); returns the
    /// errno of a failed write, if any.
    func finish(abandon: Bool = false) -> Int32? {
        cond.lock()
        defer { cond.unlock() }
        if abandon { queue.removeAll(); queued = 0 }
        closing = true
        cond.broadcast()
        while running { cond.wait() }
        return error
    }

    private func loop() {
        while true {
            cond.lock()
            while queue.isEmpty && !closing { cond.wait() }
            if queue.isEmpty {
                running = false
                cond.broadcast()
                cond.unlock()
                return
            }
            let chunk = queue.removeFirst()
            cond.unlock()
            let failed = chunk.withUnsafeBytes { Self.writeAll(fd, $0) }
            cond.lock()
            queued -= chunk.count
            if let failed {
                error = failed
                queue.removeAll()
                queued = 0
                running = false
                cond.broadcast()
                cond.unlock()
                return
            }
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Writes all of `bytes`; returns errno on failure.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }
}

/// A committed blob opened for reading.
final class FileReader: ContentReader {
    private var fd: Int32
    let size: Int64

    init(path: String, digest: Digest) throws {
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw SeedError(.notFound, "blob \(digest) is not in the store") }
            throw SeedError(.io, "cannot open blob \(digest): \(Errno.text(errno))")
        }
        var st = stat()
        fstat(fd, &st)
        size = Int64(st.st_size)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
    }

    deinit { close() }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard fd >= 0 else { return 0 }
        while true {
            let n = Glibc.read(fd, buffer.baseAddress!, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw SeedError(.io, "cannot read blob: \(Errno.text(errno))") }
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }
}

/// errno as text.
enum Errno {
    static func text(_ e: Int32) -> String { String(cString: strerror(e)) }
}

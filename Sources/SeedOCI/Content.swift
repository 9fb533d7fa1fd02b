/// Synchronous, blocking access to a content-addressed store, for code that runs on its own
/// thread (the libarchive threads of SeedArchive). SeedStore's `BlobStore` implements it; the
/// protocols live here so that archive code and store code need not know each other.
public protocol ContentStore: Sendable {
    /// The size of a committed blob, or nil if the store does not hold it.
    func size(of digest: Digest) -> Int64?
    /// Whether the store can produce the blob `descriptor` names, with its size. The default
    /// compares `size(of:)`; a store backed by a runtime's own verified content may say yes for
    /// blobs it holds elsewhere.
    func holds(_ descriptor: Descriptor) -> Bool
    /// Starts staging new content in the store's temporary area.
    func stage() throws -> any StagedContent
    /// Opens a committed blob for sequential reading.
    func open(_ digest: Digest) throws -> any ContentReader
}

/// Content being written into a store: hashed while written, invisible until committed.
public protocol StagedContent: AnyObject {
    /// Appends bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// Bytes written so far.
    var size: Int64 { get }
    /// Ends writing: flushes to stable storage and returns the content's digest. The content
    /// stays staged (invisible) until `commit`.
    func finish() throws -> Digest
    /// Reads back up to `limit` bytes of finished content (a manifest or config being checked).
    func readAll(limit: Int) throws -> [UInt8]
    /// Makes finished content visible under its digest. Idempotent if the store has it already.
    func commit() throws
    /// Throws the content away. Safe to call at any time, more than once.
    func discard()
}

/// A committed blob opened for reading.
public protocol ContentReader: AnyObject {
    /// The blob's size.
    var size: Int64 { get }
    /// Reads up to `buffer.count` bytes; 0 means the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Releases the file. Also done on deinit.
    func close()
}

extension ContentStore {
    public func holds(_ descriptor: Descriptor) -> Bool {
        size(of: descriptor.digest) == descriptor.size
    }

    /// Reads a whole committed blob that must be small (a manifest, index or config), checking
    /// its size before reading.
    public func readSmall(_ digest: Digest, limit: Int = StrictJSON.defaultLimit) throws -> [UInt8] {
        let reader = try open(digest)
        defer { reader.close() }
        guard reader.size <= Int64(limit) else {
            throw SeedError(.tooLarge, "blob \(digest) is \(reader.size) bytes, over the \(limit)-byte limit for JSON documents")
        }
        var out = [UInt8](repeating: 0, count: Int(reader.size))
        var filled = 0
        while filled < out.count {
            let n = try out.withUnsafeMutableBytes { try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
            guard n > 0 else { break }
            filled += n
        }
        guard filled == out.count else {
            throw SeedError(.io, "blob \(digest) ended after \(filled) of \(out.count) bytes")
        }
        return out
    }
}

import Foundation
import CArchive
import NIOCore
import SeedOCI

/// Limits that bound what reading an archive may cost.
public struct TarLimits: Sendable {
    /// Most bytes the tar stream may expand to once decompressed (a gzip bomb stops here).
    public var maxUncompressedBytes: Int64
    /// Most entries.
    public var maxEntries: Int
    /// Largest JSON document (index.json, manifest.json, a manifest or config) read into memory.
    public var maxJSONBytes: Int

    /// Defaults: 256 GiB expanded, 100 000 entries, 4 MiB per JSON document.
    public init(maxUncompressedBytes: Int64 = 256 << 30, maxEntries: Int = 100_000, maxJSONBytes: Int = StrictJSON.defaultLimit) {
        self.maxUncompressedBytes = maxUncompressedBytes
        self.maxEntries = maxEntries
        self.maxJSONBytes = maxJSONBytes
    }
}

/// One entry of a tar stream, with its name already checked and normalised.
public struct TarEntry: Sendable, Hashable {
    /// What kind of entry.
    public enum Kind: Sendable, Hashable {
        /// A regular file with `size` bytes of data.
        case file
        /// A directory (no data).
        case directory
        /// A symbolic link; the target is resolved against the entry's directory and normalised.
        case symlink(target: String)
        /// A hard link to an earlier entry of the archive.
        case hardlink(target: String)
    }

    /// The normalised name (no `./`, no trailing slash).
    public var name: String
    /// The kind.
    public var kind: Kind
    /// The data size in bytes (0 unless a file).
    public var size: Int64
}

/// Reads the data of the current entry on the archive thread, in the order libarchive delivers
/// it, without copying.
public final class TarEntryData {
    let reader: TarStreamReader
    let entry: TarEntry
    private(set) var delivered: Int64 = 0

    init(reader: TarStreamReader, entry: TarEntry) {
        self.reader = reader
        self.entry = entry
    }

    /// Calls `body` with each chunk of the entry's data until it is exhausted. The pointer is
    /// valid only during the call.
    public func forEachChunk(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var buf: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        while true {
            let rc = archive_read_data_block(reader.inner.a, &buf, &size, &offset)
            if let e = reader.pendingError { throw e }
            if rc == LA.eof { break }
            if rc != LA.ok && rc != LA.warn {
                throw SeedError(.malformedArchive, "entry \(SeedError.quote(entry.name)): \(reader.inner.errorString)")
            }
            guard offset == delivered else {
                throw SeedError(.malformedArchive, "entry \(SeedError.quote(entry.name)): sparse or out-of-order data is not supported")
            }
            if size > 0 {
                delivered += Int64(size)
                try body(UnsafeRawBufferPointer(start: buf, count: size))
            }
        }
        guard delivered == entry.size else {
            throw SeedError(.malformedArchive, "entry \(SeedError.quote(entry.name)): truncated, \(delivered) of \(entry.size) bytes")
        }
    }
}

/// Reads a tar stream (plain, gzip, zstd or xz, detected automatically) from an async sequence
/// of byte buffers. libarchive runs on its own thread; the input is pulled through a bounded
/// queue, so memory stays flat whatever the archive's size.
///
/// Beyond what libarchive checks, the reader refuses: names that are absolute, contain `..`,
/// NUL or non-printable bytes (also when hidden in a ustar field or a pax record that libarchive
/// would silently cut at the NUL); links that leave the archive; device nodes, FIFOs, sockets;
/// sparse files; a stream that ends without the end-of-archive marker (truncated exactly at an
/// entry boundary, which libarchive reports as a clean end); non-zero bytes after the marker; an
/// empty stream; more entries or more expanded bytes than the limits allow.
public enum TarReader {
    /// Reads `input` to the end, calling `visit` on the archive thread for each entry. `visit`
    /// may read the entry's data through `TarEntryData`; unread data is skipped.
    public static func read<Input: AsyncSequence & Sendable>(
        _ input: Input,
        limits: TarLimits = TarLimits(),
        drainAfterFailure: DrainPolicy? = nil,
        visit: sending @escaping (TarEntry, TarEntryData) throws -> Void
    ) async throws where Input.Element == ByteBuffer {
        let channel = BoundedChannel<ByteBuffer>(capacity: 4)
        let handoff = Handoff(visit)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var discarded: Int64 = 0
                var deadline: ContinuousClock.Instant?
                do {
                    for try await chunk in input where chunk.readableBytes > 0 {
                        if let d = deadline {
                            // The read failed: swallow what the peer is still sending, within
                            // the budget, so its answer reaches it instead of a reset.
                            discarded += Int64(chunk.readableBytes)
                            if discarded > (drainAfterFailure?.bytes ?? 0) || ContinuousClock.now > d { break }
                            continue
                        }
                        do {
                            try await channel.send(chunk)
                        } catch {
                            guard let drain = drainAfterFailure, !Task.isCancelled else { throw error }
                            deadline = .now + .milliseconds(Int(drain.seconds * 1000))
                        }
                    }
                    channel.finish()
                } catch {
                    channel.finish(throwing: error)
                }
            }
            let outcome: Result<Void, any Error>
            do {
                try await withTaskCancellationHandler {
                    try await ArchiveThread.run("seed-tar-reader") {
                        defer { channel.close() }
                        let reader = try TarStreamReader(input: channel, limits: limits)
                        try reader.run(handoff.value)
                    }
                } onCancel: {
                    channel.close()
                }
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            if case .failure = outcome, let drain = drainAfterFailure {
                // Give the pump its drain budget (it ends at the input's end or the budget),
                // then stop it.
                group.addTask { try await Task.sleep(for: .milliseconds(Int(drain.seconds * 1000))) }
                _ = try? await group.next()
                group.cancelAll()
            }
            try outcome.get()
        }
    }
}

/// How much of a failed upload to read and discard before answering, so the answer reaches a
/// client that is still sending (closing on unread data resets the connection).
public struct DrainPolicy: Sendable {
    /// Most bytes discarded.
    public var bytes: Int64
    /// Most seconds spent.
    public var seconds: Double

    /// Makes a policy.
    public init(bytes: Int64, seconds: Double) {
        self.bytes = bytes
        self.seconds = seconds
    }
}

/// Recently handed-out buffers and their offsets in a byte stream, so the reader can look back
/// at bytes libarchive has seen (raw tar headers, the end-of-archive marker, what follows it).
struct RecentBytes {
    struct Chunk {
        var offset: Int64
        var bytes: UnsafeRawBufferPointer
    }
    var chunks: [Chunk] = []
    let keep: Int

    init(keep: Int) { self.keep = keep }

    mutating func add(offset: Int64, bytes: UnsafeRawBufferPointer) {
        chunks.append(Chunk(offset: offset, bytes: bytes))
        if chunks.count > keep { chunks.removeFirst() }
    }

    /// The bytes in [from, to), or nil if they are no longer (or not yet) retained.
    func bytes(from: Int64, to: Int64) -> [UInt8]? {
        guard from <= to else { return nil }
        if from == to { return [] }
        var out = [UInt8]()
        out.reserveCapacity(Int(to - from))
        var pos = from
        for c in chunks {
            let end = c.offset + Int64(c.bytes.count)
            guard pos >= c.offset, pos < end else { continue }
            let stop = min(to, end)
            out.append(contentsOf: c.bytes[Int(pos - c.offset)..<Int(stop - c.offset)])
            pos = stop
            if pos == to { return out }
        }
        return nil
    }
}

/// The machinery behind `TarReader`, confined to one thread. Two libarchive handles: the outer
/// one only decompresses (raw format, any of gzip/zstd/xz or none); the inner one parses tar
/// from the outer one's output. Owning the byte stream between them is what lets the reader
/// count expanded bytes, look at raw headers and check what follows the end of the archive.
final class TarStreamReader {
    let input: BoundedChannel<ByteBuffer>
    let limits: TarLimits
    let outer: ReadHandle
    let inner: ReadHandle
    var pendingError: (any Error)?

    // Outer side: compressed bytes from the input.
    var rawTotal: Int64 = 0
    var rawRecent: [(offset: Int64, buffer: ByteBuffer)] = []
    var current: ByteBuffer?

    // Inner side: decompressed bytes handed to the tar parser, in rotating buffers.
    static let chunkSize = 256 << 10
    static let rotation = 4
    let buffers: [UnsafeMutableRawBufferPointer]
    var nextBuffer = 0
    var expandedTotal: Int64 = 0
    var recent = RecentBytes(keep: TarStreamReader.rotation - 1)
    var outerEOF = false

    init(input: BoundedChannel<ByteBuffer>, limits: TarLimits) throws {
        self.input = input
        self.limits = limits
        outer = try ReadHandle()
        inner = try ReadHandle()
        buffers = (0..<Self.rotation).map { _ in .allocate(byteCount: Self.chunkSize, alignment: 64) }
    }

    deinit {
        for b in buffers { b.deallocate() }
    }

    func run(_ visit: (TarEntry, TarEntryData) throws -> Void) throws {
        let me = Unmanaged.passUnretained(self).toOpaque()
        archive_read_support_filter_gzip(outer.a)
        archive_read_support_filter_zstd(outer.a)
        archive_read_support_filter_xz(outer.a)
        archive_read_support_format_raw(outer.a)
        var rc = archive_read_open(outer.a, me, nil, { _, ctx, out in
            let r = Unmanaged<TarStreamReader>.fromOpaque(ctx!).takeUnretainedValue()
            return r.pullRaw(out!)
        }, nil)
        if pendingError == nil && rawTotal == 0 { throw SeedError(.malformedArchive, "empty archive: no bytes received") }
        try checkOuter(rc, "cannot decompress the archive")
        var rawEntry: OpaquePointer?
        rc = archive_read_next_header(outer.a, &rawEntry)
        if let e = pendingError { throw e }
        if rawTotal == 0 { throw SeedError(.malformedArchive, "empty archive: no bytes received") }
        try checkOuter(rc, "cannot decompress the archive")

        archive_read_support_format_tar(inner.a)
        rc = archive_read_open(inner.a, me, nil, { _, ctx, out in
            let r = Unmanaged<TarStreamReader>.fromOpaque(ctx!).takeUnretainedValue()
            return r.pullExpanded(out!)
        }, nil)
        try checkInner(rc, "not a tar archive")

        var entries = 0
        var lastEnd: Int64 = 0
        var lastName = "(start of archive)"
        while true {
            var e: OpaquePointer?
            rc = archive_read_next_header(inner.a, &e)
            if let err = pendingError { throw err }
            if rc == LA.eof { break }
            if rc != LA.ok && rc != LA.warn {
                if entries == 0 { throw SeedError(.malformedArchive, "not a tar archive: \(inner.errorString)") }
                throw SeedError(.malformedArchive, "malformed tar after entry \(SeedError.quote(lastName)): \(inner.errorString)")
            }
            entries += 1
            guard entries <= limits.maxEntries else {
                throw SeedError(.tooLarge, "archive has more than \(limits.maxEntries) entries")
            }
            let headerStart = archive_read_header_position(inner.a)
            let dataStart = archive_filter_bytes(inner.a, -1)
            let rawName = archive_entry_pathname(e).map { Array(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) } ?? []
            try inspectHeaders(from: headerStart, to: dataStart, shown: SeedError.quote(rawName))
            let entry = try describe(e!, rawName: rawName)
            lastName = entry.name
            let data = TarEntryData(reader: self, entry: entry)
            try visit(entry, data)
            if let err = pendingError { throw err }
            rc = archive_read_data_skip(inner.a)
            if let err = pendingError { throw err }
            if rc != LA.ok && rc != LA.warn {
                throw SeedError(.malformedArchive, "entry \(SeedError.quote(entry.name)): \(inner.errorString)")
            }
            lastEnd = archive_filter_bytes(inner.a, -1)
        }
        try checkEnd(lastEnd: lastEnd, entries: entries, lastName: lastName)
    }

    /// Builds the checked entry from libarchive's header.
    func describe(_ e: OpaquePointer, rawName: [UInt8]) throws -> TarEntry {
        let name = try EntryName.normalize(rawName)
        let shown = SeedError.quote(name)
        if archive_entry_sparse_count(e) > 0 {
            throw SeedError(.unsafeEntry, "entry \(shown): sparse files are not supported")
        }
        if let link = archive_entry_hardlink(e) {
            let raw = Array(UnsafeBufferPointer(start: UnsafeRawPointer(link).assumingMemoryBound(to: UInt8.self), count: strlen(link)))
            let target: String
            do { target = try EntryName.normalize(raw) } catch let err as SeedError {
                throw SeedError(.unsafeEntry, "entry \(shown): hard link target \(SeedError.quote(raw)) is unsafe (\(err.message))")
            }
            return TarEntry(name: name, kind: .hardlink(target: target), size: 0)
        }
        let type = UInt32(archive_entry_filetype(e)) & LA.ifmt
        switch type {
        case LA.ifreg:
            let size = archive_entry_size_is_set(e) != 0 ? archive_entry_size(e) : 0
            guard size >= 0 else { throw SeedError(.malformedArchive, "entry \(shown): negative size") }
            return TarEntry(name: name, kind: .file, size: size)
        case LA.ifdir:
            return TarEntry(name: name, kind: .directory, size: 0)
        case LA.iflnk:
            let link = archive_entry_symlink(e)
            let raw = link.map { Array(UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: strlen($0))) } ?? []
            return TarEntry(name: name, kind: .symlink(target: try EntryName.resolveSymlink(entry: name, target: raw)), size: 0)
        case LA.ifchr, LA.ifblk:
            throw SeedError(.unsafeEntry, "entry \(shown): device nodes are not allowed")
        case LA.ififo:
            throw SeedError(.unsafeEntry, "entry \(shown): FIFOs are not allowed")
        case LA.ifsock:
            throw SeedError(.unsafeEntry, "entry \(shown): sockets are not allowed")
        default:
            throw SeedError(.unsafeEntry, "entry \(shown): unsupported entry type \(String(type, radix: 8))")
        }
    }

    // MARK: checks on raw bytes

    /// Looks at the raw header blocks of an entry (ustar header, pax or GNU long-name records)
    /// for NUL bytes inside a name, which libarchive would silently cut off.
    func inspectHeaders(from: Int64, to: Int64, shown: String) throws {
        guard to - from <= 1 << 20 else {
            throw SeedError(.tooLarge, "entry \(shown): tar headers larger than 1 MiB")
        }
        guard let h = recent.bytes(from: from, to: to) else {
            throw SeedError(.malformedArchive, "entry \(shown): tar headers could not be inspected")
        }
        func nulInside(_ field: ArraySlice<UInt8>) -> Bool {
            guard let z = field.firstIndex(of: 0) else { return false }
            return field[z...].contains { $0 != 0 }
        }
        var off = 0
        while off + 512 <= h.count {
            let block = h[off..<off + 512]
            let type = block[off + 156]
            let ustar = Array(block[off + 257..<off + 263]) == Array("ustar\0".utf8)
            if nulInside(block[off..<off + 100]) || nulInside(block[off + 157..<off + 257]) || (ustar && nulInside(block[off + 345..<off + 500])) {
                throw SeedError(.unsafeEntry, "entry \(shown): a name field holds bytes after a NUL")
            }
            let size = Self.octal(block[off + 124..<off + 136]) ?? 0
            let dataLen = Int((size + 511) / 512 * 512)
            off += 512
            let isMeta = type == UInt8(ascii: "x") || type == UInt8(ascii: "g") || type == UInt8(ascii: "L") || type == UInt8(ascii: "K")
            guard isMeta else { break }
            guard off + Int(size) <= h.count else { break }
            let data = h[off..<off + Int(size)]
            if type == UInt8(ascii: "L") || type == UInt8(ascii: "K") {
                if nulInside(data) { throw SeedError(.unsafeEntry, "entry \(shown): a GNU long name holds bytes after a NUL") }
            } else {
                try Self.checkPax(Array(data), shown: shown)
            }
            off += dataLen
        }
    }

    /// Checks pax records (`LEN key=value\n`) whose value is a name for embedded NULs.
    static func checkPax(_ d: [UInt8], shown: String) throws {
        var i = 0
        while i < d.count {
            var j = i
            var len = 0
            while j < d.count, d[j] >= 0x30, d[j] <= 0x39 { len = len * 10 + Int(d[j] - 0x30); j += 1; if len > d.count { break } }
            guard len > 0, i + len <= d.count, j < d.count, d[j] == 0x20 else { return }
            let record = d[(j + 1)..<(i + len)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
                if key == "path" || key == "linkpath", record[(eq + 1)...].dropLast().contains(0) {
                    throw SeedError(.unsafeEntry, "entry \(shown): pax \(key) holds a NUL byte")
                }
            }
            i += len
        }
    }

    static func octal(_ f: ArraySlice<UInt8>) -> Int64? {
        if let first = f.first, first & 0x80 != 0 { return nil }   // base-256: only for huge sizes
        var v: Int64 = 0
        var seen = false
        for b in f {
            if b == 0 || b == 0x20 { if seen { break } else { continue } }
            guard b >= 0x30, b <= 0x37 else { return nil }
            v = v * 8 + Int64(b - 0x30)
            seen = true
        }
        return v
    }

    /// After libarchive reports the end: the end-of-archive marker must have been there, and
    /// everything after it, decompressed and raw, must be zero padding.
    func checkEnd(lastEnd: Int64, entries: Int, lastName: String) throws {
        let consumed = archive_filter_bytes(inner.a, -1)
        if entries == 0 && expandedTotal == 0 {
            throw SeedError(.malformedArchive, "empty archive: no tar data")
        }
        guard consumed >= lastEnd + 512, let marker = recent.bytes(from: lastEnd, to: lastEnd + 512), marker.allSatisfy({ $0 == 0 }) else {
            throw SeedError(.malformedArchive, "archive truncated after entry \(SeedError.quote(lastName)): the end-of-archive marker is missing")
        }
        // Decompressed bytes handed to the tar parser but not consumed by it.
        guard let rest = recent.bytes(from: consumed, to: expandedTotal) else {
            throw SeedError(.malformedArchive, "trailing data after the end of the archive could not be inspected")
        }
        guard rest.allSatisfy({ $0 == 0 }) else {
            throw SeedError(.malformedArchive, "trailing data after the end of the archive (after entry \(SeedError.quote(lastName)))")
        }
        // Decompressed bytes not yet handed over.
        while !outerEOF {
            let buffer = buffers[nextBuffer]
            let n = archive_read_data(outer.a, buffer.baseAddress, buffer.count)
            if let e = pendingError { throw e }
            if n < 0 { throw SeedError(.malformedArchive, "cannot decompress the archive: \(outer.errorString)") }
            if n == 0 { outerEOF = true; break }
            expandedTotal += Int64(n)
            guard expandedTotal <= limits.maxUncompressedBytes else { throw expansionError }
            guard UnsafeRawBufferPointer(rebasing: buffer[..<n]).allSatisfy({ $0 == 0 }) else {
                throw SeedError(.malformedArchive, "trailing data after the end of the archive (after entry \(SeedError.quote(lastName)))")
            }
        }
        // Raw bytes the decompressor left (data after a compressed stream).
        let rawConsumed = archive_filter_bytes(outer.a, -1)
        var pos = rawConsumed
        if let first = rawRecent.first, pos < first.offset {
            throw SeedError(.malformedArchive, "data after the end of the compressed stream could not be inspected")
        }
        for (offset, buffer) in rawRecent {
            let end = offset + Int64(buffer.readableBytes)
            guard pos < end else { continue }
            let from = Int(max(pos, offset) - offset)
            let nonzero = buffer.withUnsafeReadableBytes { $0[from...].contains { $0 != 0 } }
            if nonzero { throw SeedError(.malformedArchive, "trailing data after the end of the compressed stream") }
            pos = end
        }
        while let more = try input.receiveBlocking() {
            rawTotal += Int64(more.readableBytes)
            guard rawTotal <= limits.maxUncompressedBytes else { throw expansionError }
            if more.withUnsafeReadableBytes({ $0.contains { $0 != 0 } }) {
                throw SeedError(.malformedArchive, "trailing data after the end of the archive")
            }
        }
    }

    var expansionError: SeedError {
        SeedError(.tooLarge, "archive expands past the limit of \(limits.maxUncompressedBytes) bytes")
    }

    // MARK: libarchive callbacks (on this thread)

    /// Outer read callback: the next input buffer, held until the following call.
    func pullRaw(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        do {
            guard let buffer = try input.receiveBlocking() else {
                current = nil
                return 0
            }
            rawRecent.append((rawTotal, buffer))
            if rawRecent.count > 3 { rawRecent.removeFirst() }
            rawTotal += Int64(buffer.readableBytes)
            current = buffer
            return buffer.withUnsafeReadableBytes { p in
                out.pointee = p.baseAddress
                return p.count
            }
        } catch {
            pendingError = pendingError ?? error
            return -1
        }
    }

    /// Inner read callback: the next decompressed chunk, in a rotating buffer so the last few
    /// stay readable for `inspectHeaders` and `checkEnd`.
    func pullExpanded(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if outerEOF { return 0 }
        let buffer = buffers[nextBuffer]
        let n = archive_read_data(outer.a, buffer.baseAddress, buffer.count)
        if pendingError != nil { return -1 }
        if n < 0 {
            pendingError = SeedError(.malformedArchive, "cannot decompress the archive: \(outer.errorString)")
            return -1
        }
        if n == 0 {
            outerEOF = true
            return 0
        }
        recent.add(offset: expandedTotal, bytes: UnsafeRawBufferPointer(rebasing: buffer[..<n]))
        expandedTotal += Int64(n)
        if expandedTotal > limits.maxUncompressedBytes {
            pendingError = expansionError
            return -1
        }
        nextBuffer = (nextBuffer + 1) % Self.rotation
        out.pointee = UnsafeRawPointer(buffer.baseAddress)
        return n
    }

    func checkOuter(_ rc: Int32, _ what: String) throws {
        if let e = pendingError { throw e }
        try outer.check(rc, .malformedArchive, what)
    }

    func checkInner(_ rc: Int32, _ what: String) throws {
        if let e = pendingError { throw e }
        try inner.check(rc, .malformedArchive, what)
    }
}

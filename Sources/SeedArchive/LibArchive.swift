import CArchive
import SeedOCI

/// libarchive return codes and file-type constants (the `AE_IF*` macros do not import).
enum LA {
    static let ok: Int32 = 0          // ARCHIVE_OK
    static let eof: Int32 = 1         // ARCHIVE_EOF
    static let retry: Int32 = -10     // ARCHIVE_RETRY
    static let warn: Int32 = -20      // ARCHIVE_WARN
    static let failed: Int32 = -25    // ARCHIVE_FAILED
    static let fatal: Int32 = -30     // ARCHIVE_FATAL

    static let ifmt: UInt32 = 0o170000
    static let ifreg: UInt32 = 0o100000
    static let iflnk: UInt32 = 0o120000
    static let ifsock: UInt32 = 0o140000
    static let ifchr: UInt32 = 0o020000
    static let ifblk: UInt32 = 0o060000
    static let ifdir: UInt32 = 0o040000
    static let ififo: UInt32 = 0o010000

    /// The version of the libarchive seed runs with (not the one it was built against).
    static var version: String { String(cString: archive_version_string()) }
}

/// Owns a libarchive read handle; freed on deinit.
final class ReadHandle {
    let a: OpaquePointer

    init() throws {
        guard let a = archive_read_new() else { throw SeedError(.internal, "archive_read_new failed") }
        self.a = a
    }

    deinit { archive_read_free(a) }

    /// libarchive's message for the last failure.
    var errorString: String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// Throws for anything worse than `ARCHIVE_WARN`, with libarchive's message attached.
    func check(_ rc: Int32, _ code: SeedError.Code = .malformedArchive, _ what: @autoclosure () -> String) throws {
        if rc == LA.ok || rc == LA.warn { return }
        throw SeedError(code, "\(what()): \(errorString)")
    }
}

/// Owns a libarchive write handle; freed on deinit.
final class WriteHandle {
    let a: OpaquePointer
    /// The object behind the callbacks' context pointer, kept alive until the handle is freed.
    var client: AnyObject?

    init() throws {
        guard let a = archive_write_new() else { throw SeedError(.internal, "archive_write_new failed") }
        self.a = a
    }

    deinit {
        archive_write_free(a)
        client = nil
    }

    var errorString: String {
        archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    func check(_ rc: Int32, _ what: @autoclosure () -> String) throws {
        if rc == LA.ok || rc == LA.warn { return }
        throw SeedError(.internal, "\(what()): \(errorString)")
    }
}

/// The libarchive version string, e.g. `libarchive 3.6.2 zlib/1.2.13 liblzma/5.4.1 ...`.
public enum LibArchiveInfo {
    /// What `archive_version_details()` reports at run time.
    public static var details: String { String(cString: archive_version_details()) }
    /// Just the version number, e.g. `3.6.2`.
    public static var version: String {
        String(cString: archive_version_string()).replacingOccurrences(of: "libarchive ", with: "")
    }
}

import Foundation
import SeedOCI
import SeedStore

/// The coordinator's cache: a verified blob store, plus what each reference last resolved to
/// (`refs.json`), so a later run can go on when a registry is unreachable. One process owns it
/// at a time (flock); a second `seed fetch`/`seed sync` fails at once with `locked` (exit 3).
public final class Cache: Sendable {
    /// The cache directory.
    public let root: String
    /// The verified blobs.
    public let store: BlobStore
    let refsPath: String
    let lock = NSLock()

    /// What a reference resolved to, and when.
    public struct Record: Codable, Sendable, Equatable {
        /// The root descriptor (manifest or index).
        public var descriptor: Descriptor
        /// Where it came from: `registry`, or the file or URL.
        public var source: String
        /// When it was resolved (RFC 3339).
        public var resolvedAt: String
        /// For archive sources: the SHA-256 of the archive it was read from.
        public var archiveSHA256: Digest?
        /// For `file:` sources: the file's size and modification time when it was read.
        public var fileStamp: String?
    }

    /// Opens (creating) the cache at `root`, taking its lock.
    public init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        do {
            store = try BlobStore(root: root, access: .exclusive)
        } catch let e as SeedError where e.code == .locked {
            throw SeedError(.locked, "another seed sync or fetch holds the cache lock (\(root))")
        }
        refsPath = root + "/refs.json"
    }

    /// `$XDG_CACHE_HOME/seed`, else `~/.cache/seed`.
    public static func defaultRoot() -> String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/seed" }
        return (env["HOME"] ?? "/root") + "/.cache/seed"
    }

    /// Every record.
    public func records() -> [String: Record] { Self.records(root: root) }

    /// Every record of the cache at `root`, read without taking the lock (`refs.json` is only
    /// ever replaced atomically): for read-only commands such as `seed status`.
    public static func records(root: String) -> [String: Record] {
        guard let data = FileManager.default.contents(atPath: root + "/refs.json"),
              let r = try? JSONDecoder().decode([String: Record].self, from: data) else { return [:] }
        return r
    }

    /// What `ref` last resolved to from `source`.
    public func record(for ref: Reference, source: String) -> Record? {
        guard let r = records()[ref.description], r.source == source else { return nil }
        return r
    }

    /// Remembers what `ref` resolved to. Written atomically.
    public func remember(_ ref: Reference, descriptor: Descriptor, source: String, archiveSHA256: Digest? = nil, fileStamp: String? = nil) throws {
        lock.lock()
        defer { lock.unlock() }
        var all = records()
        let f = ISO8601DateFormatter()
        all[ref.description] = Record(descriptor: descriptor, source: source, resolvedAt: f.string(from: Date()), archiveSHA256: archiveSHA256, fileStamp: fileStamp)
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let tmp = refsPath + ".tmp"
        try e.encode(all).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, refsPath) == 0 else { throw SeedError(.io, "cannot write \(refsPath)") }
    }
}

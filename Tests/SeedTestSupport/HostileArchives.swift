import Foundation
import SeedOCI

/// Hostile archives written by Resources/hostile.py, and how each must be refused: shared by the
/// archive reader's tests and the agent's (the same archives, over HTTP).
public enum HostileArchives {
    public struct Case: Sendable, CustomStringConvertible {
        /// The file Resources/hostile.py writes.
        public var file: String
        /// The error code it must be refused with.
        public var code: SeedError.Code
        /// Text the error message must contain (compared lowercased).
        public var mentions: String
        /// Read with the default limits rather than the small test limits (32 MiB expanded, 100 entries).
        public var defaultLimits = false
        public var description: String { file }
    }

    /// Every hostile archive and how it must be refused.
    public static let cases: [Case] = [
        .init(file: "dotdot.tar", code: .unsafeEntry, mentions: "../evil"),
        .init(file: "dotdot-inside.tar", code: .unsafeEntry, mentions: "blobs/../../evil"),
        .init(file: "absolute.tar", code: .unsafeEntry, mentions: "/tmp/seed-evil"),
        .init(file: "symlink-out.tar", code: .unsafeEntry, mentions: "\"blobs/evil\""),
        .init(file: "symlink-absolute.tar", code: .unsafeEntry, mentions: "/etc/passwd"),
        .init(file: "hardlink-out.tar", code: .unsafeEntry, mentions: "\"evil\""),
        .init(file: "hardlink-absolute.tar", code: .unsafeEntry, mentions: "/etc/passwd"),
        .init(file: "chardev.tar", code: .unsafeEntry, mentions: "\"dev/null\": device"),
        .init(file: "blockdev.tar", code: .unsafeEntry, mentions: "\"dev/sda\": device"),
        .init(file: "fifo.tar", code: .unsafeEntry, mentions: "\"evil-fifo\": fifo"),
        .init(file: "duplicate-index.tar", code: .malformedArchive, mentions: "\"index.json\" appears twice"),
        .init(file: "duplicate-file.tar", code: .malformedArchive, mentions: "\"extra/layer.tar\" appears twice"),
        .init(file: "blob-mismatch.tar", code: .digestMismatch, mentions: "entry \"blobs/sha256/"),
        .init(file: "layer-corrupted.tar", code: .digestMismatch, mentions: "entry \"blobs/sha256/"),
        .init(file: "truncated-boundary.tar", code: .malformedArchive, mentions: "end-of-archive marker is missing"),
        .init(file: "truncated-mid-entry.tar", code: .malformedArchive, mentions: "truncated"),
        .init(file: "truncated-mid-header.tar", code: .malformedArchive, mentions: "truncated"),
        .init(file: "truncated.tar.gz", code: .malformedArchive, mentions: "decompress"),
        .init(file: "trailing-garbage.tar", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "trailing-garbage-after-marker.tar", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "trailing-garbage.tar.gz", code: .malformedArchive, mentions: "trailing data"),
        .init(file: "not-a-tar.bin", code: .malformedArchive, mentions: "not a tar archive"),
        .init(file: "text.txt", code: .malformedArchive, mentions: "not a tar archive"),
        .init(file: "empty.tar", code: .malformedArchive, mentions: "empty archive"),
        .init(file: "only-end-marker.tar", code: .malformedArchive, mentions: "neither index.json nor manifest.json"),
        .init(file: "bomb.tar.gz", code: .tooLarge, mentions: "expands past the limit"),
        .init(file: "nul-in-name.tar", code: .unsafeEntry, mentions: "nul"),
        .init(file: "nul-in-pax-path.tar", code: .unsafeEntry, mentions: "nul"),
        .init(file: "invalid-utf8-name.tar", code: .unsafeEntry, mentions: "\\xff"),
        .init(file: "invalid-utf8-pax.tar", code: .unsafeEntry, mentions: "\\xff"),
        .init(file: "control-char-name.tar", code: .unsafeEntry, mentions: "\\x0a"),
        .init(file: "huge-index.tar", code: .tooLarge, mentions: "\"index.json\" is 52428"),
        .init(file: "huge-manifest.tar", code: .tooLarge, mentions: "limit for json", defaultLimits: true),
        .init(file: "missing-blob.tar", code: .missingBlobs, mentions: "neither in the archive nor in the store: sha256:"),
        .init(file: "size-mismatch.tar", code: .sizeMismatch, mentions: "layer sha256:"),
        .init(file: "no-index.tar", code: .malformedArchive, mentions: "neither index.json nor manifest.json"),
        .init(file: "bad-ref-name.tar", code: .invalidReference, mentions: "example.com/UPPER/case:1"),
        .init(file: "duplicate-json-key.tar", code: .malformedArchive, mentions: "duplicate key \"schemaVersion\""),
        .init(file: "many-entries.tar", code: .tooLarge, mentions: "more than 100 entries"),
        .init(file: "docker-diffid-mismatch.tar", code: .digestMismatch, mentions: "\"l/layer.tar\" hashes to"),
        .init(file: "docker-bad-repotag.tar", code: .invalidReference, mentions: "Bad Name:1"),
        .init(file: "docker-missing-layer.tar", code: .malformedArchive, mentions: "\"nowhere/layer.tar\" is not in the archive"),
        .init(file: "docker-link-loop.tar", code: .malformedArchive, mentions: "\"l/layer.tar\" is not in the archive"),
    ]

    /// The generated archives, made once per test process.
    public static let dir: String = {
        let tmp = try! TempDir("seed-hostile")
        let script = Bundle.module.path(forResource: "hostile", ofType: "py")!
        try! run(["python3", script, tmp.path])
        return tmp.path
    }()

}

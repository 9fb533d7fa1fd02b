import SeedOCI

/// The rules for names inside an archive. A name is only ever a key in a dictionary; it never
/// becomes a filesystem path, but a name that would be unsafe as one is refused anyway, since
/// no honest image archive contains it.
enum EntryName {
    static let maxLength = 1024

    /// Validates raw name bytes and returns the normalised name: no leading `./`, no empty or
    /// `.` components, no trailing slash. Refuses absolute names, `..` components, and bytes
    /// outside printable ASCII (NUL, control characters, invalid or non-ASCII UTF-8).
    static func normalize(_ raw: [UInt8]) throws -> String {
        let shown = SeedError.quote(raw)
        guard !raw.isEmpty else { throw SeedError(.malformedArchive, "entry with an empty name") }
        guard raw.count <= maxLength else { throw SeedError(.unsafeEntry, "entry \(shown): name longer than \(maxLength) bytes") }
        guard raw.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw SeedError(.unsafeEntry, "entry \(shown): name contains a control, NUL or non-ASCII byte")
        }
        guard raw.first != UInt8(ascii: "/") else {
            throw SeedError(.unsafeEntry, "entry \(shown): absolute path")
        }
        let name = String(decoding: raw, as: UTF8.self)
        var parts: [Substring] = []
        for c in name.split(separator: "/", omittingEmptySubsequences: true) where c != "." {
            if c == ".." { throw SeedError(.unsafeEntry, "entry \(shown): path contains '..'") }
            parts.append(c)
        }
        guard !parts.isEmpty else { return "." }
        return parts.joined(separator: "/")
    }

    /// Resolves a symlink target relative to the directory of `entry` (already normalised),
    /// refusing targets that are absolute or climb out of the archive.
    static func resolveSymlink(entry: String, target raw: [UInt8]) throws -> String {
        let shown = SeedError.quote(raw)
        guard !raw.isEmpty, raw.count <= maxLength, raw.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw SeedError(.unsafeEntry, "entry \(SeedError.quote(entry)): symlink target \(shown) is empty or has control or non-ASCII bytes")
        }
        guard raw.first != UInt8(ascii: "/") else {
            throw SeedError(.unsafeEntry, "entry \(SeedError.quote(entry)): symlink to the absolute path \(shown) points outside the archive")
        }
        var stack = entry.split(separator: "/").dropLast().map(String.init)
        for c in String(decoding: raw, as: UTF8.self).split(separator: "/") {
            switch c {
            case ".": continue
            case "..":
                guard !stack.isEmpty else {
                    throw SeedError(.unsafeEntry, "entry \(SeedError.quote(entry)): symlink target \(shown) points outside the archive")
                }
                stack.removeLast()
            default: stack.append(String(c))
            }
        }
        guard !stack.isEmpty else {
            throw SeedError(.unsafeEntry, "entry \(SeedError.quote(entry)): symlink target \(shown) is the archive root")
        }
        return stack.joined(separator: "/")
    }
}

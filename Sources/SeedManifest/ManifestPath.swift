import Foundation

/// Lexical path handling: no filesystem access, no symlink resolution.
enum ManifestPath {
    /// `path` made absolute against `base` (or the current directory) and normalised.
    static func absolute(_ path: String, against base: String? = nil) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        let dir = base ?? FileManager.default.currentDirectoryPath
        return normalize(dir + "/" + path)
    }

    /// Collapses `//`, `.` and `..` in an absolute path; `..` at the root stays at the root.
    static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The directory of an absolute, normalised path.
    static func directory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The name messages use for a manifest file: its last path component.
    static func displayName(_ path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? ""
        return name.isEmpty ? "seed.yaml" : name
    }
}

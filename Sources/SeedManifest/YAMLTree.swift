import SeedOCI
import Yams

/// A key path into the manifest as messages show it: `images[2].ref`,
/// `registries["127.0.0.1:5000"].insecure`. List indices count from 0.
struct KeyPath: CustomStringConvertible {
    var text: String

    static let root = KeyPath(text: "")

    var isRoot: Bool { text.isEmpty }

    func child(_ key: String) -> KeyPath {
        if KeyPath.isSimple(key) { return KeyPath(text: text.isEmpty ? key : text + "." + key) }
        return KeyPath(text: text + "[" + SeedError.quote(key, limit: 80) + "]")
    }

    func index(_ i: Int) -> KeyPath {
        KeyPath(text: text + "[\(i)]")
    }

    var description: String { text }

    private static func isSimple(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, first == "_" || ("a"..."z").contains(first) || ("A"..."Z").contains(first) else { return false }
        return key.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_" || c == "-"
        }
    }
}

/// A node of the composed tree with where it sits.
struct Value {
    let node: Node
    let path: KeyPath
    let line: Int

    init(_ node: Node, _ path: KeyPath, fallbackLine: Int) {
        self.node = node
        self.path = path
        self.line = node.mark?.line ?? fallbackLine
    }

    /// A scalar that stands for null: plain and empty, `~` or `null`.
    static func isNull(_ s: Node.Scalar) -> Bool {
        s.style == .plain && (s.string.isEmpty || s.string == "~" || s.string == "null" || s.string == "Null" || s.string == "NULL")
    }

    var isNull: Bool {
        if case .scalar(let s) = node { return Value.isNull(s) }
        return false
    }

    /// What the node is, for "found …" in messages.
    var found: String {
        switch node {
        case .scalar(let s):
            if Value.isNull(s) { return "null" }
            switch s.style {
            case .singleQuoted, .doubleQuoted: return "the string " + SeedError.quote(s.string, limit: 80)
            default: return SeedError.quote(s.string, limit: 80)
            }
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }
}

/// The entries of a mapping node, in file order.
struct Fields {
    /// One `key: value` pair.
    struct Entry {
        let key: String
        let keyLine: Int
        let value: Value
    }

    let owner: Value
    let entries: [Entry]

    func value(_ key: String) -> Value? {
        entries.first { $0.key == key }?.value
    }
}

/// Suggests the allowed key closest to a mistyped one.
enum Spelling {
    static func suggestion(for key: String, among allowed: [String]) -> String? {
        let k = Array(key.lowercased().unicodeScalars)
        var best: (String, Int)?
        for candidate in allowed {
            let d = distance(k, Array(candidate.lowercased().unicodeScalars))
            if d <= max(1, min(2, candidate.count / 3)), d < (best?.1 ?? Int.max) { best = (candidate, d) }
        }
        return best?.0
    }

    /// Levenshtein distance.
    static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var prev = row[0]
            row[0] = i
            for j in 1...b.count {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }
}

import SeedOCI
import Yams

/// Decodes manifest text by walking the node tree Yams composes, so that every refusal names the
/// line and key path. Yams itself accepts duplicate keys, anchors, aliases, tags and merge keys
/// without complaint; `checkStructure` refuses them before any value is read.
struct ManifestDecoder {
    let yaml: String
    /// The file name in messages.
    let name: String
    let path: String
    let baseDirectory: String
    let source: YAMLSource

    static let topKeys = ["version", "images", "platforms", "auth", "registries", "nodes", "discovery", "agents"]
    static let imageKeys = ["ref", "source", "sha256", "nodes"]
    static let registryKeys = ["insecure", "caFile"]
    static let nodeKeys = ["name", "url", "labels"]
    static let discoveryKeys = ["dns", "port", "scheme"]
    static let agentsKeys = ["tokenFile", "caFile"]
    static let authKeys = ["dockerConfig"]

    init(yaml: String, path: String) {
        // Yams tells libyaml the encoding, so libyaml does not drop a byte order mark itself;
        // left in, it would count as a column and misalign the first line.
        self.yaml = yaml.unicodeScalars.first == "\u{FEFF}" ? String(yaml.unicodeScalars.dropFirst()) : yaml
        name = ManifestPath.displayName(path)
        self.path = ManifestPath.absolute(path.isEmpty ? "seed.yaml" : path)
        baseDirectory = ManifestPath.directory(self.path)
        source = YAMLSource(self.yaml)
    }

    func decode() throws -> SeedManifest {
        let size = yaml.utf8.count
        guard size <= SeedManifest.maxSize else { throw ManifestFile.tooLarge(name, size) }
        if let line = source.lineExceedingNesting(limit: SeedManifest.maxNesting) {
            throw fail(line, .root, "collections nest deeper than \(SeedManifest.maxNesting) levels")
        }
        let root = try compose()
        try checkStructure(root, .root)
        return try manifest(Value(root, .root, fallbackLine: 1))
    }

    // MARK: errors

    func fail(_ line: Int, _ path: KeyPath, _ what: String) -> SeedError {
        SeedError(.invalidInput, path.isRoot ? "\(name):\(line): \(what)" : "\(name):\(line): \(path): \(what)")
    }

    func fail(_ v: Value, _ what: String) -> SeedError {
        fail(v.line, v.path, what)
    }

    // MARK: composing

    private func compose() throws -> Node {
        let empty = "the manifest is empty; want a mapping with version: 1 and images"
        guard !yaml.isEmpty else { throw fail(1, .root, empty) }
        let first: Node?, second: Node?
        do {
            let parser = try Parser(yaml: yaml, resolver: .basic, constructor: .default, encoding: .utf8)
            first = try parser.nextRoot()
            second = first == nil ? nil : try parser.nextRoot()
        } catch {
            throw yamlError(error)
        }
        guard let first else { throw fail(1, .root, empty) }
        if let second {
            throw fail(second.mark?.line ?? 1, .root, "a second YAML document; a manifest is exactly one document (remove the ---)")
        }
        return first
    }

    private func yamlError(_ error: any Error) -> SeedError {
        guard let e = error as? YamlError else { return SeedError(.invalidInput, "\(name): invalid YAML", cause: error) }
        switch e {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            if problem == "found undefined alias" {
                return fail(mark.line, .root, "YAML aliases (*name) are not allowed in a manifest")
            }
            var what = "invalid YAML: " + problem
            if let context { what += " (\(context.text) at line \(context.mark.line))" }
            return fail(mark.line, .root, what)
        case .reader(let problem, let offset, _, _):
            var line = 1
            if let offset { line += yaml.prefix(offset).reduce(0) { $0 + ($1.isNewline ? 1 : 0) } }
            return fail(line, .root, "invalid YAML: " + problem)
        default:
            return SeedError(.invalidInput, "\(name): invalid YAML: \(e)")
        }
    }

    /// Refuses what a strict configuration format has no use for, anywhere in the tree: anchors
    /// and aliases (alias bombs), tags, merge keys, keys that are not strings, duplicate keys. The
    /// walk is in document order, so an anchor is met before any alias that would repeat it.
    private func checkStructure(_ node: Node, _ path: KeyPath) throws {
        if let mark = node.mark {
            let properties = source.properties(at: mark)
            if properties.anchor {
                throw fail(mark.line, path, "YAML anchors and aliases (&name, *name) are not allowed in a manifest")
            }
            if properties.tag {
                throw fail(mark.line, path, "YAML tags (!…) are not allowed in a manifest; quote the value to make it a string")
            }
        }
        switch node {
        case .scalar:
            return
        case .sequence(let items):
            for (i, item) in items.enumerated() { try checkStructure(item, path.index(i)) }
        case .mapping(let mapping):
            var seen: [String: Int] = [:]
            for (key, value) in mapping {
                let keyLine = key.mark?.line ?? node.mark?.line ?? 1
                try checkStructure(key, path)
                guard case .scalar(let k) = key else {
                    throw fail(keyLine, path, "a key must be a string, found \(Value(key, path, fallbackLine: keyLine).found)")
                }
                if Value.isNull(k) { throw fail(keyLine, path, "a key is empty or null") }
                let child = path.child(k.string)
                if k.style == .plain && k.string == "<<" {
                    throw fail(keyLine, child, "YAML merge keys (<<) are not allowed in a manifest")
                }
                if let first = seen[k.string] {
                    throw fail(keyLine, child, "duplicate key (first at line \(first))")
                }
                seen[k.string] = keyLine
                try checkStructure(value, child)
            }
        }
    }

    // MARK: typed access

    func fields(_ v: Value, _ what: String) throws -> Fields {
        guard case .mapping(let mapping) = v.node else { throw fail(v, "want \(what), found \(v.found)") }
        var entries: [Fields.Entry] = []
        for (key, value) in mapping {
            let keyLine = key.mark?.line ?? v.line
            let k = key.scalar?.string ?? ""
            entries.append(.init(key: k, keyLine: keyLine, value: Value(value, v.path.child(k), fallbackLine: keyLine)))
        }
        return Fields(owner: v, entries: entries)
    }

    func allowOnly(_ f: Fields, _ allowed: [String]) throws {
        for e in f.entries where !allowed.contains(e.key) {
            var what = "unknown key"
            if let s = Spelling.suggestion(for: e.key, among: allowed) { what += " (did you mean \(s)?)" }
            throw fail(e.keyLine, e.value.path, what + "; allowed here: " + allowed.joined(separator: ", "))
        }
    }

    func required(_ f: Fields, _ key: String, _ hint: String = "") throws -> Value {
        guard let v = f.value(key) else { throw fail(f.owner, "missing required key \(key)" + hint) }
        return v
    }

    /// The scalar's text exactly as written (quoted or not): `1.10`, `010`, `no`, `true` stay text.
    func string(_ v: Value, _ what: String = "a string") throws -> String {
        guard case .scalar(let s) = v.node, !Value.isNull(s) else { throw fail(v, "want \(what), found \(v.found)") }
        return s.string
    }

    func nonEmptyString(_ v: Value, _ what: String = "a string") throws -> String {
        let s = try string(v, what)
        guard !s.isEmpty else { throw fail(v, "want \(what), found an empty string") }
        return s
    }

    func list(_ v: Value, _ what: String) throws -> [Value] {
        guard case .sequence(let items) = v.node else { throw fail(v, "want \(what), found \(v.found)") }
        return items.enumerated().map { Value($1, v.path.index($0), fallbackLine: v.line) }
    }

    /// `true` or `false`, unquoted (also `True`/`TRUE`/`False`/`FALSE`, as YAML 1.2 spells them);
    /// `yes`, `on` and the like are refused.
    func bool(_ v: Value) throws -> Bool {
        if case .scalar(let s) = v.node, s.style == .plain {
            switch s.string {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        throw fail(v, "want true or false (unquoted), found \(v.found)")
    }

    /// A plain decimal integer in `range`, without sign or leading zeros.
    func int(_ v: Value, in range: ClosedRange<Int>) throws -> Int {
        if case .scalar(let s) = v.node, s.style == .plain,
           !s.string.isEmpty, s.string.count <= 18, s.string.allSatisfy({ $0.isASCII && $0.isNumber }),
           s.string == "0" || !s.string.hasPrefix("0"), let n = Int(s.string) {
            guard range.contains(n) else { throw fail(v, "\(n) is out of range \(range.lowerBound)-\(range.upperBound)") }
            return n
        }
        throw fail(v, "want an unquoted decimal integer (\(range.lowerBound)-\(range.upperBound)), found \(v.found)")
    }

    /// A relative or absolute filesystem path, returned absolute and normalised.
    func path(_ v: Value) throws -> String {
        try resolve(try nonEmptyString(v, "a path"), v)
    }

    func resolve(_ text: String, _ v: Value) throws -> String {
        guard !text.isEmpty else { throw fail(v, "the path is empty") }
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw fail(v, "the path \(SeedError.quote(text)) contains a control character")
        }
        if text.hasPrefix("~") {
            throw fail(v, "~ is not expanded in \(SeedError.quote(text)); write an absolute path or one relative to the manifest's directory")
        }
        return ManifestPath.absolute(text, against: baseDirectory)
    }

    /// A mapping of label names to values; values are scalars kept as written (`true` is "true").
    func labels(_ v: Value) throws -> [String: String] {
        let f = try fields(v, "a mapping of label names to string values")
        var out: [String: String] = [:]
        for e in f.entries {
            if let problem = Syntax.labelKeyProblem(e.key) { throw fail(e.keyLine, e.value.path, problem) }
            guard case .scalar(let s) = e.value.node, !Value.isNull(s) else {
                throw fail(e.value, "want a label value (a string), found \(e.value.found)")
            }
            if s.string.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw fail(e.value, "a label value must not contain control characters or line breaks")
            }
            out[e.key] = s.string
        }
        return out
    }
}

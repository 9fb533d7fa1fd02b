import Yams

/// The manifest text as libyaml counts it (lines split at the same breaks, columns in Unicode
/// scalars), so that a node's `Mark` can be looked up in it.
struct YAMLSource {
    let scalars: [Unicode.Scalar]
    /// Index into `scalars` where each line starts; line 1 is at index 0.
    let lineStarts: [Int]

    init(_ text: String) {
        let s = Array(text.unicodeScalars)
        var starts = [0]
        var i = 0
        while i < s.count {
            switch s[i] {
            case "\r":
                if i + 1 < s.count && s[i + 1] == "\n" { i += 1 }
                starts.append(i + 1)
            case "\n", "\u{85}", "\u{2028}", "\u{2029}":
                starts.append(i + 1)
            default:
                break
            }
            i += 1
        }
        scalars = s
        lineStarts = starts
    }

    static func isBreak(_ c: Unicode.Scalar) -> Bool {
        c == "\n" || c == "\r" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}"
    }

    /// The index of the scalar at a mark, if the mark lies in the text.
    func index(of mark: Mark) -> Int? {
        guard mark.line >= 1, mark.line <= lineStarts.count, mark.column >= 1 else { return nil }
        let i = lineStarts[mark.line - 1] + mark.column - 1
        return i < scalars.count ? i : nil
    }

    /// Which node properties (YAML 1.2 §6.9) the node starting at `mark` carries. libyaml starts a
    /// node's mark at its first property, so an anchor or a tag is found right there; an alias
    /// node shares the mark of the node it names, so it is found as that anchor.
    func properties(at mark: Mark) -> (anchor: Bool, tag: Bool) {
        guard var i = index(of: mark) else { return (false, false) }
        var tag = false
        while i < scalars.count {
            switch scalars[i] {
            case "&":
                return (true, tag)
            case "!":
                tag = true
                while i < scalars.count, !Self.isSpace(scalars[i]), !Self.isBreak(scalars[i]) { i += 1 }
                i = skipSeparation(from: i)
            default:
                return (false, tag)
            }
        }
        return (false, tag)
    }

    static func isSpace(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" }

    /// Skips blanks, line breaks and comments between node properties.
    private func skipSeparation(from start: Int) -> Int {
        var i = start
        while i < scalars.count {
            let c = scalars[i]
            if Self.isSpace(c) || Self.isBreak(c) {
                i += 1
            } else if c == "#" {
                while i < scalars.count, !Self.isBreak(scalars[i]) { i += 1 }
            } else {
                break
            }
        }
        return i
    }

    /// The first line on which collections nest deeper than `limit`, by an estimate made before
    /// Yams composes the tree (Yams composes recursively, so absurd nesting would exhaust the
    /// stack). The estimate counts open indentation levels, leading `- `/`? `/`: ` indicators and
    /// open flow brackets, skipping quoted, plain and block scalars and comments; it is never far
    /// below the real depth for anything libyaml accepts.
    func lineExceedingNesting(limit: Int) -> Int? {
        var indents: [Int] = []
        var flow = 0
        var quote: Unicode.Scalar?
        var blockScalarParent: Int?
        let s = scalars
        for line in 0..<lineStarts.count {
            let start = lineStarts[line]
            var end = line + 1 < lineStarts.count ? lineStarts[line + 1] : s.count
            while end > start, Self.isBreak(s[end - 1]) { end -= 1 }

            var i = start
            while i < end, s[i] == " " { i += 1 }
            let indent = i - start
            if quote == nil {
                var j = i
                while j < end, Self.isSpace(s[j]) { j += 1 }
                let blank = j == end || s[j] == "#"
                if let parent = blockScalarParent {
                    if blank || indent > parent { continue }
                    blockScalarParent = nil
                }
                if blank { continue }
                if flow == 0 {
                    while let last = indents.last, last >= indent { indents.removeLast() }
                    indents.append(indent)
                }
            }

            var indicators = 0
            var plain = false
            var prev: Unicode.Scalar = " "
            scan: while i < end {
                let c = s[i]
                if let q = quote {
                    if q == "\"" {
                        if c == "\\" { i += 2; prev = "x"; continue }
                        if c == "\"" { quote = nil }
                    } else if c == "'" {
                        if i + 1 < end && s[i + 1] == "'" { i += 2; continue }
                        quote = nil
                    }
                    prev = c
                    i += 1
                    continue
                }
                let next: Unicode.Scalar? = i + 1 < end ? s[i + 1] : nil
                let nextIsBlank = next.map(Self.isSpace) ?? true
                if plain {
                    if c == "#" && Self.isSpace(prev) { break scan }
                    if c == ":" && (nextIsBlank || (flow > 0 && next.map(Self.isFlowIndicator) == true)) {
                        plain = false
                    } else if !(flow > 0 && Self.isFlowIndicator(c)) {
                        prev = c
                        i += 1
                        continue
                    }
                    plain = false
                    if c == ":" { prev = c; i += 1; continue }
                }
                switch c {
                case " ", "\t", ",":
                    break
                case "#":
                    if Self.isSpace(prev) { break scan }
                    plain = true
                case "\"", "'":
                    quote = c
                case "[", "{":
                    flow += 1
                    if indents.count + indicators + flow > limit { return line + 1 }
                case "]", "}":
                    if flow > 0 { flow -= 1 }
                case "-", "?", ":":
                    if nextIsBlank {
                        indicators += 1
                        if indents.count + indicators + flow > limit { return line + 1 }
                    } else {
                        plain = true
                    }
                case "|", ">":
                    if flow == 0 {
                        blockScalarParent = indent
                        break scan
                    }
                    plain = true
                case "&", "*", "!":
                    while i + 1 < end, !Self.isSpace(s[i + 1]), !(flow > 0 && Self.isFlowIndicator(s[i + 1])) { i += 1 }
                default:
                    plain = true
                }
                prev = c
                i += 1
            }
            if indents.count + indicators + flow > limit { return line + 1 }
        }
        return nil
    }

    static func isFlowIndicator(_ c: Unicode.Scalar) -> Bool {
        c == "," || c == "[" || c == "]" || c == "{" || c == "}"
    }
}

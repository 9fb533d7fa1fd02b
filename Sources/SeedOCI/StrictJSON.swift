import Foundation

/// JSON decoding for documents that come from the network or an archive: a size cap checked
/// before anything is parsed, a nesting limit, and duplicate object keys refused (two parsers
/// must never disagree about what a manifest says).
public enum StrictJSON {
    /// The default cap for a manifest, index or config: 4 MiB, as registries commonly enforce.
    public static let defaultLimit = 4 << 20
    /// The deepest nesting accepted.
    public static let maxDepth = 64

    /// Decodes `T` from `bytes`; `what` names the document in errors (e.g. `entry index.json`).
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>, what: String, limit: Int = defaultLimit) throws -> T {
        guard bytes.count <= limit else {
            throw SeedError(.tooLarge, "\(what) is \(bytes.count) bytes, over the \(limit)-byte limit for JSON documents")
        }
        let data = Data(bytes)
        try validate(data, what: what)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let e as SeedError {
            throw SeedError(e.code, "\(what): \(e.message)")
        } catch let e as DecodingError {
            throw SeedError(.malformedArchive, "\(what) is not a valid \(T.self): \(describe(e))")
        }
    }

    /// Checks JSON syntax, nesting and key uniqueness without building any values.
    public static func validate(_ data: Data, what: String) throws {
        try data.withUnsafeBytes { raw in
            var scanner = Scanner(bytes: raw.bindMemory(to: UInt8.self), what: what)
            try scanner.document()
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.isEmpty ? "the top level" : c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .keyNotFound(let k, let ctx): return "missing key \(SeedError.quote(k.stringValue)) at \(path(ctx.codingPath))"
        case .typeMismatch(_, let ctx): return "wrong type at \(path(ctx.codingPath))"
        case .valueNotFound(_, let ctx): return "null or missing value at \(path(ctx.codingPath))"
        case .dataCorrupted(let ctx): return "\(ctx.debugDescription) at \(path(ctx.codingPath))"
        @unknown default: return "\(e)"
        }
    }

    struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        let what: String
        var i = 0

        init(bytes: UnsafeBufferPointer<UInt8>, what: String) {
            self.bytes = bytes
            self.what = what
        }

        func fail(_ why: String) -> SeedError {
            SeedError(.malformedArchive, "\(what) is not valid JSON: \(why) at byte \(i)")
        }

        mutating func ws() {
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
        }

        mutating func document() throws {
            ws()
            try value(depth: 0)
            ws()
            guard i == bytes.count else { throw fail("trailing data") }
        }

        mutating func value(depth: Int) throws {
            guard depth <= StrictJSON.maxDepth else { throw fail("nested deeper than \(StrictJSON.maxDepth)") }
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var keys = Set<String>()
                ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return }
                while true {
                    ws()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    // Swift's String equality is canonical equivalence, as JSONDecoder's key
                    // matching is: "K" and the Kelvin sign are one key to it, so they are here.
                    guard keys.insert(String(decoding: key, as: UTF8.self)).inserted else {
                        throw fail("duplicate key \(SeedError.quote(key))")
                    }
                    ws()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    ws()
                    try value(depth: depth + 1)
                    ws()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return }
                while true {
                    ws()
                    try value(depth: depth + 1)
                    ws()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                while i < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) || [0x2B, 0x2D, 0x2E, 0x45, 0x65].contains(bytes[i]) { i += 1 }
                guard i > start else { throw fail("bad number") }
            default:
                throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: String) throws {
            for b in word.utf8 {
                guard i < bytes.count, bytes[i] == b else { throw fail("bad literal") }
                i += 1
            }
        }

        /// Scans a string starting at its opening quote; returns its raw (still escaped) bytes,
        /// which is enough to tell keys apart except for differently escaped equal keys, which
        /// are decoded and compared too.
        mutating func string() throws -> [UInt8] {
            i += 1
            var out = [UInt8]()
            var escaped = false
            while i < bytes.count {
                let b = bytes[i]
                if b == UInt8(ascii: "\"") { i += 1; return escaped ? unescape(out) : out }
                if b < 0x20 { throw fail("control character in a string") }
                if b == UInt8(ascii: "\\") {
                    escaped = true
                    out.append(b)
                    i += 1
                    guard i < bytes.count else { break }
                }
                out.append(bytes[i])
                i += 1
            }
            throw fail("unterminated string")
        }

        func unescape(_ raw: [UInt8]) -> [UInt8] {
            let quoted = [UInt8(ascii: "\"")] + raw + [UInt8(ascii: "\"")]
            if let s = try? JSONDecoder().decode(String.self, from: Data(quoted)) { return Array(s.utf8) }
            return raw
        }
    }
}

/// Accumulates a small document from a stream of chunks, refusing to grow past a cap, so an
/// enormous body is rejected without being held in memory.
public struct BoundedBytes: Sendable {
    /// The bytes so far.
    public private(set) var bytes: [UInt8] = []
    /// The cap.
    public let limit: Int
    /// Names the document in errors.
    public let what: String

    /// Starts an empty accumulator.
    public init(limit: Int, what: String) {
        self.limit = limit
        self.what = what
    }

    /// Appends a chunk, or throws `tooLarge` once the total passes the cap.
    public mutating func append(_ chunk: UnsafeRawBufferPointer) throws {
        guard bytes.count + chunk.count <= limit else {
            throw SeedError(.tooLarge, "\(what) is over the \(limit)-byte limit for JSON documents")
        }
        bytes.append(contentsOf: chunk)
    }
}

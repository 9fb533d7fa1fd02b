import Foundation
import Testing
@testable import SeedOCI

private func validate(_ json: String) throws {
    try StrictJSON.validate(Data(json.utf8), what: "doc")
}

private func nestedArrays(_ depth: Int, inner: String = "") -> String {
    String(repeating: "[", count: depth) + inner + String(repeating: "]", count: depth)
}

private func nestedObjects(_ depth: Int) -> String {
    String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
}

/// A document that must be refused, and a fragment the message must contain.
struct JSONCase: Sendable, CustomTestStringConvertible {
    let json: String
    let why: String
    init(_ json: String, _ why: String) {
        self.json = json
        self.why = why
    }
    var testDescription: String { SeedError.quote(json, limit: 60) }
}

private let refusedDocuments: [JSONCase] = [
    // Duplicate keys at the top level.
    JSONCase(#"{"a":1,"a":2}"#, "duplicate key"),
    // Duplicate keys with equal values are still duplicates.
    JSONCase(#"{"a":1,"b":0,"a":1}"#, "duplicate key"),
    // Duplicate keys in a nested object.
    JSONCase(#"{"x":{"a":1,"a":2}}"#, "duplicate key"),
    // Duplicate keys deep in an array.
    JSONCase(#"{"x":[{"y":[{"a":1,"a":2}]}]}"#, "duplicate key"),
    // A key spelled plainly, then with a unicode escape.
    JSONCase(#"{"a":1,"\u0061":2}"#, "duplicate key"),
    // A key spelled with a unicode escape, then plainly.
    JSONCase(#"{"\u0061":1,"a":2}"#, "duplicate key"),
    // The same key escaped with different hex case.
    JSONCase(#"{"\u006a":1,"\u006A":2}"#, "duplicate key"),
    // An escaped slash against a plain one.
    JSONCase(#"{"a\/b":1,"a/b":2}"#, "duplicate key"),
    // A non-ASCII key, plain UTF-8 then escaped.
    JSONCase(#"{"é":1,"\u00e9":2}"#, "duplicate key"),
    // A surrogate pair against the literal character.
    JSONCase(#"{"😀":1,"\ud83d\ude00":2}"#, "duplicate key"),
    // A mediaType smuggled twice, once escaped.
    JSONCase(#"{"mediaType":"a","\u006dediaType":"b"}"#, "duplicate key"),
    // Trailing garbage after an object.
    JSONCase("{} x", "trailing data"),
    // A second document.
    JSONCase("{}{}", "trailing data"),
    // A stray closing bracket.
    JSONCase("{}]", "trailing data"),
    // A NUL after the document.
    JSONCase("{}\u{0}", "trailing data"),
    // Nothing.
    JSONCase("", "unexpected end"),
    // Only whitespace.
    JSONCase("  \n", "unexpected end"),
    // An unclosed object.
    JSONCase(#"{"a":1"#, "unexpected end"),
    // An unclosed array.
    JSONCase("[1,2", "unexpected end"),
    // A trailing comma in an array.
    JSONCase("[1,]", "unexpected character"),
    // A trailing comma in an object.
    JSONCase(#"{"a":1,}"#, "expected a key"),
    // A single-quoted key.
    JSONCase("{'a':1}", "expected a key"),
    // A bare key.
    JSONCase("{a:1}", "expected a key"),
    // A missing colon.
    JSONCase(#"{"a" 1}"#, "expected ':'"),
    // A missing comma.
    JSONCase(#"{"a":1 "b":2}"#, "expected ',' or '}'"),
    // A missing comma in an array.
    JSONCase("[1 2]", "expected ',' or ']'"),
    // An unterminated string.
    JSONCase(#""abc"#, "unterminated string"),
    // A string ending in a lone backslash.
    JSONCase(#""abc\"#, "unterminated string"),
    // A raw newline inside a string.
    JSONCase("\"a\nb\"", "control character"),
    // A raw NUL inside a key.
    JSONCase("{\"a\u{0}\":1}", "control character"),
    // A misspelt literal.
    JSONCase("nul", "bad literal"),
    // A literal in the wrong case.
    JSONCase("True", "unexpected character"),
    // A comment.
    JSONCase("// c\n{}", "unexpected character"),
    // 65 levels of arrays around a scalar.
    JSONCase(nestedArrays(65, inner: "1"), "nested deeper than 64"),
    // 65 levels of objects.
    JSONCase(nestedObjects(65), "nested deeper than 64"),
    // A million open brackets fail fast, without exhausting the stack.
    JSONCase(String(repeating: "[", count: 1_000_000), "nested deeper than 64"),
]

@Suite("StrictJSON")
struct StrictJSONTests {
    @Test("accepts well-formed documents", arguments: [
        // An empty object.
        "{}",
        // An empty array.
        "[]",
        // Whitespace around and inside.
        " \t\r\n{ \"a\" : [ 1 , 2 ] }\n",
        // The same key at different levels.
        #"{"a":{"a":{"a":1}}}"#,
        // The same key in sibling objects.
        #"{"a":1,"b":[{"a":1},{"a":2}],"c":{"a":3}}"#,
        // Keys that differ only in case.
        #"{"a":1,"A":2}"#,
        // An escaped value equal to a key is fine.
        #"{"a":"\u0061","b":"a"}"#,
        // Keys that only look alike once unescaped wrongly.
        #"{"a\\u0061":1,"aa":2}"#,
        // Every literal and number form.
        #"[true,false,null,0,-1,1.5,2e10,-3.25E-2,"s"]"#,
        // A top-level scalar.
        #""just a string""#,
        // Escaped quotes and backslashes in keys.
        #"{"a\"b":1,"a\\b":2,"a\/b":3}"#,
        // Non-ASCII keys.
        #"{"é":1,"ü":2}"#,
        // 64 levels of arrays around a scalar.
        nestedArrays(64, inner: "1"),
        // 64 levels of objects (the innermost value at depth 64).
        nestedObjects(64),
    ])
    func accepts(_ json: String) throws {
        try validate(json)
    }

    @Test("refuses malformed or ambiguous documents", arguments: refusedDocuments)
    func refuses(_ c: JSONCase) {
        let error = #expect(throws: SeedError.self) { try validate(c.json) }
        guard let error else { return }
        #expect(error.code == .malformedArchive)
        #expect(error.message.contains(c.why), "\(error.message)")
        // The message names the document and the position.
        #expect(error.message.hasPrefix("doc is not valid JSON"))
        #expect(error.message.contains("at byte"))
    }

    @Test("the duplicate-key message quotes the key")
    func duplicateMessage() {
        let error = #expect(throws: SeedError.self) { try validate(#"{"evil\u000akey":1,"evil\nkey":2}"#) }
        // The unescaped key holds a newline; the message shows it escaped.
        #expect(error?.message.contains(#""evil\x0akey""#) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("\n") == false)
    }

    @Test("keys that Swift strings consider equal are refused as duplicates")
    func canonicallyEquivalentKeys() {
        // U+212A KELVIN SIGN is canonically equivalent to "K"; Go's encoding/json sees two keys, Swift's decoder one.
        #expect(throws: SeedError.self) {
            try StrictJSON.decode([String: String].self, from: Fixture.bytes(#"{"K":"1","\u212A":"2"}"#), what: "doc")
        }
        // "é" precomposed and decomposed are also one Swift key.
        #expect(throws: SeedError.self) {
            try StrictJSON.decode([String: String].self, from: Fixture.bytes(#"{"\u00e9":"1","e\u0301":"2"}"#), what: "doc")
        }
    }

    @Test("decode applies the size limit before parsing")
    func sizeLimit() throws {
        // 2000 bytes against a 1024-byte limit, even though the document is valid.
        let big = #"{"a":""# + String(repeating: "x", count: 2000 - 8) + #""}"#
        #expect(big.utf8.count == 2000)
        let error = #expect(throws: SeedError.self) { try StrictJSON.decode([String: String].self, from: Fixture.bytes(big), what: "doc", limit: 1024) }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("2000") == true)
        #expect(error?.message.contains("1024") == true)
        #expect(error?.httpStatus == 413)
        // Garbage over the limit is still tooLarge: the size is checked first.
        let junk = [UInt8](repeating: UInt8(ascii: "{"), count: 2000)
        #expect(throws: SeedError(.tooLarge, "doc is 2000 bytes, over the 1024-byte limit for JSON documents")) {
            try StrictJSON.decode([String: String].self, from: junk, what: "doc", limit: 1024)
        }
        // A document of exactly the limit is accepted.
        let exact = #"{"a":""# + String(repeating: "x", count: 1024 - 8) + #""}"#
        #expect(try StrictJSON.decode([String: String].self, from: Fixture.bytes(exact), what: "doc", limit: 1024)["a"]?.count == 1016)
    }

    @Test("a 50 MiB document is refused with the default limit")
    func fiftyMiB() {
        var doc = [UInt8](repeating: UInt8(ascii: " "), count: 50 << 20)
        doc[0] = UInt8(ascii: "[")
        doc[doc.count - 1] = UInt8(ascii: "]")
        let error = #expect(throws: SeedError.self) { try StrictJSON.decode([Int].self, from: doc, what: "doc") }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains(String(StrictJSON.defaultLimit)) == true)
        #expect(StrictJSON.defaultLimit == 4 * 1024 * 1024)
    }

    @Test("decode errors name the document and the path")
    func decodeErrors() {
        struct T: Decodable { var a: [Int] }
        // A wrong type deep inside.
        let e1 = #expect(throws: SeedError.self) { try StrictJSON.decode(T.self, from: Fixture.bytes(#"{"a":[1,"x"]}"#), what: "entry index.json") }
        #expect(e1?.code == .malformedArchive)
        #expect(e1?.message.hasPrefix("entry index.json") == true)
        #expect(e1?.message.contains("wrong type") == true, "\(e1?.message ?? "")")
        // A missing key.
        let e2 = #expect(throws: SeedError.self) { try StrictJSON.decode(T.self, from: Fixture.bytes("{}"), what: "entry index.json") }
        #expect(e2?.message.contains(#"missing key "a""#) == true, "\(e2?.message ?? "")")
        // A null where a value is required.
        let e3 = #expect(throws: SeedError.self) { try StrictJSON.decode(T.self, from: Fixture.bytes(#"{"a":null}"#), what: "x") }
        #expect(e3?.code == .malformedArchive)
        // Numbers the scanner lets through are still refused by the decoder.
        let e4 = #expect(throws: SeedError.self) { try StrictJSON.decode(T.self, from: Fixture.bytes(#"{"a":[1.2.3]}"#), what: "x") }
        #expect(e4?.code == .malformedArchive)
        // Invalid UTF-8 in a string is refused.
        let e5 = #expect(throws: SeedError.self) { try StrictJSON.decode([String].self, from: [0x5B, 0x22, 0xFF, 0x22, 0x5D], what: "x") }
        #expect(e5?.code == .malformedArchive)
    }

    @Test("a SeedError from a nested type keeps its code and gains the document name")
    func nestedSeedError() {
        let error = #expect(throws: SeedError.self) { try StrictJSON.decode([Digest].self, from: Fixture.bytes(#"["sha256:abc"]"#), what: "entry index.json") }
        #expect(error?.code == .invalidDigest)
        #expect(error?.message.hasPrefix("entry index.json: invalid digest") == true, "\(error?.message ?? "")")
    }
}

@Suite("BoundedBytes")
struct BoundedBytesTests {
    @Test("accumulates chunks up to the limit and refuses to grow past it")
    func bounded() throws {
        var b = BoundedBytes(limit: 10, what: "manifest from registry")
        try [UInt8]("abcd".utf8).withUnsafeBytes { try b.append($0) }
        try [UInt8]("efghij".utf8).withUnsafeBytes { try b.append($0) }
        // Exactly at the limit.
        #expect(b.bytes == Array("abcdefghij".utf8))
        // An empty chunk at the limit is fine.
        try [UInt8]().withUnsafeBytes { try b.append($0) }
        // One more byte is refused, and nothing is appended.
        let error = #expect(throws: SeedError.self) { try [UInt8]("k".utf8).withUnsafeBytes { try b.append($0) } }
        #expect(error?.code == .tooLarge)
        #expect(error?.message.contains("manifest from registry") == true)
        #expect(error?.message.contains("10") == true)
        #expect(b.bytes.count == 10)
    }

    @Test("a single chunk larger than the limit is refused whole")
    func bigChunk() {
        var b = BoundedBytes(limit: 1024, what: "doc")
        let chunk = [UInt8](repeating: 0x41, count: 2000)
        #expect(throws: SeedError.self) { try chunk.withUnsafeBytes { try b.append($0) } }
        #expect(b.bytes.isEmpty)
        #expect(b.limit == 1024)
    }

    @Test("refuses many small chunks once their total passes the limit")
    func manyChunks() throws {
        var b = BoundedBytes(limit: StrictJSON.defaultLimit, what: "doc")
        let chunk = [UInt8](repeating: 0x20, count: 64 * 1024)
        for _ in 0..<64 { try chunk.withUnsafeBytes { try b.append($0) } }
        #expect(b.bytes.count == StrictJSON.defaultLimit)
        #expect(throws: SeedError.self) { try chunk.withUnsafeBytes { try b.append($0) } }
        #expect(b.bytes.count == StrictJSON.defaultLimit)
    }
}

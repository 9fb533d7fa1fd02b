import Foundation
import Testing
@testable import SeedOCI

private let malformedDigests: [(String, String)] = [
    // Empty.
    ("", "invalid digest"),
    // One hex digit short.
    ("sha256:" + String(repeating: "a", count: 63), "want sha256:"),
    // One hex digit too many.
    ("sha256:" + String(repeating: "a", count: 65), "want sha256:"),
    // Uppercase hex.
    ("sha256:" + String(repeating: "A", count: 64), "want sha256:"),
    // Mixed-case hex.
    ("sha256:" + String(repeating: "a", count: 63) + "B", "want sha256:"),
    // A non-hex letter.
    ("sha256:" + String(repeating: "a", count: 63) + "g", "want sha256:"),
    // A non-ASCII digit of the right byte count would still not be hex.
    ("sha256:" + String(repeating: "a", count: 62) + "é", "want sha256:"),
    // Hex alone, no algorithm.
    (Fixture.emptyHex, "want sha256:"),
    // Algorithm without the colon.
    ("sha256" + Fixture.emptyHex, "want sha256:"),
    // Algorithm only.
    ("sha256:", "want sha256:"),
    // A leading space.
    (" " + Fixture.empty, "invalid digest"),
    // A trailing newline.
    (Fixture.empty + "\n", "invalid digest"),
    // An empty algorithm.
    (":" + Fixture.emptyHex, "invalid digest"),
    // sha512 is refused as an unsupported algorithm.
    ("sha512:" + String(repeating: "a", count: 128), "unsupported digest algorithm"),
    // sha384 likewise.
    ("sha384:" + String(repeating: "a", count: 96), "unsupported digest algorithm"),
    // md5 likewise.
    ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm"),
    // sha512 with a sha256-sized payload is still unsupported, not merely malformed.
    ("sha512:" + Fixture.emptyHex, "unsupported digest algorithm"),
]

@Suite("Digest")
struct DigestTests {
    @Test("accepts sha256 with 64 lowercase hex digits", arguments: [
        // The digest of the empty string.
        Fixture.empty,
        // All zeros.
        Fixture.digest("0"),
        // All f.
        Fixture.digest("f"),
        // Every hex digit.
        "sha256:" + String(repeating: "0123456789abcdef", count: 4),
    ])
    func accepts(_ s: String) throws {
        let d = try Digest(s)
        #expect(d.string == s)
        #expect(d.description == s)
        #expect(d.hex == String(s.dropFirst(7)))
        #expect(d.short == String(s.dropFirst(7).prefix(12)))
        // The hex-only initialiser agrees.
        #expect(try Digest(hex: d.hex) == d)
    }

    @Test("refuses malformed digests with invalidDigest", arguments: malformedDigests)
    func refuses(input: String, why: String) {
        let error = #expect(throws: SeedError.self) { try Digest(input) }
        guard let error else { return }
        #expect(error.code == .invalidDigest)
        #expect(error.message.contains(SeedError.quote(input)), "\(error.message)")
        #expect(error.message.contains(why), "\(error.message)")
    }

    @Test("the unsupported-algorithm message says only sha256 is accepted")
    func unsupportedMessage() {
        let error = #expect(throws: SeedError.self) { try Digest("sha512:" + String(repeating: "0", count: 128)) }
        #expect(error?.message.contains("only sha256") == true)
    }

    @Test("init(hex:) refuses anything but 64 lowercase hex digits", arguments: [
        // Empty.
        "",
        // With the prefix.
        Fixture.empty,
        // Too short.
        String(repeating: "a", count: 63),
        // Uppercase.
        Fixture.emptyHex.uppercased(),
        // A path traversal attempt.
        "../" + String(repeating: "a", count: 61),
    ])
    func hexRefuses(_ hex: String) {
        let error = #expect(throws: SeedError.self) { try Digest(hex: hex) }
        #expect(error?.code == .invalidDigest)
    }

    @Test("Digest.of computes SHA-256", arguments: [
        // The empty input.
        ("", Fixture.emptyHex),
        // The FIPS 180-2 "abc" vector.
        ("abc", Fixture.abcHex),
        // The FIPS 180-2 two-block vector.
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ])
    func of(input: String, hex: String) {
        #expect(Digest.of(Array(input.utf8)).hex == hex)
        #expect(Digest.of(Data(input.utf8)).string == "sha256:" + hex)
    }

    @Test("Digest.of a million 'a's")
    func ofLarge() {
        // The FIPS 180-2 long-message vector.
        let d = Digest.of([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
        #expect(d.hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("ordering follows the hex string")
    func ordering() throws {
        let a = try Digest(Fixture.digest("a")), b = try Digest(Fixture.digest("b")), zero = try Digest(Fixture.digest("0"))
        #expect([b, a, zero].sorted() == [zero, a, b])
        #expect(Set([a, a, b]).count == 2)
    }

    @Test("Codable round-trips and refuses bad strings")
    func codable() throws {
        let digests = [try Digest(Fixture.empty), Digest.of(Array("abc".utf8))]
        let data = try JSONEncoder().encode(digests)
        // Encoded as plain strings.
        #expect(try JSONDecoder().decode([String].self, from: data) == digests.map(\.string))
        #expect(try JSONDecoder().decode([Digest].self, from: data) == digests)
        let bad = [
            // Too short.
            #"["sha256:abc"]"#,
            // Uppercase.
            #"["sha256:\#(Fixture.emptyHex.uppercased())"]"#,
            // Unsupported algorithm.
            #"["sha512:\#(String(repeating: "a", count: 128))"]"#,
            // Missing prefix.
            #"["\#(Fixture.emptyHex)"]"#,
            // Not a string.
            #"[1]"#,
            // Null.
            #"[null]"#,
        ]
        for json in bad {
            #expect(throws: (any Error).self, "\(json)") { try JSONDecoder().decode([Digest].self, from: Data(json.utf8)) }
        }
    }
}

import Foundation
import Testing
@testable import SeedOCI

@Suite("SeedError")
struct SeedErrorTests {
    @Test("quote escapes everything but printable ASCII", arguments: [
        // Plain ASCII stays.
        ("abc", #""abc""#),
        // Empty.
        ("", #""""#),
        // Spaces and punctuation stay.
        ("a b/c:d", #""a b/c:d""#),
        // A NUL byte.
        ("a\u{0}b", #""a\x00b""#),
        // A newline cannot forge a log line.
        ("a\nb", #""a\x0ab""#),
        // Carriage return and tab.
        ("\r\t", #""\x0d\x09""#),
        // An ANSI escape sequence cannot colour a terminal.
        ("\u{1B}[31m", #""\x1b[31m""#),
        // DEL.
        ("\u{7F}", #""\x7f""#),
        // A quote is escaped so the quoting stays unambiguous.
        ("a\"b", #""a\"b""#),
        // A backslash is escaped.
        ("a\\b", #""a\\b""#),
        // Non-ASCII becomes its UTF-8 bytes.
        ("é", #""\xc3\xa9""#),
        // A right-to-left override cannot reorder the message.
        ("\u{202E}", #""\xe2\x80\xae""#),
        // An emoji.
        ("😀", #""\xf0\x9f\x98\x80""#),
    ])
    func quote(input: String, expected: String) {
        #expect(SeedError.quote(input) == expected)
    }

    @Test("quote renders raw bytes, including invalid UTF-8")
    func quoteBytes() {
        #expect(SeedError.quote([0xFF, 0x00, 0x41, 0x80] as [UInt8]) == #""\xff\x00A\x80""#)
        #expect(SeedError.quote(Array("../etc".utf8)) == #""../etc""#)
    }

    @Test("quote caps long input")
    func quoteLimit() {
        // 200 bytes fit exactly.
        #expect(SeedError.quote(String(repeating: "a", count: 200)) == "\"" + String(repeating: "a", count: 200) + "\"")
        // Longer input is cut with an ellipsis.
        #expect(SeedError.quote(String(repeating: "a", count: 5000)) == "\"" + String(repeating: "a", count: 200) + "…\"")
        // A custom limit.
        #expect(SeedError.quote("abcdef", limit: 3) == #""abc…""#)
        // The limit counts input bytes, so escaping cannot be used to shorten the cap.
        #expect(SeedError.quote("\n\n\n\n", limit: 2) == #""\x0a\x0a…""#)
    }

    @Test("each code maps to an HTTP status and an exit code", arguments: [
        // Bad input from a peer is the client's fault.
        (SeedError.Code.invalidInput, 400, Int32(2)),
        // A bad reference.
        (.invalidReference, 400, 2),
        // A bad digest.
        (.invalidDigest, 400, 2),
        // A malformed archive is 400, but a run that hit it partly worked.
        (.malformedArchive, 400, 1),
        // An unsafe entry.
        (.unsafeEntry, 400, 1),
        // Wrong content.
        (.digestMismatch, 422, 1),
        // Wrong length.
        (.sizeMismatch, 422, 1),
        // Over a limit.
        (.tooLarge, 413, 1),
        // Blobs neither sent nor present.
        (.missingBlobs, 409, 1),
        // Not found.
        (.notFound, 404, 1),
        // Disk full.
        (.noSpace, 507, 1),
        // Another process holds the lock: exit 3.
        (.locked, 409, 3),
        // Upload stalled or aborted: request timeout.
        (.cancelled, 408, 1),
        // Missing or wrong bearer token.
        (.unauthorized, 401, 1),
        // The peer does not do this (an agent with --no-relay asked to relay).
        (.forbidden, 403, 1),
        // A peer that cannot be reached.
        (.unavailable, 503, 1),
        // Generic I/O.
        (.io, 500, 1),
        // A library failure.
        (.internal, 500, 1),
    ])
    func mapping(code: SeedError.Code, status: Int, exit: Int32) {
        let e = SeedError(code, "x")
        #expect(e.httpStatus == status)
        #expect(e.exitCode == exit)
    }

    @Test("the mapping table covers every code")
    func everyCodeCovered() {
        // If a code is added, the table above must grow with it.
        #expect(SeedError.Code.allCases.count == 18)
    }

    @Test("codes have stable snake_case names", arguments: [
        // Used in agent JSON error bodies.
        (SeedError.Code.invalidReference, "invalid_reference"),
        // I/O is io_error.
        (.io, "io_error"),
        // Too large.
        (.tooLarge, "too_large"),
        // Missing blobs.
        (.missingBlobs, "missing_blobs"),
    ])
    func rawValues(code: SeedError.Code, raw: String) {
        #expect(code.rawValue == raw)
        #expect(SeedError.Code(rawValue: raw) == code)
    }

    @Test("description appends the cause")
    func description() {
        struct Underlying: Error, CustomStringConvertible { var description: String { "disk on fire" } }
        #expect(SeedError(.io, "cannot write blob").description == "cannot write blob")
        let e = SeedError(.io, "cannot write blob", cause: Underlying())
        #expect(e.cause == "disk on fire")
        #expect(e.description == "cannot write blob: disk on fire")
        #expect(e != SeedError(.io, "cannot write blob"))
        #expect(SeedError(.io, "a") == SeedError(.io, "a"))
        #expect(SeedError(.io, "a") != SeedError(.internal, "a"))
    }
}

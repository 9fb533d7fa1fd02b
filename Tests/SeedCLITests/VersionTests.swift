import Foundation
import SeedTestSupport
import Testing

@Suite("seed version and help (the built binary)")
struct VersionTests {
    @Test("seed version prints seed's version and the libarchive it runs with")
    func version() throws {
        let r = try run([try seedBinary(), "version"])
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].hasPrefix("seed "))
        // The runtime library's version, as libarchive reports it (Debian bookworm: 3.6.2).
        let la = try run(["pkg-config", "--modversion", "libarchive"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines[1] == "libarchive \(la)")
        let verbose = try run([try seedBinary(), "version", "--verbose"])
        #expect(verbose.stdout.contains("zlib"))
    }

    @Test("an unknown subcommand is invalid input: exit code 2")
    func unknown() throws {
        let r = try run([try seedBinary(), "no-such-command"], check: false)
        #expect(r.status == 2)
        #expect(r.stderr.contains("no-such-command"))
        #expect(try run([try seedBinary(), "--help"]).status == 0)
    }
}

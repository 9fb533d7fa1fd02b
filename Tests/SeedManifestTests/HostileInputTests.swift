import Foundation
import SeedManifest
import SeedOCI
import SeedTestSupport
import Testing

@Suite("Files and hostile input")
struct HostileInputTests {
    /// The `SeedError` that `load(path:)` throws; fails the test if it loads.
    func loadError(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> SeedError? {
        do {
            _ = try SeedManifest.load(path: path)
            Issue.record("loaded, but should have been refused", sourceLocation: sourceLocation)
        } catch let e as SeedError {
            #expect(e.code == .invalidInput, sourceLocation: sourceLocation)
            #expect(e.exitCode == 2, sourceLocation: sourceLocation)
            return e
        } catch {
            Issue.record("not a SeedError: \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test("A missing file is a clear invalid-input error naming the path")
    func missingFile() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        let e = loadError(dir.sub("nope.yaml"))
        #expect(e?.message == "cannot read manifest \"\(dir.sub("nope.yaml"))\": no such file or directory")
    }

    @Test("A directory is refused")
    func directory() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        #expect(loadError(dir.path)?.message.hasSuffix(": it is a directory") == true)
    }

    @Test("A huge file is refused by its size, before it is read")
    func hugeFile() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        // Sparse: 1 GiB on paper, nothing on disk. Reading it whole would take a while.
        let path = dir.sub("seed.yaml")
        #expect(FileManager.default.createFile(atPath: path, contents: Data("version: 1\n".utf8)))
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.truncate(atOffset: 1 << 30)
        try handle.close()
        #expect(loadError(path)?.message == "seed.yaml: the manifest is 1073741824 bytes, over the 4 MiB limit")

        // One byte over the limit is over.
        let limit = dir.sub("limit.yaml")
        try Data(count: SeedManifest.maxSize + 1).write(to: URL(fileURLWithPath: limit))
        #expect(loadError(limit)?.message == "limit.yaml: the manifest is 4194305 bytes, over the 4 MiB limit")
    }

    @Test("An endless stream is cut off at the limit")
    func endlessStream() {
        #expect(loadError("/dev/zero")?.message == "zero: the manifest is over the 4 MiB limit")
    }

    @Test("parse refuses text over the limit too")
    func hugeText() {
        let yaml = Fixture.minimal("# " + String(repeating: "x", count: SeedManifest.maxSize) + "\n")
        #expect(Fixture.rejection(yaml)?.message.hasPrefix("seed.yaml: the manifest is ") == true)
    }

    @Test("Text that is not UTF-8 is refused with its line; messages name the file as given")
    func notUTF8() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        let path = dir.sub("fleet.yml")
        try Data("version: 1\nimages: [\"\u{FF}".utf8.dropLast(2) + [0xFF, 0x22, 0x5D, 0x0A]).write(to: URL(fileURLWithPath: path))
        #expect(loadError(path)?.message == "fleet.yml:2: not valid UTF-8 text")

        try Data("version: 1\nimages: []\nbogus: 1\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(loadError(path)?.message.hasPrefix("fleet.yml:3: bogus: unknown key") == true)
    }

    @Test("An alias bomb is refused at its first anchor, without expanding it")
    func aliasBomb() {
        var yaml = Fixture.minimal("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
        var previous = "a"
        for name in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            yaml += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = name
        }
        yaml += "images2: *i\n"
        let e = Fixture.rejection(yaml)
        #expect(e?.message == "seed.yaml:4: a: YAML anchors and aliases (&name, *name) are not allowed in a manifest")
    }

    /// A deeply nested document and the line the refusal must name.
    struct NestingCase: Sendable, CustomTestStringConvertible {
        let name: String
        let yaml: String
        let line: Int
        var testDescription: String { name }
    }

    @Test("Absurd nesting is refused before Yams composes it recursively", arguments: [
        // Flow lists, 100 000 deep.
        NestingCase(name: "flow lists", yaml: "version: 1\nimages: " + String(repeating: "[", count: 100_000), line: 2),
        // Flow mappings.
        NestingCase(name: "flow mappings", yaml: "version: 1\nimages: []\nx: " + String(repeating: "{a: ", count: 50_000), line: 3),
        // Compact block lists on one line.
        NestingCase(name: "compact block lists", yaml: "version: 1\nimages:\n" + String(repeating: "- ", count: 100_000) + "x\n", line: 3),
        // Indentation, one level per line.
        NestingCase(name: "indentation", yaml: "version: 1\nimages: []\n" + (0..<200).map { String(repeating: " ", count: $0) + "k:\n" }.joined(), line: 67),
    ])
    func nesting(_ c: NestingCase) {
        let e = Fixture.rejection(c.yaml)
        #expect(e?.message == "seed.yaml:\(c.line): collections nest deeper than 64 levels")
    }

    @Test("Brackets in quoted, folded and plain scalars do not count as nesting")
    func bracketsInScalars() throws {
        let brackets = String(repeating: "[{", count: 70)
        let m = try Fixture.parse("""
            version: 1
            images:
              - ref: registry.example.com/a:1
                nodes: {note: "\(brackets)", other: 'it''s \(brackets)'}
            auth:
              dockerConfig: >-
                \(brackets)
            agents:
              tokenFile: a\(brackets)
            """)
        #expect(m.images[0].nodes["note"] == brackets)
        #expect(m.images[0].nodes["other"] == "it's " + brackets)
        #expect(m.auth?.dockerConfig == "/srv/seed/" + brackets)
        #expect(m.agents?.tokenFile == "/srv/seed/a" + brackets)
    }
}

import Foundation
import SeedManifest
import SeedOCI
import SeedTestSupport
import Testing

/// Shared fixtures for the manifest tests.
enum Fixture {
    static let hexA = String(repeating: "a", count: 64)
    static let hexB = String(repeating: "b", count: 64)
    static let hexC = String(repeating: "c", count: 64)

    /// The SPEC's example manifest, with real hex digits.
    static let specExample = """
        version: 1
        images:
          - ref: registry.example.com/team/api:1.4.2       # pulled from its registry (default source)
          - ref: registry.example.com/team/worker@sha256:\(hexA)   # pinned by digest
          - ref: example.com/tools/debug:2.0
            source: file:images/debug-2.0.tar              # docker-archive or oci-archive
          - ref: example.com/ml/server:3.1
            source: https://artifacts.example.com/server-3.1.tar.gz
            sha256: \(hexB)                                # optional checksum
            nodes: {gpu: "true"}                           # label selector
        platforms: [linux/amd64]
        auth:
          dockerConfig: secrets/regcred.yaml
        registries:
          "127.0.0.1:5000": {insecure: true}           # plain HTTP
          "registry.internal:5443": {caFile: certs/ca.pem}
        nodes:
          - name: node-a
            url: http://10.0.0.11:7441
            labels: {gpu: "true"}
        discovery:
          dns: seed-agent.seed-system.svc.cluster.local
          port: 7441
          scheme: https
        agents:
          tokenFile: secrets/agent-token
          caFile: certs/agent-ca.pem

        """

    /// Parses `yaml` as `/srv/seed/seed.yaml`.
    static func parse(_ yaml: String) throws -> SeedManifest {
        try SeedManifest.parse(yaml, path: "/srv/seed/seed.yaml")
    }

    /// The `SeedError` parsing `yaml` throws; fails the test if it parses.
    static func rejection(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) -> SeedError? {
        do {
            let m = try parse(yaml)
            Issue.record("parsed, but should have been refused: \(m)", sourceLocation: sourceLocation)
            return nil
        } catch let e as SeedError {
            return e
        } catch {
            Issue.record("not a SeedError: \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }

    /// A minimal valid manifest with `extra` appended at the top level.
    static func minimal(_ extra: String = "") -> String {
        "version: 1\nimages:\n  - ref: registry.example.com/a:1\n" + extra
    }
}

@Suite("Valid manifests")
struct ValidManifestTests {
    @Test("The SPEC example decodes to the expected values, paths resolved against its directory")
    func specExample() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        let m = try SeedManifest.parse(Fixture.specExample, path: dir.sub("seed.yaml"))

        #expect(m.version == 1)
        #expect(m.path == dir.path + "/seed.yaml")
        #expect(m.baseDirectory == dir.path)
        #expect(m.images.count == 4)

        #expect(m.images[0].ref == (try Reference("registry.example.com/team/api:1.4.2")))
        #expect(m.images[0].source == .registry)
        #expect(m.images[0].sha256 == nil)
        #expect(m.images[0].nodes.isEmpty)
        #expect(m.images[0].line == 3)

        #expect(m.images[1].ref.digest == (try Digest("sha256:" + Fixture.hexA)))
        #expect(m.images[1].ref.tag == nil)
        #expect(m.images[1].line == 4)

        #expect(m.images[2].ref.description == "example.com/tools/debug:2.0")
        #expect(m.images[2].source == .file(path: dir.path + "/images/debug-2.0.tar"))
        #expect(m.images[2].line == 5)

        #expect(m.images[3].source == .http(url: "https://artifacts.example.com/server-3.1.tar.gz"))
        #expect(m.images[3].sha256 == (try Digest(hex: Fixture.hexB)))
        #expect(m.images[3].nodes == ["gpu": "true"])
        #expect(m.images[3].line == 7)

        #expect(m.platforms == [Platform(os: "linux", architecture: "amd64")])
        #expect(m.auth == AuthConfig(dockerConfig: dir.path + "/secrets/regcred.yaml"))
        #expect(m.registries == [
            "127.0.0.1:5000": RegistryConfig(insecure: true),
            "registry.internal:5443": RegistryConfig(insecure: false, caFile: dir.path + "/certs/ca.pem"),
        ])
        #expect(m.nodes == [NodeEntry(name: "node-a", url: "http://10.0.0.11:7441", labels: ["gpu": "true"])])
        #expect(m.discovery == Discovery(dns: "seed-agent.seed-system.svc.cluster.local", port: 7441, scheme: "https"))
        #expect(m.agents == AgentsConfig(tokenFile: dir.path + "/secrets/agent-token", caFile: dir.path + "/certs/agent-ca.pem"))
    }

    @Test("load(path:) reads the file and resolves paths against its directory")
    func loadFromDisk() throws {
        let dir = try TempDir("seed-manifest")
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.sub("conf"), withIntermediateDirectories: true)
        try Fixture.specExample.write(toFile: dir.sub("conf/seed.yaml"), atomically: true, encoding: .utf8)
        let m = try SeedManifest.load(path: dir.sub("conf/../conf/./seed.yaml"))
        #expect(m.path == dir.path + "/conf/seed.yaml")
        #expect(m.baseDirectory == dir.path + "/conf")
        #expect(m.images[2].source == .file(path: dir.path + "/conf/images/debug-2.0.tar"))
    }

    @Test("Optional sections have their defaults; an empty images list is a valid desired state")
    func defaults() throws {
        let m = try Fixture.parse("version: 1\nimages: []\n")
        #expect(m.images.isEmpty)
        #expect(m.platforms == nil)
        #expect(m.auth == nil)
        #expect(m.registries.isEmpty)
        #expect(m.nodes.isEmpty)
        #expect(m.discovery == nil)
        #expect(m.agents == nil)

        let d = try Fixture.parse(Fixture.minimal("discovery: {dns: agents.example.com}\n"))
        #expect(d.discovery == Discovery(dns: "agents.example.com", port: 7441, scheme: "http"))
    }

    @Test("A relative manifest path is taken against the current directory")
    func relativeManifestPath() throws {
        let m = try SeedManifest.parse(Fixture.minimal("agents: {tokenFile: t}\n"), path: "conf/seed.yaml")
        let cwd = FileManager.default.currentDirectoryPath
        #expect(m.path == (cwd == "/" ? "" : cwd) + "/conf/seed.yaml")
        #expect(m.agents?.tokenFile == m.baseDirectory + "/t")
    }

    /// A tag written so that YAML would read it as a number or a boolean.
    struct TagCase: Sendable, CustomTestStringConvertible {
        let written: String
        let tag: String
        var testDescription: String { written }
    }

    @Test("Tags stay the text they are written as", arguments: [
        // A float-looking tag keeps its trailing zero.
        TagCase(written: "1.10", tag: "1.10"),
        // An octal-looking tag keeps its leading zero.
        TagCase(written: "010", tag: "010"),
        // A YAML 1.1 boolean stays a word.
        TagCase(written: "no", tag: "no"),
        // An integer-looking tag.
        TagCase(written: "2", tag: "2"),
        // Scientific notation is not evaluated.
        TagCase(written: "1e3", tag: "1e3"),
    ])
    func tagsAreText(_ c: TagCase) throws {
        let m = try Fixture.parse("version: 1\nimages:\n  - ref: registry.example.com/a:\(c.written)\n")
        #expect(m.images[0].ref.tag == c.tag)
    }

    /// A label value and the string it must decode to.
    struct LabelCase: Sendable, CustomTestStringConvertible {
        let written: String
        let value: String
        var testDescription: String { written }
    }

    @Test("Label and selector values keep their source text", arguments: [
        // An unquoted boolean.
        LabelCase(written: "true", value: "true"),
        // A quoted boolean.
        LabelCase(written: "\"true\"", value: "true"),
        // A YAML 1.1 boolean word.
        LabelCase(written: "no", value: "no"),
        // A float with a trailing zero.
        LabelCase(written: "1.10", value: "1.10"),
        // A number with a leading zero.
        LabelCase(written: "010", value: "010"),
        // A single-quoted empty string is a value (Kubernetes allows empty label values).
        LabelCase(written: "''", value: ""),
    ])
    func labelValuesAreText(_ c: LabelCase) throws {
        let m = try Fixture.parse("""
            version: 1
            images:
              - ref: registry.example.com/a:1
                nodes: {gpu: \(c.written)}
            nodes:
              - name: n
                url: http://n.example.com:7441
                labels:
                  gpu: \(c.written)
            """)
        #expect(m.images[0].nodes == ["gpu": c.value])
        #expect(m.nodes[0].labels == ["gpu": c.value])
        #expect(m.images[0].selects(labels: ["gpu": c.value, "zone": "a"]))
        #expect(!m.images[0].selects(labels: ["zone": "a"]))
    }

    /// A source as written and what it must decode to (the manifest lives in /srv/seed).
    struct SourceCase: Sendable, CustomTestStringConvertible {
        let written: String
        let source: ImageSource
        var testDescription: String { written }
    }

    @Test("Sources: file paths resolved and normalised, http(s) URLs kept", arguments: [
        // A relative file path.
        SourceCase(written: "file:images/a.tar", source: .file(path: "/srv/seed/images/a.tar")),
        // A relative path that climbs out of the manifest's directory.
        SourceCase(written: "file:../shared/./a.tar.zst", source: .file(path: "/srv/shared/a.tar.zst")),
        // An absolute path.
        SourceCase(written: "file:/var/images//a.tar", source: .file(path: "/var/images/a.tar")),
        // A file URL with an empty host.
        SourceCase(written: "file:///var/images/a.tar", source: .file(path: "/var/images/a.tar")),
        // Plain HTTP with a port and a query.
        SourceCase(written: "http://10.0.0.5:8080/a.tar?x=1", source: .http(url: "http://10.0.0.5:8080/a.tar?x=1")),
        // HTTPS to a bracketed IPv6 host.
        SourceCase(written: "https://[fd00::1]/a.tar.gz", source: .http(url: "https://[fd00::1]/a.tar.gz")),
    ])
    func sources(_ c: SourceCase) throws {
        let m = try Fixture.parse("version: 1\nimages:\n  - ref: registry.example.com/a:1\n    source: \(c.written)\n")
        #expect(m.images[0].source == c.source)
    }

    @Test("sha256 accepts bare hex, a sha256: prefix and upper case; all-digit hex stays text", arguments: [
        // Bare lower-case hex.
        (Fixture.hexC, Fixture.hexC),
        // With the algorithm prefix.
        ("sha256:" + Fixture.hexC, Fixture.hexC),
        // Upper case, as some tools print it, stored lower case.
        (Fixture.hexC.uppercased(), Fixture.hexC),
        // Only digits: YAML would read a huge integer, the text must survive.
        (String(repeating: "1", count: 64), String(repeating: "1", count: 64)),
    ])
    func checksums(_ written: String, _ hex: String) throws {
        let m = try Fixture.parse("version: 1\nimages:\n  - ref: registry.example.com/a:1\n    source: file:a.tar\n    sha256: \(written)\n")
        #expect(m.images[0].sha256 == (try Digest(hex: hex)))
    }

    @Test("Other accepted forms: flow style, Docker Hub aliases, capitalised booleans, agent URL slash")
    func otherForms() throws {
        let m = try Fixture.parse("""
            {version: 1, images: [{ref: nginx}, {ref: "docker.io/library/redis:7"}],
             registries: {index.docker.io: {insecure: false}, "localhost:5000": {insecure: True}, "[::1]:5000": {}},
             nodes: [{name: a, url: "HTTPS://a.example.com:7441/"}, {name: b, url: "http://[fd00::2]:7441"}],
             platforms: [linux/arm64/v8, linux/amd64]}
            """)
        #expect(m.images.map(\.ref.description) == ["docker.io/library/nginx:latest", "docker.io/library/redis:7"])
        #expect(m.registries == [
            "docker.io": RegistryConfig(insecure: false),
            "localhost:5000": RegistryConfig(insecure: true),
            "[::1]:5000": RegistryConfig(),
        ])
        #expect(m.registry("docker.io") == RegistryConfig(insecure: false))
        #expect(m.nodes.map(\.url) == ["https://a.example.com:7441", "http://[fd00::2]:7441"])
        #expect(m.platforms?.map(\.description) == ["linux/arm64/v8", "linux/amd64"])
    }

    @Test("A byte order mark, CRLF line ends and comments do not disturb decoding or line numbers")
    func bomAndCRLF() throws {
        let m = try Fixture.parse("\u{FEFF}# comment\r\nversion: 1\r\nimages:\r\n  - ref: registry.example.com/a:1\r\n")
        #expect(m.images[0].line == 4)
        let e = Fixture.rejection("\u{FEFF}version: 1\r\nimages:\r\n  - ref: registry.example.com/a:1\r\n  - ref: registry.example.com/a:1\r\n")
        #expect(e?.message.hasPrefix("seed.yaml:4: images[1].ref: ") == true, "\(e?.message ?? "")")
    }
}

import Foundation
import Testing
@testable import SeedOCI

/// A reference that must parse, and what it must normalise to.
struct ValidReference: Sendable, CustomTestStringConvertible {
    let input: String
    let registry: String
    let repository: String
    let tag: String?
    let digest: String?
    let canonical: String
    var testDescription: String { input.count > 60 ? String(input.prefix(60)) + "…" : input }
}

/// A reference that must be refused, and a fragment the message must contain.
struct InvalidReference: Sendable, CustomTestStringConvertible {
    let input: String
    let why: String
    var testDescription: String { SeedError.quote(input, limit: 60) }
}

private let d1 = Fixture.digest("a")
private let d2 = Fixture.digest("b")
private let tag128 = "a" + String(repeating: "b", count: 127)

private let validReferences: [ValidReference] = [
    // A bare official image gets docker.io, library/ and latest.
    .init(input: "nginx", registry: "docker.io", repository: "library/nginx", tag: "latest", digest: nil, canonical: "docker.io/library/nginx:latest"),
    // A bare official image with a tag.
    .init(input: "nginx:1.25", registry: "docker.io", repository: "library/nginx", tag: "1.25", digest: nil, canonical: "docker.io/library/nginx:1.25"),
    // docker.io with a single component still gets library/.
    .init(input: "docker.io/nginx", registry: "docker.io", repository: "library/nginx", tag: "latest", digest: nil, canonical: "docker.io/library/nginx:latest"),
    // An already canonical reference is unchanged.
    .init(input: "docker.io/library/nginx:latest", registry: "docker.io", repository: "library/nginx", tag: "latest", digest: nil, canonical: "docker.io/library/nginx:latest"),
    // The legacy index host is folded into docker.io.
    .init(input: "index.docker.io/foo/bar", registry: "docker.io", repository: "foo/bar", tag: "latest", digest: nil, canonical: "docker.io/foo/bar:latest"),
    // The legacy index host with an official image gets library/.
    .init(input: "index.docker.io/nginx", registry: "docker.io", repository: "library/nginx", tag: "latest", digest: nil, canonical: "docker.io/library/nginx:latest"),
    // Docker Hub's real registry host is folded into docker.io too.
    .init(input: "registry-1.docker.io/foo/bar:1", registry: "docker.io", repository: "foo/bar", tag: "1", digest: nil, canonical: "docker.io/foo/bar:1"),
    // A user repository on Docker Hub keeps its namespace, no library/.
    .init(input: "foo/bar", registry: "docker.io", repository: "foo/bar", tag: "latest", digest: nil, canonical: "docker.io/foo/bar:latest"),
    // library/ written out is not doubled.
    .init(input: "library/nginx", registry: "docker.io", repository: "library/nginx", tag: "latest", digest: nil, canonical: "docker.io/library/nginx:latest"),
    // Three components on Docker Hub stay as they are.
    .init(input: "foo/bar/baz", registry: "docker.io", repository: "foo/bar/baz", tag: "latest", digest: nil, canonical: "docker.io/foo/bar/baz:latest"),
    // A first component with an underscore is not a host.
    .init(input: "test_com/foo", registry: "docker.io", repository: "test_com/foo", tag: "latest", digest: nil, canonical: "docker.io/test_com/foo:latest"),
    // localhost is always a host, even without a port or dot.
    .init(input: "localhost/x", registry: "localhost", repository: "x", tag: "latest", digest: nil, canonical: "localhost/x:latest"),
    // localhost with a port, two components and a dotted tag.
    .init(input: "localhost:5000/a/b:1.0", registry: "localhost:5000", repository: "a/b", tag: "1.0", digest: nil, canonical: "localhost:5000/a/b:1.0"),
    // An IPv4 host with a port; no library/ outside Docker Hub.
    .init(input: "127.0.0.1:5000/x", registry: "127.0.0.1:5000", repository: "x", tag: "latest", digest: nil, canonical: "127.0.0.1:5000/x:latest"),
    // A bracketed IPv6 host with a port, and a tag.
    .init(input: "[::1]:5000/x:y", registry: "[::1]:5000", repository: "x", tag: "y", digest: nil, canonical: "[::1]:5000/x:y"),
    // A bracketed IPv6 host without a port.
    .init(input: "[::1]/x", registry: "[::1]", repository: "x", tag: "latest", digest: nil, canonical: "[::1]/x:latest"),
    // A full IPv6 address.
    .init(input: "[fc00:1:2:3:4:5:6:7]:5000/library/debian", registry: "[fc00:1:2:3:4:5:6:7]:5000", repository: "library/debian", tag: "latest", digest: nil, canonical: "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"),
    // A dotted host without a port.
    .init(input: "registry.example.com/team/api:1.4.2", registry: "registry.example.com", repository: "team/api", tag: "1.4.2", digest: nil, canonical: "registry.example.com/team/api:1.4.2"),
    // A dotted host with a port.
    .init(input: "example.com:8000/private/moonbase", registry: "example.com:8000", repository: "private/moonbase", tag: "latest", digest: nil, canonical: "example.com:8000/private/moonbase:latest"),
    // A single-label host is recognised by its port.
    .init(input: "my-registry:5000/x", registry: "my-registry:5000", repository: "x", tag: "latest", digest: nil, canonical: "my-registry:5000/x:latest"),
    // A punycode host.
    .init(input: "xn--n3h.com/foo", registry: "xn--n3h.com", repository: "foo", tag: "latest", digest: nil, canonical: "xn--n3h.com/foo:latest"),
    // Docker's grammar: an uppercase first component is a host name, not a namespace.
    .init(input: "Foo/bar", registry: "Foo", repository: "bar", tag: "latest", digest: nil, canonical: "Foo/bar:latest"),
    // Uppercase is allowed in a dotted host name.
    .init(input: "Registry.Example.com/x", registry: "Registry.Example.com", repository: "x", tag: "latest", digest: nil, canonical: "Registry.Example.com/x:latest"),
    // Tag and digest both kept.
    .init(input: "registry.example.com/team/worker:1.0@\(d1)", registry: "registry.example.com", repository: "team/worker", tag: "1.0", digest: d1, canonical: "registry.example.com/team/worker:1.0@\(d1)"),
    // Digest only: the tag stays nil (no implicit latest).
    .init(input: "registry.example.com/team/worker@\(d1)", registry: "registry.example.com", repository: "team/worker", tag: nil, digest: d1, canonical: "registry.example.com/team/worker@\(d1)"),
    // Digest only on a bare official image.
    .init(input: "nginx@\(d2)", registry: "docker.io", repository: "library/nginx", tag: nil, digest: d2, canonical: "docker.io/library/nginx@\(d2)"),
    // Digest with a host:port, where the port colon must not be taken for a tag.
    .init(input: "localhost:5000/x@\(d1)", registry: "localhost:5000", repository: "x", tag: nil, digest: d1, canonical: "localhost:5000/x@\(d1)"),
    // Tag 1.10 is a string, not the number 1.1.
    .init(input: "x:1.10", registry: "docker.io", repository: "library/x", tag: "1.10", digest: nil, canonical: "docker.io/library/x:1.10"),
    // A semver pre-release tag.
    .init(input: "x:v1.2.3-rc.1", registry: "docker.io", repository: "library/x", tag: "v1.2.3-rc.1", digest: nil, canonical: "docker.io/library/x:v1.2.3-rc.1"),
    // A 128-character tag is the longest allowed.
    .init(input: "x:" + tag128, registry: "docker.io", repository: "library/x", tag: tag128, digest: nil, canonical: "docker.io/library/x:" + tag128),
    // A tag may start with an underscore.
    .init(input: "x:_private", registry: "docker.io", repository: "library/x", tag: "_private", digest: nil, canonical: "docker.io/library/x:_private"),
    // Tags may hold uppercase letters.
    .init(input: "x:LATEST", registry: "docker.io", repository: "library/x", tag: "LATEST", digest: nil, canonical: "docker.io/library/x:LATEST"),
    // A one-character tag.
    .init(input: "x:1", registry: "docker.io", repository: "library/x", tag: "1", digest: nil, canonical: "docker.io/library/x:1"),
    // Double underscore is a valid separator.
    .init(input: "a__b", registry: "docker.io", repository: "library/a__b", tag: "latest", digest: nil, canonical: "docker.io/library/a__b:latest"),
    // Several dashes are a valid separator.
    .init(input: "a--b", registry: "docker.io", repository: "library/a--b", tag: "latest", digest: nil, canonical: "docker.io/library/a--b:latest"),
    // A run of dashes in a namespace.
    .init(input: "docker---rules/docker", registry: "docker.io", repository: "docker---rules/docker", tag: "latest", digest: nil, canonical: "docker.io/docker---rules/docker:latest"),
    // Single separators of each kind.
    .init(input: "a.b_c-d", registry: "docker.io", repository: "library/a.b_c-d", tag: "latest", digest: nil, canonical: "docker.io/library/a.b_c-d:latest"),
    // Single-character components.
    .init(input: "d/t", registry: "docker.io", repository: "d/t", tag: "latest", digest: nil, canonical: "docker.io/d/t:latest"),
    // An IP address alone is a repository name, not a host.
    .init(input: "192.168.0.1", registry: "docker.io", repository: "library/192.168.0.1", tag: "latest", digest: nil, canonical: "docker.io/library/192.168.0.1:latest"),
    // host:port alone is a name and a tag, as in Docker.
    .init(input: "localhost:5000", registry: "docker.io", repository: "library/localhost", tag: "5000", digest: nil, canonical: "docker.io/library/localhost:5000"),
    // A 64-hex repository is fine when a host disambiguates it.
    .init(input: "docker.io/" + String(repeating: "1a", count: 32), registry: "docker.io", repository: "library/" + String(repeating: "1a", count: 32), tag: "latest", digest: nil, canonical: "docker.io/library/" + String(repeating: "1a", count: 32) + ":latest"),
    // Exactly 255 characters of name (18 + 237) is the longest allowed.
    .init(input: String(repeating: "a", count: 237), registry: "docker.io", repository: "library/" + String(repeating: "a", count: 237), tag: "latest", digest: nil, canonical: "docker.io/library/" + String(repeating: "a", count: 237) + ":latest"),
    // The 255 limit counts the host too (12 + 243).
    .init(input: "example.com/" + String(repeating: "b", count: 243), registry: "example.com", repository: String(repeating: "b", count: 243), tag: "latest", digest: nil, canonical: "example.com/" + String(repeating: "b", count: 243) + ":latest"),
]

private let invalidReferences: [InvalidReference] = [
    // Nothing at all.
    .init(input: "", why: "empty"),
    // A name may not start with a dash.
    .init(input: "-nginx", why: "invalid path component"),
    // A namespace may not start with a dash either.
    .init(input: "-docker/docker", why: "invalid path component"),
    // A host may not start with a dash.
    .init(input: "-docker.io/docker/docker", why: "invalid registry host"),
    // Uppercase repository after an uppercase host.
    .init(input: "Foo/Bar", why: "lowercase"),
    // Uppercase path component on Docker Hub.
    .init(input: "docker.io/Library/x", why: "lowercase"),
    // Uppercase last component.
    .init(input: "docker/Docker", why: "lowercase"),
    // Uppercase in a single-component name.
    .init(input: "Nginx", why: "lowercase"),
    // A digest with too few hex digits.
    .init(input: "x@sha256:abc", why: "want sha256:"),
    // A digest in uppercase hex.
    .init(input: "x@sha256:" + String(repeating: "A", count: 64), why: "want sha256:"),
    // md5 is not a supported algorithm.
    .init(input: "x@md5:d41d8cd98f00b204e9800998ecf8427e", why: "unsupported digest algorithm"),
    // An empty digest.
    .init(input: "x@", why: "invalid digest"),
    // Two digests.
    .init(input: "x@\(d1)@\(d2)", why: "invalid digest"),
    // A digest with no name.
    .init(input: "@\(d1)", why: "missing repository name"),
    // A tag with no name.
    .init(input: ":latest", why: "missing repository name"),
    // A space inside.
    .init(input: "nginx latest", why: "whitespace"),
    // A leading space.
    .init(input: " nginx", why: "whitespace"),
    // A trailing tab.
    .init(input: "nginx\t", why: "whitespace"),
    // A newline (log or header injection).
    .init(input: "nginx\nevil", why: "newline"),
    // A trailing newline, as read from a file.
    .init(input: "nginx:1.0\n", why: "newline"),
    // A carriage return.
    .init(input: "nginx\r", why: "control"),
    // A NUL byte.
    .init(input: "ngi\u{0}nx", why: "control"),
    // DEL.
    .init(input: "nginx\u{7F}", why: "control"),
    // Non-ASCII letters.
    .init(input: "nginé", why: "non-ASCII"),
    // A Cyrillic lookalike of "a".
    .init(input: "n\u{0430}ginx", why: "non-ASCII"),
    // An empty component in the middle.
    .init(input: "a//b", why: "empty path component"),
    // Many slashes.
    .init(input: "docker///docker", why: "empty path component"),
    // A trailing slash.
    .init(input: "a/", why: "empty path component"),
    // A leading slash.
    .init(input: "/a", why: "empty path component"),
    // A host with nothing after it.
    .init(input: "example.com/", why: "empty path component"),
    // A trailing colon (empty tag).
    .init(input: "nginx:", why: "invalid tag"),
    // A tag may not start with a dash.
    .init(input: "nginx:-x", why: "invalid tag"),
    // A tag may not start with a dot.
    .init(input: "nginx:.x", why: "invalid tag"),
    // 129 characters are one too many for a tag.
    .init(input: "x:" + tag128 + "c", why: "invalid tag"),
    // A tag with a plus sign.
    .init(input: "x:1.0+build", why: "invalid tag"),
    // Two tags.
    .init(input: "nginx:1.0:2.0", why: "invalid path component"),
    // Three underscores are not a separator.
    .init(input: "a___b", why: "invalid path component"),
    // A dot followed by a dash.
    .init(input: "a.-b", why: "invalid path component"),
    // Two dots.
    .init(input: "a..b", why: "invalid path component"),
    // Underscore then dot.
    .init(input: "a_.b", why: "invalid path component"),
    // Dash then dot.
    .init(input: "docker/dock-.er", why: "invalid path component"),
    // A trailing separator.
    .init(input: "a-", why: "invalid path component"),
    // A leading underscore.
    .init(input: "_a", why: "invalid path component"),
    // Only underscores.
    .init(input: "____/____", why: "invalid path component"),
    // A character outside the grammar.
    .init(input: "a%b", why: "invalid path component"),
    // A port above 65535.
    .init(input: "localhost:99999/x", why: "invalid registry host"),
    // An empty port.
    .init(input: "localhost:/x", why: "invalid registry host"),
    // A non-numeric port.
    .init(input: "nginx:a/b", why: "invalid registry host"),
    // A URL is not a reference.
    .init(input: "https://github.com/docker/docker", why: "invalid registry host"),
    // An unbracketed IPv6 address.
    .init(input: "fc00::1:5000/debian", why: "invalid registry host"),
    // An IPv6 zone.
    .init(input: "[fe80::1%eth0]:5000/debian", why: "invalid registry host"),
    // An IPv4-mapped IPv6 address is not in the grammar.
    .init(input: "[2001:db8:3:4::192.0.2.33]:5000/debian", why: "invalid registry host"),
    // An unclosed bracket.
    .init(input: "[::1/x", why: "invalid registry host"),
    // A bracketed address without a repository.
    .init(input: "[fc00::1]:5000", why: "invalid"),
    // A host label ending in a dash.
    .init(input: "bad-.example.com/x", why: "invalid registry host"),
    // An empty host label.
    .init(input: "a..example.com/x", why: "invalid registry host"),
    // 256 characters of name on Docker Hub (18 + 238).
    .init(input: String(repeating: "a", count: 238), why: "longer than 255"),
    // 256 characters of name elsewhere (12 + 244).
    .init(input: "example.com/" + String(repeating: "b", count: 244), why: "longer than 255"),
    // A namespace that makes the name too long.
    .init(input: String(repeating: "this_is_a_long_namespace", count: 11) + "/docker", why: "longer than 255"),
    // An enormous input is refused before any parsing.
    .init(input: String(repeating: "a", count: 5000), why: "too long"),
]

@Suite("Reference")
struct ReferenceTests {
    @Test("parses and normalises", arguments: validReferences)
    func parses(_ c: ValidReference) throws {
        let r = try Reference(c.input)
        #expect(r.registry == c.registry)
        #expect(r.repository == c.repository)
        #expect(r.tag == c.tag)
        #expect(r.digest?.string == c.digest)
        #expect(r.description == c.canonical)
        #expect(r.name == c.registry + "/" + c.repository)
    }

    @Test("the canonical form parses to the same reference", arguments: validReferences)
    func canonicalIsStable(_ c: ValidReference) throws {
        let r = try Reference(c.input)
        let again = try Reference(r.description)
        #expect(again == r)
        #expect(again.description == r.description)
    }

    @Test("refuses invalid references with invalidReference", arguments: invalidReferences)
    func refuses(_ c: InvalidReference) {
        let error = #expect(throws: SeedError.self) { try Reference(c.input) }
        guard let error else { return }
        #expect(error.code == .invalidReference)
        // The message quotes the input (escaped, so control bytes cannot forge log lines).
        #expect(error.message.contains(SeedError.quote(c.input)), "\(error.message)")
        #expect(error.message.contains(c.why), "\(error.message)")
        #expect(!error.message.contains("\n"))
    }

    @Test("equal references compare and hash equal")
    func equality() throws {
        // Every familiar spelling of the same image is one value.
        let spellings = ["nginx", "nginx:latest", "docker.io/nginx", "docker.io/library/nginx:latest", "index.docker.io/library/nginx"]
        let refs = try spellings.map { try Reference($0) }
        #expect(Set(refs).count == 1)
        // A different tag is a different reference.
        #expect(try Reference("nginx:1") != Reference("nginx:2"))
        // A digest-pinned reference differs from the tag-only one.
        #expect(try Reference("nginx@\(d1)") != Reference("nginx"))
    }

    @Test("pinned(to:) keeps the name and tag and sets the digest")
    func pinned() throws {
        let digest = try Digest(d1)
        // A tagged reference keeps its tag.
        let tagged = try Reference("registry.example.com/team/api:1.4.2").pinned(to: digest)
        #expect(tagged.tag == "1.4.2")
        #expect(tagged.digest == digest)
        #expect(tagged.description == "registry.example.com/team/api:1.4.2@\(d1)")
        // A familiar name keeps its normalised form and implicit latest.
        let familiar = try Reference("nginx").pinned(to: digest)
        #expect(familiar.description == "docker.io/library/nginx:latest@\(d1)")
        // Pinning an already pinned reference replaces the digest.
        let repinned = try Reference("x@\(d1)").pinned(to: try Digest(d2))
        #expect(repinned.digest?.string == d2)
        #expect(repinned.tag == nil)
        // The pinned reference round-trips through its string.
        #expect(try Reference(tagged.description) == tagged)
    }

    @Test("withoutDigest drops the digest and keeps or defaults the tag")
    func withoutDigest() throws {
        // Tag and digest: the tag stays.
        let both = try Reference("example.com/a:1.0@\(d1)").withoutDigest
        #expect(both.description == "example.com/a:1.0")
        #expect(both.digest == nil)
        // Digest only: the tag a registry resolves is latest.
        let digestOnly = try Reference("example.com/a@\(d1)").withoutDigest
        #expect(digestOnly.description == "example.com/a:latest")
        // No digest: unchanged.
        let plain = try Reference("nginx:1")
        #expect(plain.withoutDigest == plain)
    }

    @Test("init(registry:repository:tag:digest:) validates and normalises")
    func fromParts() throws {
        // Valid parts.
        let r = try Reference(registry: "localhost:5000", repository: "a/b", tag: "1.0", digest: try Digest(d1))
        #expect(r.description == "localhost:5000/a/b:1.0@\(d1)")
        // Docker Hub official images get library/.
        let hub = try Reference(registry: "docker.io", repository: "nginx", tag: nil, digest: nil)
        #expect(hub.description == "docker.io/library/nginx:latest")
        // An uppercase repository is refused.
        #expect(throws: SeedError.self) { try Reference(registry: "example.com", repository: "A", tag: nil, digest: nil) }
        // An invalid tag is refused.
        #expect(throws: SeedError.self) { try Reference(registry: "example.com", repository: "a", tag: "-x", digest: nil) }
        // An empty repository is refused.
        #expect(throws: SeedError.self) { try Reference(registry: "example.com", repository: "", tag: nil, digest: nil) }
    }

    @Test("init(registry:...) keeps a single-label registry host")
    func fromPartsSingleLabelHost() throws {
        // "myhost/x" cannot express that "myhost" is a host; the init must refuse or keep it, not move the image to Docker Hub.
        do {
            let r = try Reference(registry: "myhost", repository: "x", tag: nil, digest: nil)
            #expect(r.registry == "myhost")
        } catch {
            // Refusing is acceptable too.
        }
    }

    @Test("a bare 64-hex name is refused, as Docker does")
    func refusesBareImageID() {
        // distribution/reference ParseNormalizedNamed: "cannot specify 64-byte hexadecimal strings".
        #expect(throws: SeedError.self) { try Reference(String(repeating: "1a", count: 32)) }
    }

    @Test("Codable encodes the canonical string and decodes strictly")
    func codable() throws {
        let refs = try ["nginx", "localhost:5000/a/b:1.0", "[::1]:5000/x:y", "example.com/a:1@\(d1)", "example.com/a@\(d2)"].map { try Reference($0) }
        let data = try JSONEncoder().encode(refs)
        // Encoded as plain strings in canonical form.
        let strings = try JSONDecoder().decode([String].self, from: data)
        #expect(strings == refs.map(\.description))
        // Decoding gives the same values back.
        #expect(try JSONDecoder().decode([Reference].self, from: data) == refs)
        // A familiar string decodes to the normalised reference.
        #expect(try JSONDecoder().decode([Reference].self, from: Data(#"["nginx"]"#.utf8)) == [try Reference("nginx")])
        // An invalid string is refused while decoding.
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Reference].self, from: Data(#"["Nginx"]"#.utf8)) }
        // A non-string is refused.
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Reference].self, from: Data("[1]".utf8)) }
    }

    @Test("grammar helpers", arguments: [
        // Tag: the longest allowed.
        ("tag", tag128, true),
        // Tag: one too long.
        ("tag", tag128 + "x", false),
        // Tag: empty.
        ("tag", "", false),
        // Path component: a single character.
        ("component", "a", true),
        // Path component: digits only.
        ("component", "123", true),
        // Path component: ends with a separator.
        ("component", "a.", false),
        // Domain: port 65535.
        ("domain", "h:65535", true),
        // Domain: port 65536.
        ("domain", "h:65536", false),
        // Domain: six-digit port with leading zero.
        ("domain", "h:005000", false),
        // Domain: IPv6 without port.
        ("domain", "[::1]", true),
        // Domain: IPv6 followed by garbage.
        ("domain", "[::1]x", false),
        // Domain: empty brackets.
        ("domain", "[]", false),
    ])
    func grammar(kind: String, input: String, valid: Bool) {
        let s = Substring(input)
        switch kind {
        case "tag": #expect(Reference.isValidTag(s) == valid)
        case "component": #expect(Reference.isValidPathComponent(s) == valid)
        default: #expect(Reference.isValidDomain(s) == valid)
        }
    }
}

import SeedManifest
import SeedOCI
import Testing

/// A manifest that must be refused: the line the message must name and a fragment of it that
/// carries the key path and what is wrong.
struct Rejection: Sendable, CustomTestStringConvertible {
    let yaml: String
    let line: Int
    let fragment: String
    var testDescription: String { fragment }

    init(_ yaml: String, _ line: Int, _ fragment: String) {
        self.yaml = yaml
        self.line = line
        self.fragment = fragment
    }
}

private let v1 = "version: 1\n"
private let v1images = "version: 1\nimages:\n"
private let imageA = "version: 1\nimages:\n  - ref: registry.example.com/a:1\n"
private let hex = String(repeating: "a", count: 64)

private func check(_ c: Rejection, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let e = Fixture.rejection(c.yaml, sourceLocation: sourceLocation) else { return }
    #expect(e.code == .invalidInput, sourceLocation: sourceLocation)
    #expect(e.exitCode == 2, sourceLocation: sourceLocation)
    #expect(e.message.hasPrefix("seed.yaml:\(c.line): "), "\(e.message)", sourceLocation: sourceLocation)
    #expect(e.message.contains(c.fragment), "\(e.message)", sourceLocation: sourceLocation)
}

@Suite("Refused manifests")
struct RejectionTests {
    @Test("Unknown keys at every level are named, with the allowed ones", arguments: [
        // A misspelt top-level key gets a suggestion.
        Rejection(v1 + "images: []\nimagez: []\n", 3, "imagez: unknown key (did you mean images?); allowed here: version, images, platforms"),
        // A key from another tool at the top level.
        Rejection(v1 + "images: []\napiVersion: v1\n", 3, "apiVersion: unknown key; allowed here:"),
        // An image entry with a key it does not have.
        Rejection(imageA + "    tag: x\n", 4, "images[0].tag: unknown key; allowed here: ref, source, sha256, nodes"),
        // A registry setting that does not exist.
        Rejection(v1 + "images: []\nregistries:\n  \"r.example.com\": {insecure: true, verify: false}\n", 4, #"registries["r.example.com"].verify: unknown key"#),
        // A node entry with a near miss.
        Rejection(v1 + "images: []\nnodes:\n  - name: a\n    url: http://a.example.com:7441\n    label: {}\n", 6, "nodes[0].label: unknown key (did you mean labels?)"),
        // auth keys are case-sensitive.
        Rejection(v1 + "images: []\nauth: {dockerconfig: x.json}\n", 3, "auth.dockerconfig: unknown key (did you mean dockerConfig?)"),
        // discovery has no host key.
        Rejection(v1 + "images: []\ndiscovery:\n  dns: a.example.com\n  host: b\n", 5, "discovery.host: unknown key; allowed here: dns, port, scheme"),
        // agents has no token key (the token lives in a file).
        Rejection(v1 + "images: []\nagents:\n  token: s3cr3t\n", 4, "agents.token: unknown key; allowed here: tokenFile, caFile"),
    ])
    func unknownKeys(_ c: Rejection) { check(c) }

    @Test("Duplicate keys in any mapping are refused with both lines", arguments: [
        // The same top-level key twice.
        Rejection(v1 + "images: []\nversion: 1\n", 3, "version: duplicate key (first at line 1)"),
        // Quoting a key does not make it another key.
        Rejection("\"version\": 1\nimages: []\nversion: 1\n", 3, "version: duplicate key (first at line 1)"),
        // Two refs in one entry: the second would silently win in a lax decoder.
        Rejection(imageA + "    ref: registry.example.com/b:1\n", 4, "images[0].ref: duplicate key (first at line 3)"),
        // A label selector with the same label twice, in flow style.
        Rejection(imageA + "    nodes: {gpu: \"true\", gpu: \"false\"}\n", 4, "images[0].nodes.gpu: duplicate key (first at line 4)"),
        // Two settings for one registry host.
        Rejection(v1 + "images: []\nregistries:\n  r.example.com: {}\n  r.example.com: {insecure: true}\n", 5, #"registries["r.example.com"]: duplicate key (first at line 4)"#),
    ])
    func duplicateKeys(_ c: Rejection) { check(c) }

    @Test("Nulls and empty values where a value is required", arguments: [
        // images with nothing after it.
        Rejection(v1images, 2, "images: want a list of images, found null"),
        // A tilde ref.
        Rejection(v1images + "  - ref: ~\n", 3, "images[0].ref: want an image reference, found null"),
        // An empty ref followed by another key.
        Rejection(v1images + "  - ref:\n    source: file:a.tar\n", 3, "images[0].ref: want an image reference, found null"),
        // A quoted empty ref.
        Rejection(v1images + "  - ref: \"\"\n", 3, "images[0].ref: want an image reference, found an empty string"),
        // An empty list entry.
        Rejection(v1images + "  -\n", 3, "images[0]: want an image entry (a mapping with ref), found null"),
        // An explicit null source.
        Rejection(imageA + "    source: null\n", 4, "images[0].source: want a source (file:PATH, http://URL or https://URL), found null"),
        // A null section.
        Rejection(v1 + "images: []\nauth:\n", 3, "auth: want a mapping (dockerConfig), found null"),
        // A null path.
        Rejection(v1 + "images: []\nauth:\n  dockerConfig: ~\n", 4, "auth.dockerConfig: want a path, found null"),
        // A null selector value.
        Rejection(imageA + "    nodes: {gpu: }\n", 4, "images[0].nodes.gpu: want a label value (a string), found null"),
        // A null registry entry.
        Rejection(v1 + "images: []\nregistries:\n  \"localhost:5000\":\n", 4, #"registries["localhost:5000"]: want a mapping (insecure, caFile), found null"#),
        // A null key.
        Rejection(v1 + "images: []\n~: x\n", 3, "a key is empty or null"),
    ])
    func nulls(_ c: Rejection) { check(c) }

    @Test("Wrong node kinds", arguments: [
        // A mapping where a list is wanted.
        Rejection(v1 + "images: {ref: registry.example.com/a:1}\n", 2, "images: want a list of images, found a mapping"),
        // A bare string instead of an image entry.
        Rejection(v1images + "  - registry.example.com/a:1\n", 3, #"images[0]: want an image entry (a mapping with ref), found "registry.example.com/a:1""#),
        // A list where a string is wanted.
        Rejection(v1images + "  - ref: [registry.example.com/a:1]\n", 3, "images[0].ref: want an image reference, found a list"),
        // A scalar where the platforms list is wanted.
        Rejection(imageA + "platforms: linux/amd64\n", 4, "platforms: want a list of platforms (os/arch[/variant]), found \"linux/amd64\""),
        // A mapping of nodes instead of a list.
        Rejection(imageA + "nodes: {a: http://a.example.com}\n", 4, "nodes: want a list of nodes (name, url, labels), found a mapping"),
        // A list of registries instead of a mapping.
        Rejection(imageA + "registries: [localhost:5000]\n", 4, "registries: want a mapping of registry host[:port] to settings, found a list"),
        // A sequence as a mapping key.
        Rejection(v1 + "images: []\n? [a, b]\n: c\n", 3, "a key must be a string, found a list"),
        // The whole manifest is a list.
        Rejection("- version: 1\n", 1, "want a mapping with version: 1 and images, found a list"),
        // The whole manifest is a string.
        Rejection("seed\n", 1, #"want a mapping with version: 1 and images, found "seed""#),
    ])
    func wrongKinds(_ c: Rejection) { check(c) }

    @Test("version: required, the unquoted integer 1", arguments: [
        // Missing.
        Rejection("images: []\n", 1, "missing required key version (want version: 1)"),
        // A future version is refused before its keys are judged.
        Rejection("version: 2\nimages: []\nnewThing: {}\n", 1, "version: unsupported manifest version 2; this seed reads version 1"),
        // Quoted: a string, not the integer.
        Rejection("version: \"1\"\nimages: []\n", 1, #"version: want the unquoted integer 1, found the string "1""#),
        // A float.
        Rejection("version: 1.0\nimages: []\n", 1, #"version: want the unquoted integer 1, found "1.0""#),
        // Null.
        Rejection("version:\nimages: []\n", 1, "version: want the unquoted integer 1, found null"),
        // A missing images list is an error too (an empty desired state is written images: []).
        Rejection("version: 1\n", 1, "missing required key images (write images: [] for an empty desired state)"),
    ])
    func version(_ c: Rejection) { check(c) }

    @Test("Documents: exactly one, not empty", arguments: [
        // Two documents.
        Rejection(imageA + "---\nversion: 1\nimages: []\n", 5, "a second YAML document; a manifest is exactly one document"),
        // A trailing separator starts a second, empty document.
        Rejection(imageA + "---\n", 5, "a second YAML document"),
        // An empty file.
        Rejection("", 1, "the manifest is empty"),
        // Only comments and blank lines.
        Rejection("# nothing yet\n\n", 1, "the manifest is empty"),
        // A document marker and nothing else.
        Rejection("---\n", 1, "the manifest is empty"),
    ])
    func documents(_ c: Rejection) { check(c) }

    @Test("Anchors, aliases, merge keys and tags are refused", arguments: [
        // An anchor, even unused.
        Rejection(v1 + "images: &imgs []\n", 2, "images: YAML anchors and aliases (&name, *name) are not allowed"),
        // An anchor on a scalar that an alias repeats: the anchor is met first.
        Rejection(imageA + "nodes:\n  - name: &n a\n    url: http://a.example.com\n  - name: *n\n    url: http://b.example.com\n", 5, "nodes[0].name: YAML anchors and aliases"),
        // An anchor on a block mapping, written on the line before it.
        Rejection(v1images + "  - &base\n    ref: registry.example.com/a:1\n", 3, "images[0]: YAML anchors and aliases"),
        // An alias with no anchor is refused as an alias.
        Rejection("version: *v\nimages: []\n", 1, "YAML aliases (*name) are not allowed"),
        // A merge key with an inline mapping needs no alias, and is refused too.
        Rejection(v1images + "  - <<: {ref: registry.example.com/a:1}\n", 3, #"images[0]["<<"]: YAML merge keys (<<) are not allowed"#),
        // A tag.
        Rejection("version: !!int 1\nimages: []\n", 1, "version: YAML tags (!…) are not allowed"),
        // A local tag on a mapping.
        Rejection(v1 + "images: []\nauth: !secret\n  dockerConfig: x\n", 3, "auth: YAML tags"),
        // An anchor after a tag is still found.
        Rejection("version: !!int &v 1\nimages: []\n", 1, "version: YAML anchors and aliases"),
        // An anchor on a key.
        Rejection("&k version: 1\nimages: []\n", 1, "YAML anchors and aliases"),
    ])
    func anchorsAndTags(_ c: Rejection) { check(c) }

    @Test("Image entries: references, duplicates, checksums, sources, selectors", arguments: [
        // A malformed reference, with Reference's reason.
        Rejection(v1images + "  - ref: registry.example.com/Team/api:1\n", 3, #"images[0].ref: invalid image reference "registry.example.com/Team/api:1": repository name must be lowercase"#),
        // A reference with a space.
        Rejection(v1images + "  - ref: \"a b\"\n", 3, "images[0].ref: invalid image reference"),
        // The same image twice once normalised.
        Rejection(v1images + "  - ref: nginx\n  - ref: docker.io/library/nginx:latest\n", 4, "images[1].ref: docker.io/library/nginx:latest is already listed at images[0] (line 3)"),
        // The duplicate is reported on the line of its ref, wherever the key is in the entry.
        Rejection(v1images + "  - ref: registry.example.com/a\n  - source: file:a.tar\n    ref: registry.example.com/a:latest\n", 5, "images[1].ref: registry.example.com/a:latest is already listed at images[0] (line 3)"),
        // A checksum one digit short.
        Rejection(imageA + "    source: file:a.tar\n    sha256: \(hex.dropLast())\n", 5, "images[0].sha256: invalid sha256"),
        // Another algorithm.
        Rejection(imageA + "    source: file:a.tar\n    sha256: sha512:\(hex)\n", 5, "images[0].sha256: invalid sha256 \"sha512:"),
        // Not hex.
        Rejection(imageA + "    source: file:a.tar\n    sha256: \(String(repeating: "g", count: 64))\n", 5, "want 64 hex digits, optionally after sha256:"),
        // A checksum for a registry image (pin by digest in the ref instead).
        Rejection(imageA + "    sha256: \(hex)\n", 4, "images[0].sha256: sha256 checks a tarball, so it needs a file: or http(s):// source"),
        // An unknown scheme.
        Rejection(imageA + "    source: s3://bucket/a.tar\n", 4, #"images[0].source: unsupported source "s3://bucket/a.tar": want file:PATH, http://URL or https://URL"#),
        // A skopeo-style transport is not a source.
        Rejection(imageA + "    source: docker-archive:a.tar\n", 4, "unsupported source"),
        // file: with no path.
        Rejection(imageA + "    source: \"file:\"\n", 4, "images[0].source: invalid source \"file:\": no path after file:"),
        // A file URL with a host.
        Rejection(imageA + "    source: file://images/a.tar\n", 4, "a file:// URL has no host"),
        // ~ is not expanded.
        Rejection(imageA + "    source: file:~/a.tar\n", 4, "images[0].source: ~ is not expanded"),
        // An HTTPS URL with credentials.
        Rejection(imageA + "    source: https://user:pw@a.example.com/a.tar\n", 4, "credentials in a URL are not supported"),
        // An HTTP URL without a host.
        Rejection(imageA + "    source: http:///a.tar\n", 4, "invalid source URL \"http:///a.tar\": no host"),
        // An HTTP URL with a space.
        Rejection(imageA + "    source: \"https://a.example.com/a b.tar\"\n", 4, "percent-encode it"),
        // A selector value that is a list.
        Rejection(imageA + "    nodes: {gpu: [a]}\n", 4, "images[0].nodes.gpu: want a label value (a string), found a list"),
        // A selector that is a list.
        Rejection(imageA + "    nodes: [gpu]\n", 4, "images[0].nodes: want a mapping of label names to string values, found a list"),
        // A label name with =.
        Rejection(imageA + "    nodes: {\"a=b\": c}\n", 4, #"images[0].nodes["a=b"]: a label name must not contain ="#),
    ])
    func images(_ c: Rejection) { check(c) }

    @Test("Nodes: name and url required and unique, url http(s) with only host and port", arguments: [
        // No name.
        Rejection(imageA + "nodes:\n  - url: http://a.example.com:7441\n", 5, "nodes[0]: missing required key name"),
        // No url.
        Rejection(imageA + "nodes:\n  - name: a\n", 5, "nodes[0]: missing required key url"),
        // Two nodes with one name.
        Rejection(imageA + "nodes:\n  - {name: a, url: \"http://a.example.com\"}\n  - {name: a, url: \"http://b.example.com\"}\n", 6, #"nodes[1].name: node name "a" is already used at line 5"#),
        // Two names for one agent.
        Rejection(imageA + "nodes:\n  - {name: a, url: \"http://a.example.com\"}\n  - {name: b, url: \"http://a.example.com/\"}\n", 6, "nodes[1].url: http://a.example.com is already the url of the node at line 5"),
        // Another scheme.
        Rejection(imageA + "nodes:\n  - name: a\n    url: ftp://a.example.com\n", 6, #"nodes[0].url: invalid agent URL "ftp://a.example.com": want http://host[:port] or https://host[:port]"#),
        // No scheme.
        Rejection(imageA + "nodes:\n  - name: a\n    url: 10.0.0.1:7441\n", 6, "nodes[0].url: invalid agent URL"),
        // A path.
        Rejection(imageA + "nodes:\n  - name: a\n    url: http://a.example.com:7441/v1\n", 6, "want only scheme, host and port"),
        // A bad port.
        Rejection(imageA + "nodes:\n  - name: a\n    url: http://a.example.com:74410\n", 6, #"invalid port "74410""#),
        // A host with an underscore.
        Rejection(imageA + "nodes:\n  - name: a\n    url: http://a_b.example.com\n", 6, "invalid host"),
        // A name with a space.
        Rejection(imageA + "nodes:\n  - name: node a\n    url: http://a.example.com\n", 5, "nodes[0].name: a node name must not contain whitespace"),
        // Labels that are a list.
        Rejection(imageA + "nodes:\n  - name: a\n    url: http://a.example.com\n    labels: [gpu]\n", 7, "nodes[0].labels: want a mapping of label names to string values, found a list"),
        // A label value that is a mapping.
        Rejection(imageA + "nodes:\n  - name: a\n    url: http://a.example.com\n    labels:\n      gpu: {x: 1}\n", 8, "nodes[0].labels.gpu: want a label value (a string), found a mapping"),
    ])
    func nodes(_ c: Rejection) { check(c) }

    @Test("Discovery: dns required, port 1-65535, scheme http or https", arguments: [
        // No dns.
        Rejection(imageA + "discovery: {port: 7441}\n", 4, "discovery: missing required key dns"),
        // Port 0.
        Rejection(imageA + "discovery: {dns: a.example.com, port: 0}\n", 4, "discovery.port: 0 is out of range 1-65535"),
        // Port too large.
        Rejection(imageA + "discovery: {dns: a.example.com, port: 65536}\n", 4, "discovery.port: 65536 is out of range"),
        // A quoted port.
        Rejection(imageA + "discovery: {dns: a.example.com, port: \"7441\"}\n", 4, #"discovery.port: want an unquoted decimal integer (1-65535), found the string "7441""#),
        // A leading zero (YAML 1.1 would read octal).
        Rejection(imageA + "discovery: {dns: a.example.com, port: 07441}\n", 4, "discovery.port: want an unquoted decimal integer"),
        // Another scheme.
        Rejection(imageA + "discovery: {dns: a.example.com, scheme: grpc}\n", 4, #"discovery.scheme: want http or https, found "grpc""#),
        // Not a DNS name.
        Rejection(imageA + "discovery: {dns: \"agents.example.com:7441\"}\n", 4, "discovery.dns: invalid DNS name"),
    ])
    func discovery(_ c: Rejection) { check(c) }

    @Test("Registries: host[:port] keys, boolean insecure, consistent settings", arguments: [
        // A URL instead of a host.
        Rejection(imageA + "registries:\n  \"https://r.example.com\": {}\n", 5, #"registries["https://r.example.com"]: invalid registry "https://r.example.com""#),
        // A host with a path.
        Rejection(imageA + "registries:\n  r.example.com/team: {}\n", 5, "want host[:port], without scheme or path"),
        // A port out of range.
        Rejection(imageA + "registries:\n  \"r.example.com:99999\": {}\n", 5, #"invalid port "99999""#),
        // A single-label host no reference can name as a registry.
        Rejection(imageA + "registries:\n  myregistry: {insecure: true}\n", 5, "registries.myregistry: invalid registry \"myregistry\": no image reference names a registry this way"),
        // yes is not a boolean here.
        Rejection(imageA + "registries:\n  \"localhost:5000\": {insecure: yes}\n", 5, #"registries["localhost:5000"].insecure: want true or false (unquoted), found "yes""#),
        // A quoted boolean is a string.
        Rejection(imageA + "registries:\n  \"localhost:5000\": {insecure: \"true\"}\n", 5, "want true or false (unquoted), found the string \"true\""),
        // Plain HTTP with a CA file.
        Rejection(imageA + "registries:\n  \"localhost:5000\": {insecure: true, caFile: ca.pem}\n", 5, "insecure (plain HTTP) and caFile (HTTPS) contradict each other"),
        // Docker Hub under two of its names.
        Rejection(imageA + "registries:\n  docker.io: {}\n  index.docker.io: {caFile: ca.pem}\n", 6, "the same registry as the key at line 5 (both are docker.io)"),
    ])
    func registries(_ c: Rejection) { check(c) }

    @Test("Platforms, paths and YAML syntax", arguments: [
        // A platform without an architecture.
        Rejection(imageA + "platforms: [linux]\n", 4, #"platforms[0]: invalid platform "linux""#),
        // Too many parts.
        Rejection(imageA + "platforms: [linux/arm/v7/x]\n", 4, "platforms[0]: invalid platform"),
        // The same platform twice, once spelt with an alias.
        Rejection(imageA + "platforms:\n  - linux/amd64\n  - linux/x86_64\n", 6, "platforms[1]: linux/x86_64 is listed twice (first at line 5)"),
        // An empty list selects nothing.
        Rejection(imageA + "platforms: []\n", 4, "platforms: an empty list selects nothing"),
        // ~ in a path.
        Rejection(imageA + "agents: {tokenFile: ~/token}\n", 4, "agents.tokenFile: ~ is not expanded"),
        // An empty path.
        Rejection(imageA + "agents: {caFile: ''}\n", 4, "agents.caFile: want a path, found an empty string"),
        // An unclosed flow list.
        Rejection(v1 + "images: [\n", 3, "invalid YAML"),
        // A tab used for indentation.
        Rejection(v1images + "\t- ref: a\n", 3, "invalid YAML"),
        // A mapping value where a scalar continues.
        Rejection(v1 + "images: []\nauth: a: b\n", 3, "invalid YAML: mapping values are not allowed"),
        // A control character.
        Rejection(v1 + "images: []\n# \u{07}\n", 3, "invalid YAML"),
    ])
    func platformsPathsSyntax(_ c: Rejection) { check(c) }
}

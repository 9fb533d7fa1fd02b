import Foundation
import Testing
@testable import SeedOCI

/// Small JSON builders for manifests and indexes.
private enum Doc {
    static let config = Fixture.digest("c")
    static let layer1 = Fixture.digest("1")
    static let layer2 = Fixture.digest("2")
    static let amd64 = Fixture.digest("a")
    static let arm64 = Fixture.digest("b")

    static func descriptor(_ type: String, _ digest: String, _ size: Int, extra: String = "") -> String {
        #"{"mediaType":"\#(type)","digest":"\#(digest)","size":\#(size)\#(extra)}"#
    }

    /// An image manifest; `mediaType` nil leaves the field out.
    static func manifest(mediaType: String?, configType: String, layerType: String, schemaVersion: String = "2",
                         configSize: Int = 1469, layerSize: Int = 3_000_000, layerDigest: String = layer1) -> String {
        let mt = mediaType.map { #""mediaType":"\#($0)","# } ?? ""
        return #"{"schemaVersion":\#(schemaVersion),\#(mt)"config":\#(descriptor(configType, config, configSize)),"#
            + #""layers":[\#(descriptor(layerType, layerDigest, layerSize)),\#(descriptor(layerType, layer2, 32))]}"#
    }

    /// An index or manifest list; `mediaType` nil leaves the field out.
    static func index(mediaType: String?, entryType: String, schemaVersion: String = "2", entrySize: Int = 1024) -> String {
        let mt = mediaType.map { #""mediaType":"\#($0)","# } ?? ""
        let a = descriptor(entryType, amd64, entrySize, extra: #","platform":{"architecture":"amd64","os":"linux"}"#)
        let b = descriptor(entryType, arm64, 1025, extra: #","platform":{"architecture":"arm64","os":"linux","variant":"v8"}"#)
        return #"{"schemaVersion":\#(schemaVersion),\#(mt)"manifests":[\#(a),\#(b)],"annotations":{"k":"v"}}"#
    }

    static let ociManifest = manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayerGzip)
    static let ociIndex = index(mediaType: MediaType.ociIndex, entryType: MediaType.ociManifest)
    static let dockerManifest = manifest(mediaType: MediaType.dockerManifest, configType: MediaType.dockerConfig, layerType: MediaType.dockerLayerGzip)
    static let dockerList = index(mediaType: MediaType.dockerManifestList, entryType: MediaType.dockerManifest)
}

private func parse(_ json: String, _ type: String? = nil, limit: Int = StrictJSON.defaultLimit) throws -> ManifestDocument {
    try ManifestDocument.parse(Fixture.bytes(json), descriptorType: type, what: "manifest under test", limit: limit)
}

@Suite("ManifestDocument")
struct ManifestTests {
    @Test("parses image manifests", arguments: [
        // An OCI manifest, type from the document itself.
        (Doc.ociManifest, nil as String?, MediaType.ociManifest as String?),
        // An OCI manifest, type from the descriptor too.
        (Doc.ociManifest, MediaType.ociManifest, MediaType.ociManifest),
        // A Docker schema-2 manifest.
        (Doc.dockerManifest, nil, MediaType.dockerManifest),
        // A Docker schema-2 manifest, referenced as such.
        (Doc.dockerManifest, MediaType.dockerManifest, MediaType.dockerManifest),
        // An OCI manifest without mediaType: its shape (config, layers) decides.
        (Doc.manifest(mediaType: nil, configType: MediaType.ociConfig, layerType: MediaType.ociLayer), nil, nil),
        // An OCI manifest without mediaType, referenced as a manifest.
        (Doc.manifest(mediaType: nil, configType: MediaType.ociConfig, layerType: MediaType.ociLayer), MediaType.ociManifest, nil),
        // A descriptor type that is neither manifest nor index (a Content-Type) is ignored.
        (Doc.ociManifest, "application/json", MediaType.ociManifest),
    ])
    func manifests(json: String, type: String?, ownType: String?) throws {
        guard case .manifest(let m) = try parse(json, type) else {
            Issue.record("expected a manifest")
            return
        }
        #expect(m.schemaVersion == 2)
        #expect(m.mediaType == ownType)
        #expect(m.config.digest.string == Doc.config)
        #expect(m.config.size == 1469)
        #expect(m.layers.map(\.digest.string) == [Doc.layer1, Doc.layer2])
        #expect(m.layers.map(\.size) == [3_000_000, 32])
        #expect(m.subject == nil)
    }

    @Test("parses indexes and manifest lists", arguments: [
        // An OCI index.
        (Doc.ociIndex, nil as String?, MediaType.ociIndex as String?),
        // An OCI index, referenced as one.
        (Doc.ociIndex, MediaType.ociIndex, MediaType.ociIndex),
        // A Docker manifest list.
        (Doc.dockerList, nil, MediaType.dockerManifestList),
        // A Docker manifest list, referenced as one.
        (Doc.dockerList, MediaType.dockerManifestList, MediaType.dockerManifestList),
        // An index without mediaType: its shape (manifests only) decides.
        (Doc.index(mediaType: nil, entryType: MediaType.ociManifest), nil, nil),
        // An index without mediaType, referenced as an index.
        (Doc.index(mediaType: nil, entryType: MediaType.ociManifest), MediaType.ociIndex, nil),
    ])
    func indexes(json: String, type: String?, ownType: String?) throws {
        guard case .index(let i) = try parse(json, type) else {
            Issue.record("expected an index")
            return
        }
        #expect(i.schemaVersion == 2)
        #expect(i.mediaType == ownType)
        #expect(i.manifests.map(\.digest.string) == [Doc.amd64, Doc.arm64])
        #expect(i.manifests.map { $0.platform?.description } == ["linux/amd64", "linux/arm64/v8"])
        #expect(i.annotations == ["k": "v"])
    }

    @Test("refuses schema versions other than 2", arguments: [
        // Docker schema 1 manifest.
        (Doc.manifest(mediaType: nil, configType: MediaType.ociConfig, layerType: MediaType.ociLayer, schemaVersion: "1"), "schemaVersion 1"),
        // Schema 1 index.
        (Doc.index(mediaType: MediaType.ociIndex, entryType: MediaType.ociManifest, schemaVersion: "1"), "schemaVersion 1"),
        // A future schema 3.
        (Doc.manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayer, schemaVersion: "3"), "schemaVersion 3"),
        // No schemaVersion at all.
        (#"{"mediaType":"\#(MediaType.ociIndex)","manifests":[]}"#, "schemaVersion (none)"),
        // A real schema 1 manifest (signed, fsLayers).
        (#"{"schemaVersion":1,"name":"library/x","tag":"latest","architecture":"amd64","fsLayers":[],"history":[]}"#, "schemaVersion 1"),
    ])
    func schemaVersion(json: String, why: String) {
        let error = #expect(throws: SeedError.self) { try parse(json) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains(why) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("manifest under test") == true)
    }

    @Test("refuses a document whose media type contradicts its descriptor", arguments: [
        // An OCI manifest referenced as an index.
        (Doc.ociManifest, MediaType.ociIndex),
        // An OCI manifest referenced as a Docker manifest.
        (Doc.ociManifest, MediaType.dockerManifest),
        // A Docker manifest referenced as an OCI manifest.
        (Doc.dockerManifest, MediaType.ociManifest),
        // An OCI index referenced as a manifest.
        (Doc.ociIndex, MediaType.ociManifest),
        // An OCI index referenced as a Docker manifest list.
        (Doc.ociIndex, MediaType.dockerManifestList),
        // A Docker manifest list referenced as an OCI index.
        (Doc.dockerList, MediaType.ociIndex),
    ])
    func contradiction(json: String, declared: String) {
        let error = #expect(throws: SeedError.self) { try parse(json, declared) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains("declares media type") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(declared) == true)
    }

    @Test("a document typed only by its descriptor must have that shape", arguments: [
        // An index without mediaType, referenced as a manifest: no config.
        (Doc.index(mediaType: nil, entryType: MediaType.ociManifest), MediaType.ociManifest),
        // A manifest without mediaType, referenced as an index: no manifests.
        (Doc.manifest(mediaType: nil, configType: MediaType.ociConfig, layerType: MediaType.ociLayer), MediaType.ociIndex),
    ])
    func shapeMismatch(json: String, declared: String) {
        let error = #expect(throws: SeedError.self) { try parse(json, declared) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains("missing key") == true, "\(error?.message ?? "")")
    }

    @Test("refuses a document that is neither a manifest nor an index", arguments: [
        // Nothing but a schema version.
        #"{"schemaVersion":2}"#,
        // A config media type.
        #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociConfig)"}"#,
        // An unknown media type and no telling fields.
        #"{"schemaVersion":2,"mediaType":"application/vnd.example+json","blobs":[]}"#,
        // Both manifests and layers: ambiguous.
        #"{"schemaVersion":2,"manifests":[],"layers":[]}"#,
        // Both manifests and config: ambiguous.
        #"{"schemaVersion":2,"manifests":[],"config":{}}"#,
    ])
    func neither(_ json: String) {
        let error = #expect(throws: SeedError.self) { try parse(json) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains("neither an image manifest nor an index") == true, "\(error?.message ?? "")")
    }

    @Test("refuses a manifest with layers but no config")
    func layersWithoutConfig() {
        // Shape says manifest (layers, no manifests) only via mediaType; without config it cannot decode.
        let json = #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","layers":[]}"#
        let error = #expect(throws: SeedError.self) { try parse(json) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains("config") == true, "\(error?.message ?? "")")
    }

    @Test("refuses a negative size in any descriptor", arguments: [
        // In the config descriptor.
        Doc.manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayer, configSize: -1),
        // In a layer descriptor.
        Doc.manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayer, layerSize: -5),
        // In an index entry.
        Doc.index(mediaType: MediaType.ociIndex, entryType: MediaType.ociManifest, entrySize: -1024),
    ])
    func negativeSize(_ json: String) {
        let error = #expect(throws: SeedError.self) { try parse(json) }
        #expect(error?.code == .malformedArchive)
        #expect(error?.message.contains("negative size") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("manifest under test") == true)
    }

    @Test("refuses sizes that are not 64-bit integers", arguments: [
        // Beyond Int64.
        #"{"mediaType":"x","digest":"\#(Fixture.empty)","size":9223372036854775808}"#,
        // A fraction.
        #"{"mediaType":"x","digest":"\#(Fixture.empty)","size":1.5}"#,
        // A string.
        #"{"mediaType":"x","digest":"\#(Fixture.empty)","size":"1"}"#,
    ])
    func badSize(_ json: String) {
        let error = #expect(throws: SeedError.self) { try StrictJSON.decode(Descriptor.self, from: Fixture.bytes(json), what: "descriptor") }
        #expect(error?.code == .malformedArchive)
    }

    @Test("refuses an invalid digest inside", arguments: [
        // A short config digest.
        Doc.manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayer)
            .replacingOccurrences(of: Doc.config, with: "sha256:abc"),
        // An uppercase layer digest.
        Doc.manifest(mediaType: MediaType.ociManifest, configType: MediaType.ociConfig, layerType: MediaType.ociLayer,
                     layerDigest: "sha256:" + String(repeating: "A", count: 64)),
        // A sha512 index entry.
        Doc.ociIndex.replacingOccurrences(of: Doc.amd64, with: "sha512:" + String(repeating: "a", count: 128)),
        // A path traversal in place of a digest.
        Doc.ociIndex.replacingOccurrences(of: Doc.arm64, with: "../../etc/passwd"),
    ])
    func invalidDigest(_ json: String) {
        let error = #expect(throws: SeedError.self) { try parse(json) }
        guard let error else { return }
        #expect([.invalidDigest, .malformedArchive].contains(error.code))
        // The message names the document and the offending value.
        #expect(error.message.contains("manifest under test"), "\(error.message)")
        #expect(error.message.contains("digest"), "\(error.message)")
    }

    @Test("refuses duplicate keys, oversize documents and trailing data")
    func strictness() {
        // A duplicate mediaType could make two parsers see different documents.
        let dup = Doc.ociManifest.replacingOccurrences(of: #"{"schemaVersion":2,"#, with: #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociIndex)","#)
        let e1 = #expect(throws: SeedError.self) { try parse(dup) }
        #expect(e1?.code == .malformedArchive)
        #expect(e1?.message.contains("duplicate key") == true)
        // Over the caller's limit.
        let e2 = #expect(throws: SeedError.self) { try parse(Doc.ociManifest, limit: 100) }
        #expect(e2?.code == .tooLarge)
        // Trailing garbage after the document.
        let e3 = #expect(throws: SeedError.self) { try parse(Doc.ociIndex + "{}") }
        #expect(e3?.code == .malformedArchive)
        // Not JSON at all.
        let e4 = #expect(throws: SeedError.self) { try parse("<html>") }
        #expect(e4?.code == .malformedArchive)
        // A JSON array, not an object.
        let e5 = #expect(throws: SeedError.self) { try parse("[]") }
        #expect(e5?.code == .malformedArchive)
    }

    @Test("keeps subject, artifactType and annotations of a manifest")
    func manifestExtras() throws {
        let json = #"{"schemaVersion":2,"mediaType":"\#(MediaType.ociManifest)","artifactType":"application/vnd.example.sbom","#
            + #""config":\#(Doc.descriptor("application/vnd.oci.empty.v1+json", Fixture.digest("4"), 2)),"layers":[],"#
            + #""subject":\#(Doc.descriptor(MediaType.ociManifest, Doc.amd64, 1024)),"annotations":{"a":"b"}}"#
        guard case .manifest(let m) = try parse(json) else {
            Issue.record("expected a manifest")
            return
        }
        #expect(m.artifactType == "application/vnd.example.sbom")
        #expect(m.subject?.digest.string == Doc.amd64)
        #expect(m.annotations == ["a": "b"])
        #expect(m.layers.isEmpty)
    }

    @Test("the memberwise initialisers make schema-2 documents that parse back")
    func roundTrip() throws {
        let config = Descriptor(mediaType: MediaType.ociConfig, digest: try Digest(Doc.config), size: 10)
        let layer = Descriptor(mediaType: MediaType.ociLayerGzip, digest: try Digest(Doc.layer1), size: 20)
        let manifest = ImageManifest(mediaType: MediaType.ociManifest, config: config, layers: [layer])
        #expect(manifest.schemaVersion == 2)
        let mBytes = try JSONEncoder().encode(manifest)
        #expect(try ManifestDocument.parse(Array(mBytes), descriptorType: MediaType.ociManifest, what: "m") == .manifest(manifest))
        let entry = Descriptor(mediaType: MediaType.ociManifest, digest: Digest.of(Array(mBytes)), size: Int64(mBytes.count),
                               platform: Platform(os: "linux", architecture: "amd64"),
                               annotations: [Descriptor.Annotation.refName: "1.0"])
        let index = ImageIndex(manifests: [entry])
        #expect(index.mediaType == MediaType.ociIndex)
        let iBytes = try JSONEncoder().encode(index)
        #expect(try ManifestDocument.parse(Array(iBytes), descriptorType: nil, what: "i") == .index(index))
    }
}

@Suite("Descriptor and media types")
struct DescriptorTests {
    @Test("decodes optional fields and refuses missing required ones")
    func decode() throws {
        let json = #"{"mediaType":"\#(MediaType.ociManifest)","digest":"\#(Fixture.empty)","size":0,"#
            + #""platform":{"os":"linux","architecture":"arm","variant":"v7"},"annotations":{"\#(Descriptor.Annotation.refName)":"v1"},"#
            + #""urls":["https://example.com/layer"],"artifactType":"application/x"}"#
        let d = try StrictJSON.decode(Descriptor.self, from: Fixture.bytes(json), what: "descriptor")
        #expect(d.size == 0)
        #expect(d.digest.hex == Fixture.emptyHex)
        #expect(d.platform == Platform(os: "linux", architecture: "arm", variant: "v7"))
        #expect(d.annotations?[Descriptor.Annotation.refName] == "v1")
        #expect(d.urls == ["https://example.com/layer"])
        #expect(d.artifactType == "application/x")
        // Encoding and decoding again gives the same descriptor.
        #expect(try JSONDecoder().decode(Descriptor.self, from: JSONEncoder().encode(d)) == d)

        for (field, json) in [
            // No mediaType.
            ("mediaType", #"{"digest":"\#(Fixture.empty)","size":1}"#),
            // No digest.
            ("digest", #"{"mediaType":"x","size":1}"#),
            // No size.
            ("size", #"{"mediaType":"x","digest":"\#(Fixture.empty)"}"#),
        ] {
            let error = #expect(throws: SeedError.self) { try StrictJSON.decode(Descriptor.self, from: Fixture.bytes(json), what: "descriptor") }
            #expect(error?.code == .malformedArchive)
            #expect(error?.message.contains(field) == true, "\(error?.message ?? "")")
        }
    }

    @Test("encoding leaves out absent optionals")
    func encode() throws {
        let d = Descriptor(mediaType: MediaType.ociLayer, digest: try Digest(Fixture.empty), size: 0)
        let s = String(decoding: try JSONEncoder().encode(d), as: UTF8.self)
        #expect(!s.contains("null"))
        #expect(!s.contains("platform"))
        #expect(!s.contains("annotations"))
    }

    @Test("media type classification", arguments: [
        // OCI index.
        (MediaType.ociIndex as String?, true, false),
        // Docker manifest list.
        (MediaType.dockerManifestList, true, false),
        // OCI manifest.
        (MediaType.ociManifest, false, true),
        // Docker manifest.
        (MediaType.dockerManifest, false, true),
        // A config is neither.
        (MediaType.ociConfig, false, false),
        // A layer is neither.
        (MediaType.dockerLayerGzip, false, false),
        // A Content-Type with parameters is not the bare type.
        (MediaType.ociManifest + "; charset=utf-8", false, false),
        // Case matters.
        (MediaType.ociIndex.uppercased(), false, false),
        // Absent.
        (nil, false, false),
    ])
    func classify(type: String?, isIndex: Bool, isManifest: Bool) {
        #expect(MediaType.isIndex(type) == isIndex)
        #expect(MediaType.isManifest(type) == isManifest)
    }

    @Test("the Accept list names every manifest and index type")
    func accept() {
        #expect(Set(MediaType.acceptedManifests) == [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest])
    }

    @Test("image config gives its platform and diff IDs")
    func imageConfig() throws {
        let json = #"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":["\#(Fixture.empty)"]},"config":{"Env":["A=1"]}}"#
        let c = try StrictJSON.decode(ImageConfig.self, from: Fixture.bytes(json), what: "config")
        #expect(c.platform == Platform(os: "linux", architecture: "arm64", variant: "v8"))
        #expect(c.rootfs.diff_ids == [try Digest(Fixture.empty)])
        // An invalid diff ID is refused.
        let bad = json.replacingOccurrences(of: Fixture.empty, with: "sha256:00")
        #expect(throws: SeedError.self) { try StrictJSON.decode(ImageConfig.self, from: Fixture.bytes(bad), what: "config") }
    }

    @Test("docker-archive manifest.json entries allow null RepoTags")
    func dockerArchiveEntry() throws {
        let json = #"[{"Config":"c.json","RepoTags":null,"Layers":["l/layer.tar"]},{"Config":"d.json","RepoTags":["a:1"],"Layers":[]}]"#
        let entries = try StrictJSON.decode([DockerArchiveEntry].self, from: Fixture.bytes(json), what: "manifest.json")
        #expect(entries.count == 2)
        #expect(entries[0].RepoTags == nil)
        #expect(entries[1].RepoTags == ["a:1"])
        #expect(entries[0].Layers == ["l/layer.tar"])
        #expect(OCILayoutMarker.current.imageLayoutVersion == "1.0.0")
    }
}

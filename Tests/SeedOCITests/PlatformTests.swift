import Foundation
import Testing
@testable import SeedOCI

@Suite("Platform")
struct PlatformTests {
    @Test("parses os/architecture[/variant]", arguments: [
        // The common server platform.
        ("linux/amd64", "linux", "amd64", nil as String?),
        // 64-bit ARM with its variant as written (normalisation is separate).
        ("linux/arm64/v8", "linux", "arm64", "v8"),
        // 32-bit ARM v7.
        ("linux/arm/v7", "linux", "arm", "v7"),
        // 32-bit x86.
        ("linux/386", "linux", "386", nil),
        // Little-endian POWER.
        ("linux/ppc64le", "linux", "ppc64le", nil),
        // RISC-V.
        ("linux/riscv64", "linux", "riscv64", nil),
        // Windows.
        ("windows/amd64", "windows", "amd64", nil),
        // Uppercase is folded to lowercase.
        ("Linux/AMD64", "linux", "amd64", nil),
        // Aliases are kept as written by the parser.
        ("linux/x86_64", "linux", "x86_64", nil),
        // The BuildKit attestation platform.
        ("unknown/unknown", "unknown", "unknown", nil),
    ])
    func parses(input: String, os: String, architecture: String, variant: String?) throws {
        let p = try Platform(input)
        #expect(p.os == os)
        #expect(p.architecture == architecture)
        #expect(p.variant == variant)
        #expect(p.description == input.lowercased())
        // The description parses back to the same platform.
        #expect(try Platform(p.description) == p)
    }

    @Test("refuses malformed platform strings with invalidInput", arguments: [
        // Empty.
        "",
        // OS only.
        "linux",
        // Empty architecture.
        "linux/",
        // Empty OS.
        "/amd64",
        // Empty variant.
        "linux/arm/",
        // Empty architecture between OS and variant.
        "linux//v7",
        // Too many parts.
        "linux/arm/v7/extra",
        // A space inside.
        "linux/amd 64",
        // A trailing space.
        "linux/amd64 ",
        // A trailing newline.
        "linux/amd64\n",
        // A backslash separator.
        "linux\\amd64",
        // A comma-separated list is not one platform.
        "linux/amd64,linux/arm64",
        // A colon.
        "linux/amd64:v2",
        // A non-ASCII letter.
        "linux/amdé64",
        // A NUL byte.
        "linux/amd64\u{0}",
    ])
    func refuses(_ input: String) {
        let error = #expect(throws: SeedError.self) { try Platform(input) }
        guard let error else { return }
        #expect(error.code == .invalidInput)
        #expect(error.message.contains(SeedError.quote(input)), "\(error.message)")
        #expect(error.message.contains("os/architecture"))
    }

    @Test("an empty variant is no variant")
    func emptyVariant() {
        #expect(Platform(os: "linux", architecture: "amd64", variant: "").variant == nil)
        #expect(Platform(os: "linux", architecture: "amd64", variant: "").description == "linux/amd64")
    }

    @Test("normalisation folds aliases and default variants", arguments: [
        // x86_64 is amd64.
        ("linux/x86_64", "linux/amd64"),
        // x86-64 is amd64.
        ("linux/x86-64", "linux/amd64"),
        // aarch64 is arm64.
        ("linux/aarch64", "linux/arm64"),
        // arm64/v8 is the default, so the variant goes.
        ("linux/arm64/v8", "linux/arm64"),
        // aarch64/v8 folds both ways.
        ("linux/aarch64/v8", "linux/arm64"),
        // A non-default arm64 variant stays.
        ("linux/arm64/v9", "linux/arm64/v9"),
        // Bare arm means v7.
        ("linux/arm", "linux/arm/v7"),
        // armhf is arm v7.
        ("linux/armhf", "linux/arm/v7"),
        // armel is arm v6.
        ("linux/armel", "linux/arm/v6"),
        // arm v6 stays.
        ("linux/arm/v6", "linux/arm/v6"),
        // amd64/v1 is the default.
        ("linux/amd64/v1", "linux/amd64"),
        // amd64/v3 stays.
        ("linux/amd64/v3", "linux/amd64/v3"),
        // i386 is 386.
        ("linux/i386", "linux/386"),
        // i686 is 386.
        ("linux/i686", "linux/386"),
        // Unknown architectures pass through.
        ("linux/s390x", "linux/s390x"),
    ])
    func normalized(input: String, expected: String) throws {
        #expect(try Platform(input).normalized.description == expected)
    }

    @Test("matches compares normalised os, architecture and variant", arguments: [
        // Identical.
        ("linux/amd64", "linux/amd64", true),
        // arm64 host runs an arm64/v8 image.
        ("linux/arm64", "linux/arm64/v8", true),
        // arm64/v8 host runs an arm64 image.
        ("linux/arm64/v8", "linux/arm64", true),
        // arm host (implicitly v7) runs an arm/v7 image.
        ("linux/arm", "linux/arm/v7", true),
        // arm/v7 host runs a plain arm image (implicitly v7).
        ("linux/arm/v7", "linux/arm", true),
        // armhf host runs an arm/v7 image.
        ("linux/armhf", "linux/arm/v7", true),
        // amd64 host runs an image labelled x86_64.
        ("linux/amd64", "linux/x86_64", true),
        // x86_64 host runs an amd64 image.
        ("linux/x86_64", "linux/amd64", true),
        // aarch64 host runs arm64.
        ("linux/aarch64", "linux/arm64", true),
        // A candidate without a variant matches a host with one.
        ("linux/amd64/v3", "linux/amd64", true),
        // A candidate without a variant matches an arm64 host with a non-default variant.
        ("linux/arm64/v9", "linux/arm64", true),
        // Different architecture.
        ("linux/amd64", "linux/arm64", false),
        // Different OS.
        ("linux/amd64", "windows/amd64", false),
        // Different arm variants.
        ("linux/arm/v7", "linux/arm/v6", false),
        // A host without a variant does not run an image that requires v3.
        ("linux/amd64", "linux/amd64/v3", false),
        // 32-bit arm is not arm64.
        ("linux/arm/v7", "linux/arm64", false),
        // Attestation manifests match no real platform.
        ("linux/amd64", "unknown/unknown", false),
    ])
    func matches(host: String, candidate: String, expected: Bool) throws {
        #expect(try Platform(host).matches(Platform(candidate)) == expected)
    }

    @Test("matches normalises case on directly built platforms")
    func matchesCase() {
        // Platforms from a config may carry any case.
        let host = Platform(os: "linux", architecture: "amd64")
        #expect(host.matches(Platform(os: "Linux", architecture: "X86_64")))
    }

    @Test("isUnknown spots BuildKit attestation platforms")
    func isUnknown() throws {
        #expect(try Platform("unknown/unknown").isUnknown)
        #expect(try !Platform("linux/unknown").isUnknown)
        #expect(try !Platform("linux/amd64").isUnknown)
    }

    @Test("Codable uses the OCI field names")
    func codable() throws {
        let json = #"{"os":"windows","architecture":"amd64","os.version":"10.0.17763.1457","os.features":["win32k"]}"#
        let p = try JSONDecoder().decode(Platform.self, from: Data(json.utf8))
        #expect(p.os == "windows")
        #expect(p.architecture == "amd64")
        #expect(p.variant == nil)
        #expect(p.osVersion == "10.0.17763.1457")
        #expect(p.osFeatures == ["win32k"])
        // Round trip.
        #expect(try JSONDecoder().decode(Platform.self, from: JSONEncoder().encode(p)) == p)
        // Absent optionals are left out, not written as null.
        let encoded = String(decoding: try JSONEncoder().encode(Platform(os: "linux", architecture: "arm64")), as: UTF8.self)
        #expect(!encoded.contains("variant"))
        #expect(!encoded.contains("null"))
        // os and architecture are required.
        #expect(throws: (any Error).self) { try JSONDecoder().decode(Platform.self, from: Data(#"{"os":"linux"}"#.utf8)) }
    }
}

import Foundation
@testable import SeedOCI

/// Shared fixtures for the SeedOCI tests.
enum Fixture {
    /// The SHA-256 of the empty string.
    static let emptyHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// `sha256:` + `emptyHex`.
    static let empty = "sha256:" + emptyHex
    /// The SHA-256 of "abc".
    static let abcHex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    /// Distinct, valid digest strings (`sha256:` + 64 times the same hex digit).
    static func digest(_ c: Character) -> String { "sha256:" + String(repeating: c, count: 64) }
    /// The bytes of a string, as a parser gets them from the network.
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
}

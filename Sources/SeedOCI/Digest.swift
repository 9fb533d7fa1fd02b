import Foundation
import Crypto

/// A content digest: `sha256:` followed by 64 lowercase hex digits. Only SHA-256 is accepted; a
/// `Digest` value is always valid, so it is safe to use in a path or URL.
public struct Digest: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The 64 lowercase hex digits.
    public let hex: String

    /// Parses and validates `sha256:<64 lowercase hex>`.
    public init(_ string: String) throws {
        let utf8 = Array(string.utf8)
        guard utf8.count == 71, string.hasPrefix("sha256:") else {
            if let colon = string.firstIndex(of: ":"), string[..<colon] != "sha256",
               !string[..<colon].isEmpty, string[..<colon].allSatisfy({ $0.isLetter || $0.isNumber }) {
                throw SeedError(.invalidDigest, "unsupported digest algorithm in \(SeedError.quote(string)): only sha256 is accepted")
            }
            throw SeedError(.invalidDigest, "invalid digest \(SeedError.quote(string)): want sha256: and 64 lowercase hex digits")
        }
        guard Digest.isHex64(utf8[7...]) else {
            throw SeedError(.invalidDigest, "invalid digest \(SeedError.quote(string)): want sha256: and 64 lowercase hex digits")
        }
        self.hex = String(string.dropFirst(7))
    }

    /// Validates 64 lowercase hex digits (without the `sha256:` prefix).
    public init(hex: String) throws {
        guard hex.utf8.count == 64, Digest.isHex64(hex.utf8) else {
            throw SeedError(.invalidDigest, "invalid sha256 hex \(SeedError.quote(hex))")
        }
        self.hex = hex
    }

    /// The digest of a finished SHA-256 computation.
    public init(_ hash: SHA256.Digest) {
        var s = ""
        s.reserveCapacity(64)
        let digits = Array("0123456789abcdef".utf8)
        var bytes = [UInt8]()
        bytes.reserveCapacity(64)
        for b in hash {
            bytes.append(digits[Int(b >> 4)])
            bytes.append(digits[Int(b & 0xF)])
        }
        s = String(decoding: bytes, as: UTF8.self)
        self.hex = s
    }

    /// The SHA-256 digest of `bytes`.
    public static func of<D: DataProtocol>(_ bytes: D) -> Digest {
        Digest(SHA256.hash(data: bytes))
    }

    /// `sha256:<hex>`.
    public var string: String { "sha256:" + hex }
    public var description: String { string }

    /// The short form for logs and tables: the first 12 hex digits.
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(s)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(string)
    }

    static func isHex64<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        var n = 0
        for b in bytes {
            guard (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) else { return false }
            n += 1
        }
        return n == 64
    }
}

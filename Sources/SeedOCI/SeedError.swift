/// The one error type of seed: a stable code, a lowercase message that says what was wrong and
/// where, and an optional underlying cause. Codes map to exit codes and HTTP statuses here, and
/// nowhere else.
public struct SeedError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable, machine-readable error category.
    public enum Code: String, Sendable, CaseIterable {
        /// Input from the user or a peer that does not parse or violates a rule.
        case invalidInput = "invalid_input"
        /// A string that is not a valid image reference.
        case invalidReference = "invalid_reference"
        /// A string that is not a valid `sha256:` digest.
        case invalidDigest = "invalid_digest"
        /// A tar stream, image archive or JSON document that is malformed.
        case malformedArchive = "malformed_archive"
        /// An archive entry that would be unsafe to accept (path escape, device node, link out).
        case unsafeEntry = "unsafe_entry"
        /// Content whose hash does not equal the digest it was announced under.
        case digestMismatch = "digest_mismatch"
        /// Content whose length does not equal the size it was announced with.
        case sizeMismatch = "size_mismatch"
        /// Something over a configured size or count limit.
        case tooLarge = "too_large"
        /// Blobs referenced by an image graph but neither sent nor present.
        case missingBlobs = "missing_blobs"
        /// A request without valid credentials.
        case unauthorized = "unauthorized"
        /// The peer does not do this (e.g. an agent started with `--no-relay` asked to relay).
        case forbidden = "forbidden"
        /// A blob, image or file that does not exist.
        case notFound = "not_found"
        /// The device holding the store is full.
        case noSpace = "no_space"
        /// Another process holds the store's lock.
        case locked = "locked"
        /// A peer (registry, agent) that cannot be reached, or keeps failing temporarily.
        case unavailable = "unavailable"
        /// The operation was cancelled (shutdown, client gone, timeout).
        case cancelled = "cancelled"
        /// An I/O failure that is not one of the above.
        case io = "io_error"
        /// A failure in a library or tool seed relies on.
        case `internal` = "internal"
    }

    /// The stable category.
    public var code: Code
    /// What went wrong and where, in lowercase prose.
    public var message: String
    /// The underlying error, if any.
    public var cause: String?
    /// For `missingBlobs`: the digests that are missing.
    public var digests: [Digest] = []

    /// Makes an error; `cause` is rendered with `String(describing:)`.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause.map { String(describing: $0) }
    }

    /// Makes an error whose cause is already text (e.g. redacted of secrets).
    public init(_ code: Code, _ message: String, detail: String) {
        self.code = code
        self.message = message
        self.cause = detail
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }

    /// The HTTP status an agent answers with for this error.
    public var httpStatus: Int {
        switch code {
        case .invalidInput, .invalidReference, .invalidDigest, .malformedArchive, .unsafeEntry: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .missingBlobs, .locked: 409
        case .tooLarge: 413
        case .digestMismatch, .sizeMismatch: 422
        case .noSpace: 507
        case .cancelled: 408
        case .unavailable: 503
        case .io, .internal: 500
        }
    }

    /// The process exit code a command ends with when this error stops it before any work.
    public var exitCode: Int32 {
        switch code {
        case .invalidInput, .invalidReference, .invalidDigest: 2
        case .locked: 3
        default: 1
        }
    }
}

extension SeedError {
    /// Renders arbitrary bytes (an entry name, a header value) for an error message: printable
    /// ASCII stays, everything else becomes `\xNN`, and the result is capped.
    public static func quote<C: Collection>(_ bytes: C, limit: Int = 200) -> String where C.Element == UInt8 {
        var out = "\""
        for (i, b) in bytes.enumerated() {
            if i >= limit { out += "…"; break }
            switch b {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x20...0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
            default: out += "\\x" + String(b, radix: 16).leftPad(2)
            }
        }
        return out + "\""
    }

    /// Renders a string for an error message, escaping control and non-ASCII characters.
    public static func quote(_ s: String, limit: Int = 200) -> String {
        quote(Array(s.utf8), limit: limit)
    }
}

extension String {
    func leftPad(_ n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}

import Foundation
import NIOCore
import SeedOCI

/// A temporary directory removed by `remove()`.
public final class TempDir: @unchecked Sendable {
    /// Its path.
    public let path: String

    /// Creates a fresh directory under $TMPDIR.
    public init(_ prefix: String = "seed-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SeedError(.io, "mkdtemp failed")
        }
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    /// `path/name`.
    public func sub(_ name: String) -> String { path + "/" + name }

    /// Deletes the directory and everything in it.
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// What a finished process left.
public struct ProcessResult: Sendable {
    /// Exit status.
    public var status: Int32
    /// Standard output.
    public var stdout: String
    /// Standard error.
    public var stderr: String
}

/// Errors of the test support code.
public struct SupportError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// Makes one.
    public init(_ d: String) { description = d }
}

/// Finds an executable on PATH; a missing tool is an error (scripts/test.sh installs them all),
/// never a silent skip.
public func tool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    throw SupportError("\(name) is not installed; scripts/test.sh installs everything the tests need")
}

/// Runs a program to completion; `check` makes a non-zero exit an error.
@discardableResult
public func run(_ argv: [String], stdin: Data? = nil, environment: [String: String]? = nil, check: Bool = true) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : try tool(argv[0]))
    p.arguments = Array(argv.dropFirst())
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    let inPipe = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
    try p.run()
    if let stdin {
        inPipe.fileHandleForWriting.write(stdin)
        try inPipe.fileHandleForWriting.close()
    }
    // Read both pipes concurrently so neither fills up.
    let group = DispatchGroup()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    let r = ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    if check && r.status != 0 {
        throw SupportError("\(argv.joined(separator: " ")) exited \(r.status): \(r.stderr)")
    }
    return r
}

/// A local file as an async sequence of byte buffers, read in chunks.
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let path: String
    let chunkSize: Int

    /// Reads `path` in chunks of `chunkSize` bytes.
    public init(_ path: String, chunkSize: Int = 1 << 20) {
        self.path = path
        self.chunkSize = chunkSize
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        let chunkSize: Int
        public mutating func next() async throws -> ByteBuffer? {
            guard let handle else { return nil }
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else {
                try? handle.close()
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(handle: FileHandle(forReadingAtPath: path), chunkSize: chunkSize)
    }
}

/// Some bytes as a one-chunk async sequence, or split in `pieces`.
public struct BytesChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let chunks: [ByteBuffer]

    /// Splits `bytes` into chunks of at most `chunkSize`.
    public init(_ bytes: [UInt8], chunkSize: Int = 64 << 10) {
        var out: [ByteBuffer] = []
        var i = 0
        while i < bytes.count {
            out.append(ByteBuffer(bytes: bytes[i..<Swift.min(bytes.count, i + chunkSize)]))
            i += chunkSize
        }
        chunks = out
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var chunks: [ByteBuffer]
        public mutating func next() async throws -> ByteBuffer? {
            chunks.isEmpty ? nil : chunks.removeFirst()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks) }
}

/// SHA-256 of a file, as `sha256sum` computes it.
public func sha256(file: String) throws -> Digest {
    let r = try run(["sha256sum", file])
    return try Digest(hex: String(r.stdout.prefix(64)))
}

/// Every regular file under `dir`, relative to it.
public func listFiles(_ dir: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
    var out: [String] = []
    while let f = e.nextObject() as? String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir + "/" + f, isDirectory: &isDir), !isDir.boolValue { out.append(f) }
    }
    return out.sorted()
}

/// The `seed` executable built next to the test bundle (or `$SEED_BINARY`).
public func seedBinary() throws -> String {
    if let p = ProcessInfo.processInfo.environment["SEED_BINARY"] { return p }
    var dir = Bundle.main.bundleURL
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("seed").path
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDir), !isDir.boolValue,
           FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        dir = dir.deletingLastPathComponent()
    }
    throw SupportError("the seed executable was not found next to \(Bundle.main.bundleURL.path); run `swift build` first")
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SeedOCI

/// Reading a manifest file from disk: size-capped, UTF-8 checked.
enum ManifestFile {
    /// Reads `path` as UTF-8 text, refusing anything over `SeedManifest.maxSize` bytes.
    static func read(_ path: String) throws -> String {
        let name = ManifestPath.displayName(path)
        guard !path.isEmpty else { throw SeedError(.invalidInput, "no manifest path given") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SeedError(.invalidInput, "cannot read manifest \(SeedError.quote(path)): \(errnoText(errno))")
        }
        defer { close(fd) }

        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw SeedError(.invalidInput, "cannot read manifest \(SeedError.quote(path)): \(errnoText(errno))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw SeedError(.invalidInput, "cannot read manifest \(SeedError.quote(path)): it is a directory")
        }
        if (st.st_mode & S_IFMT) == S_IFREG && Int(st.st_size) > SeedManifest.maxSize {
            throw tooLarge(name, Int(st.st_size))
        }

        // Read at most one byte past the limit: a file that grew, or a pipe, is capped too.
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while bytes.count <= SeedManifest.maxSize {
            let n = chunk.withUnsafeMutableBytes { Glue.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SeedError(.invalidInput, "cannot read manifest \(SeedError.quote(path)): \(errnoText(errno))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        if bytes.count > SeedManifest.maxSize { throw tooLarge(name, nil) }
        return try decodeUTF8(bytes, name: name)
    }

    /// Decodes strict UTF-8; the first invalid byte is reported with its line.
    static func decodeUTF8(_ bytes: [UInt8], name: String) throws -> String {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var line = 1
        var result = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s):
                if s == "\n" { line += 1 }
                result.append(s)
            case .emptyInput:
                break loop
            case .error:
                throw SeedError(.invalidInput, "\(name):\(line): not valid UTF-8 text")
            }
        }
        return String(result)
    }

    static func tooLarge(_ name: String, _ size: Int?) -> SeedError {
        let limit = "\(SeedManifest.maxSize >> 20) MiB"
        if let size {
            return SeedError(.invalidInput, "\(name): the manifest is \(size) bytes, over the \(limit) limit")
        }
        return SeedError(.invalidInput, "\(name): the manifest is over the \(limit) limit")
    }

    static func errnoText(_ e: Int32) -> String {
        String(cString: strerror(e)).lowercased()
    }
}

/// libc functions whose names a type's methods would shadow.
private enum Glue {
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, buffer, count)
        #elseif canImport(Musl)
        Musl.read(fd, buffer, count)
        #else
        Darwin.read(fd, buffer, count)
        #endif
    }
}

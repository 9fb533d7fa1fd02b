import Foundation
import Crypto
import SeedArchive
import SeedOCI
import SeedStore
import SeedTestSupport

/// Throughput and memory probe for scripts/bench/archive.sh:
///
///     seed-bench read ARCHIVE STORE       archive file → tar reader → verified blob store
///     seed-bench write STORE OUT          every image read last time → oci-archive file
///
/// Prints one line: `<direction> bytes=N seconds=S peak_rss_kib=K`.
@main
struct SeedBench {
    static func main() async {
        let args = CommandLine.arguments
        do {
            switch args.count >= 2 ? args[1] : "" {
            case "read" where args.count == 4:
                let store = try BlobStore(root: args[3])
                let start = ContinuousClock.now
                let got = try await ImageArchiveReader.read(FileChunks(args[2]), into: store)
                let seconds = (ContinuousClock.now - start).seconds
                // Remember the images for `write`.
                let roots = got.images.map { OCIArchiveWriter.Image(names: $0.names, root: $0.root) }
                try JSONEncoder().encode(roots.map(\.root)).write(to: URL(fileURLWithPath: args[3] + "/bench-roots.json"))
                report("read", bytes: got.blobBytes, seconds: seconds)
            case "scan" where args.count == 3:
                // Diagnostic: the tar reader alone, data touched but not hashed or stored.
                let start = ContinuousClock.now
                let total = Counter()
                let hash = ProcessInfo.processInfo.environment["SEED_BENCH_HASH"] != nil
                try await TarReader.read(FileChunks(args[2])) { _, data in
                    var h = SHA256()
                    try data.forEachChunk { total.value += Int64($0.count); if hash { h.update(bufferPointer: $0) } }
                    if hash { _ = h.finalize() }
                }
                report("scan", bytes: total.value, seconds: (ContinuousClock.now - start).seconds)
            case "write" where args.count == 4:
                let store = try BlobStore(root: args[2])
                let roots = try JSONDecoder().decode([Descriptor].self, from: Data(contentsOf: URL(fileURLWithPath: args[2] + "/bench-roots.json")))
                let start = ContinuousClock.now
                _ = FileManager.default.createFile(atPath: args[3], contents: nil)
                let out = try FileHandle(forWritingTo: URL(fileURLWithPath: args[3]))
                var bytes: Int64 = 0
                for try await chunk in OCIArchiveWriter.write(roots.map { .init(names: [], root: $0) }, from: store) {
                    bytes += Int64(chunk.readableBytes)
                    chunk.withUnsafeReadableBytes { out.write(Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: $0.baseAddress!), count: $0.count, deallocator: .none)) }
                }
                try out.close()
                report("write", bytes: bytes, seconds: (ContinuousClock.now - start).seconds)
            default:
                FileHandle.standardError.write(Data("usage: seed-bench read ARCHIVE STORE | write STORE OUT\n".utf8))
                exit(2)
            }
        } catch {
            FileHandle.standardError.write(Data("seed-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func report(_ what: String, bytes: Int64, seconds: Double) {
        print("\(what) bytes=\(bytes) seconds=\(String(format: "%.3f", seconds)) peak_rss_kib=\(peakRSS())")
    }

    /// VmHWM from /proc/self/status: the peak resident set size.
    static func peakRSS() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        return -1
    }
}

final class Counter: @unchecked Sendable { var value: Int64 = 0 }

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

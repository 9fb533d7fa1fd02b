import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import SeedArchive
import SeedManifest
import SeedOCI
import SeedRegistry
import SeedStore

/// An image now complete in the cache.
public struct FetchedImage: Sendable {
    /// The reference, as the manifest names it.
    public var ref: Reference
    /// The root: manifest, or index for a multi-platform image.
    public var root: Descriptor
    /// Blob bytes downloaded in this run.
    public var downloaded: Int64
    /// Bytes of every blob of the image (the platforms fetched).
    public var total: Int64
    /// Set when the registry could not be reached and the cache's last record was used.
    public var note: String?
}

/// The outcome for one manifest entry.
public struct FetchOutcome: Sendable {
    /// The entry.
    public var entry: ImageEntry
    /// The image, or why it failed.
    public var result: Result<FetchedImage, SeedError>
}

/// Fills the cache: registry images (resolved, then every manifest and blob of the wanted
/// platforms downloaded and verified), and archive sources (`file:`, `http(s):`) read straight
/// into the store. Blobs already in the cache are never downloaded again.
public final class Fetcher: Sendable {
    let cache: Cache
    let registry: RegistryClient
    let http: HTTPClient
    let logger: Logger
    let progress: ProgressReporter

    /// Makes a fetcher.
    public init(cache: Cache, registry: RegistryClient, http: HTTPClient, logger: Logger, progress: ProgressReporter) {
        self.cache = cache
        self.registry = registry
        self.http = http
        self.logger = logger
        self.progress = progress
    }

    /// Fetches `entries`, `concurrency` images at a time. `platforms` limits multi-platform
    /// images to those platforms; nil fetches every platform an index lists (but attestations).
    public func fetch(_ entries: [ImageEntry], platforms: [Platform]?, concurrency: Int) async -> [FetchOutcome] {
        progress.start(total: entries.count)
        defer { progress.finish() }
        var results = [FetchOutcome?](repeating: nil, count: entries.count)
        await withTaskGroup(of: (Int, FetchOutcome).self) { group in
            var next = 0
            func add() {
                let i = next
                let e = entries[i]
                next += 1
                group.addTask { (i, await self.fetchOne(e, platforms: platforms)) }
            }
            for _ in 0..<min(max(1, concurrency), entries.count) { add() }
            while let (i, r) = await group.next() {
                results[i] = r
                if next < entries.count { add() }
            }
        }
        return results.map { $0! }
    }

    func fetchOne(_ e: ImageEntry, platforms: [Platform]?) async -> FetchOutcome {
        let name = e.ref.description
        progress.begin(name)
        do {
            let image: FetchedImage
            switch e.source {
            case .registry: image = try await fetchRegistry(e.ref, platforms: platforms)
            case .file(let path):
                // A file read before and unchanged since (size and mtime) is not read again.
                let source = "file:" + path
                let stamp = Self.fileStamp(path)
                if let stamp, let rec = cache.record(for: e.ref, source: source), rec.fileStamp == stamp,
                   e.sha256 == nil || rec.archiveSHA256 == e.sha256, cache.store.contains(rec.descriptor.digest) {
                    image = FetchedImage(ref: e.ref, root: rec.descriptor, downloaded: 0, total: rec.descriptor.size, note: nil)
                } else {
                    image = try await fetchArchive(e, source: source, stream: FileByteStream.open(path), fileStamp: stamp)
                }
            case .http(let url):
                // An archive pinned by sha256 that was read before is not downloaded again.
                if let want = e.sha256, let rec = cache.record(for: e.ref, source: url), rec.archiveSHA256 == want,
                   cache.store.contains(rec.descriptor.digest) {
                    image = FetchedImage(ref: e.ref, root: rec.descriptor, downloaded: 0, total: rec.descriptor.size, note: nil)
                } else {
                    image = try await fetchArchive(e, source: url, stream: try await httpStream(url, what: name))
                }
            }
            var summary = "\(image.root.digest) \(formatBytes(image.downloaded)) downloaded of \(formatBytes(image.total))"
            if let note = image.note { summary += " (\(note))" }
            progress.end(name, summary: summary)
            return FetchOutcome(entry: e, result: .success(image))
        } catch {
            let se = (error as? SeedError) ?? SeedError(.internal, "\(name): \(Redact.error(error))")
            progress.end(name, summary: "", error: se.description)
            return FetchOutcome(entry: e, result: .failure(se))
        }
    }

    // MARK: registry images

    func fetchRegistry(_ ref: Reference, platforms: [Platform]?) async throws -> FetchedImage {
        let name = ref.description
        var note: String?
        let root: Descriptor
        if let d = ref.digest, let size = cache.store.size(of: d),
           let rec = cache.record(for: ref, source: "registry"), rec.descriptor.digest == d, rec.descriptor.size == size {
            // Pinned by digest and already here: no need to ask the registry.
            root = rec.descriptor
        } else {
            let resolved: (descriptor: Descriptor, bytes: [UInt8])
            do {
                resolved = try await registry.resolve(ref)
            } catch let err as SeedError where err.code == .unavailable && ref.digest == nil {
                // The registry cannot be reached: go on with what the cache last resolved.
                guard let rec = cache.record(for: ref, source: "registry"), cache.store.contains(rec.descriptor.digest) else { throw err }
                note = "registry unreachable; using the digest cached at \(rec.resolvedAt)"
                logger.warning("registry unreachable, using cached digest", metadata: ["image": "\(name)", "digest": "\(rec.descriptor.digest)", "resolvedAt": "\(rec.resolvedAt)"])
                resolved = (rec.descriptor, [])
            }
            if note == nil && !cache.store.contains(resolved.descriptor.digest) {
                try cache.store.put(resolved.bytes, expected: resolved.descriptor.digest)
            }
            root = resolved.descriptor
        }
        var downloaded: Int64 = 0
        var total: Int64 = root.size
        let blobs = try await collectGraph(ref, root: root, platforms: platforms)
        for blob in blobs {
            total += blob.size
            if cache.store.size(of: blob.digest) == blob.size { continue }
            downloaded += try await download(ref, blob)
        }
        try cache.remember(ref, descriptor: root, source: "registry")
        return FetchedImage(ref: ref, root: root, downloaded: downloaded, total: total, note: note)
    }

    /// Manifests (fetched and stored as needed) and then config and layer descriptors.
    func collectGraph(_ ref: Reference, root: Descriptor, platforms: [Platform]?) async throws -> [Descriptor] {
        var out: [Descriptor] = []
        var seen = Set<Digest>([root.digest])
        func manifestBytes(_ d: Descriptor) async throws -> [UInt8] {
            if cache.store.size(of: d.digest) == d.size { return try cache.store.readSmall(d.digest) }
            let bytes = try await registry.manifest(registry: ref.registry, repository: ref.repository, descriptor: d, what: ref.description)
            try cache.store.put(bytes, expected: d.digest)
            return bytes
        }
        func visit(_ d: Descriptor, depth: Int) async throws {
            guard depth < 8 else { throw SeedError(.malformedArchive, "\(ref): indexes nested deeper than 8") }
            let bytes = try await manifestBytes(d)
            switch try ManifestDocument.parse(bytes, descriptorType: d.mediaType, what: "\(ref): manifest \(d.digest)") {
            case .index(let index):
                var matched = 0
                for child in index.manifests {
                    let isAttestation = child.annotations?[Descriptor.Annotation.dockerReferenceType] != nil || (child.platform?.isUnknown ?? false)
                    if isAttestation { continue }
                    if let platforms, !platforms.contains(where: { p in child.platform.map { p.matches($0) } ?? false }) { continue }
                    matched += 1
                    guard seen.insert(child.digest).inserted else { continue }
                    out.append(child)
                    try await visit(child, depth: depth + 1)
                }
                if matched == 0 {
                    throw SeedError(.notFound, "\(ref): no manifest for \(platforms.map { $0.map(\.description).joined(separator: ", ") } ?? "any platform") in its index")
                }
            case .manifest(let m):
                for blob in [m.config] + m.layers where seen.insert(blob.digest).inserted {
                    if blob.urls != nil && blob.mediaType == MediaType.dockerForeignLayer {
                        throw SeedError(.invalidInput, "\(ref): foreign (non-distributable) layer \(blob.digest) is not supported")
                    }
                    out.append(blob)
                }
            }
        }
        try await visit(root, depth: 0)
        return out
    }

    /// Downloads one blob into the cache, verified; retries a broken transfer from the start.
    func download(_ ref: Reference, _ blob: Descriptor) async throws -> Int64 {
        let name = ref.description
        var attempt = 1
        while true {
            let staged = try cache.store.stage()
            do {
                let n = try await registry.blob(registry: ref.registry, repository: ref.repository, digest: blob.digest, what: name) { chunk in
                    try chunk.withUnsafeReadableBytes { try staged.write($0) }
                    self.progress.add(name, bytes: chunk.readableBytes)
                }
                let got = try staged.finish()
                guard got == blob.digest else {
                    throw SeedError(.digestMismatch, "\(name): blob \(blob.digest) from \(ref.registry) hashes to \(got) (corrupted in the registry or in transit)")
                }
                guard n == blob.size else {
                    throw SeedError(.sizeMismatch, "\(name): blob \(blob.digest) has \(n) bytes, its descriptor says \(blob.size)")
                }
                try staged.commit()
                return n
            } catch let e as SeedError where e.code == .io && e.message.contains("broke off") && attempt < 3 {
                staged.discard()
                attempt += 1
                logger.info("retrying blob", metadata: ["image": "\(name)", "blob": "\(blob.digest)"])
            } catch {
                staged.discard()
                throw error
            }
        }
    }

    // MARK: archive sources

    /// `SIZE-MTIME` of a file, or nil if it cannot be read.
    static func fileStamp(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return "\(st.st_size)-\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    func fetchArchive<S: AsyncSequence & Sendable>(_ e: ImageEntry, source: String, stream: S, fileStamp: String? = nil) async throws -> FetchedImage where S.Element == ByteBuffer {
        let name = e.ref.description
        let digest = StreamDigest()
        let hashed = HashingStream(base: stream, digest: digest) { [progress] n in progress.add(name, bytes: n) }
        let contents: ImageArchiveContents
        do {
            contents = try await ImageArchiveReader.read(hashed, into: cache.store)
        } catch let err as SeedError {
            throw SeedError(err.code, "\(name): \(Redact.url(source)): \(err.message)", detail: err.cause ?? "")
        }
        if let want = e.sha256 {
            let got = digest.finalize()
            guard got == want else {
                throw SeedError(.digestMismatch, "\(name): \(Redact.url(source)) has sha256 \(got.hex), but the manifest says \(want.hex)")
            }
        }
        let image: ArchivedImage
        if let named = contents.images.first(where: { $0.names.contains(e.ref) }) {
            image = named
        } else if contents.images.count == 1 {
            image = contents.images[0]
        } else {
            throw SeedError(.notFound, "\(name): \(Redact.url(source)) holds \(contents.images.count) images and none is named \(e.ref)")
        }
        try cache.remember(e.ref, descriptor: image.root, source: source, archiveSHA256: digest.finalize(), fileStamp: fileStamp)
        return FetchedImage(ref: e.ref, root: image.root, downloaded: digest.bytes, total: image.blobs.reduce(0) { $0 + $1.size }, note: nil)
    }

    /// An HTTP(S) body as a stream (redirects followed, at most 5; no credentials are sent).
    func httpStream(_ url: String, what: String) async throws -> HTTPClientResponse.Body {
        var current = url
        for _ in 0..<6 {
            var request = HTTPClientRequest(url: current)
            request.headers.add(name: "User-Agent", value: "seed")
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .seconds(60))
            } catch {
                throw SeedError(.unavailable, "\(what): cannot download \(Redact.url(current))", detail: Redact.error(error))
            }
            switch response.status.code {
            case 200: return response.body
            case 301, 302, 303, 307, 308:
                _ = try? await response.body.collect(upTo: 1 << 20)
                guard let loc = response.headers.first(name: "Location"), let next = RegistryClient.resolveLocation(loc, against: current) else {
                    throw SeedError(.io, "\(what): bad redirect from \(Redact.url(current))")
                }
                if current.hasPrefix("https://") && next.hasPrefix("http://") {
                    throw SeedError(.io, "\(what): refusing a redirect from https to http")
                }
                current = next
            default:
                throw SeedError(response.status.code == 404 ? .notFound : .io, "\(what): \(Redact.url(current)) answered \(response.status.code)")
            }
        }
        throw SeedError(.io, "\(what): too many redirects from \(Redact.url(url))")
    }
}

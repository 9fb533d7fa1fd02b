import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SeedArchive
import SeedOCI
import SeedStore
import SeedWire

/// The agent's request handlers.
final class AgentService: Sendable {
    let config: AgentConfiguration
    let platform: Platform
    let runtime: any ImageRuntime
    let version: String
    let logger: Logger
    let auth: Authenticator
    let metrics = AgentMetrics()
    let locks = NameLocks()
    let gate = ActivityGate()
    let forwarder: Forwarder?

    init(config: AgentConfiguration, platform: Platform, runtime: any ImageRuntime, version: String, logger: Logger, forwarder: Forwarder?) {
        self.forwarder = forwarder
        self.config = config
        self.platform = platform
        self.runtime = runtime
        self.version = version
        self.logger = logger
        self.auth = Authenticator(token: config.token)
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get(.init(Wire.Path.health)) { _, _ in
            jsonResponse(HealthResponse(version: self.version))
        }
        router.get(.init(Wire.Path.inventory)) { _, _ in
            jsonResponse(InventoryResponse(node: self.config.name, platform: self.platform.description, runtime: self.runtime.name,
                                           labels: self.config.labels, images: try await self.runtime.inventory()))
        }
        router.post(.init(Wire.Path.blobsMissing)) { request, _ in
            var request = request
            let body = try await Self.collect(&request, limit: 4 << 20)
            let ask = try StrictJSON.decode(MissingRequest.self, from: body.readableBytesView, what: "request body", limit: 4 << 20)
            return jsonResponse(MissingResponse(missing: try await self.runtime.missing(ask.digests)))
        }
        router.put(.init(Wire.Path.images)) { request, _ in
            try await self.ingest(request)
        }
        router.delete(.init(Wire.Path.images)) { request, _ in
            guard let raw = request.uri.queryParameters.get("ref") else {
                throw SeedError(.invalidInput, "DELETE \(Wire.Path.images) needs ?ref=REFERENCE")
            }
            let ref = try Reference(raw)
            let removed = try await self.locks.withLocks([ref.description]) { try await self.runtime.delete(ref) }
            guard removed else { throw SeedError(.notFound, "no image \(ref) on this node") }
            self.logger.info("deleted", metadata: ["ref": "\(ref)"])
            await self.collectIfIdle()
            return jsonResponse(["deleted": ref.description])
        }
        router.get(.init(Wire.Path.metrics)) { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: self.metrics.registry.emitToBuffer())))
        }
    }

    static func collect(_ request: inout Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.collectBody(upTo: limit)
        } catch let e as HTTPError where e.status == .contentTooLarge {
            throw SeedError(.tooLarge, "request body over \(limit) bytes")
        }
    }

    /// `PUT /v1/images`: stream the archive into the store, verify, load; with a `Seed-Relay`
    /// header, also forward it.
    func ingest(_ request: Request) async throws -> Response {
        if let header = request.headers[RelayPlan.headerName] {
            guard let forwarder else {
                throw SeedError(.forbidden, "this agent does not relay (started with --no-relay)")
            }
            // Without a token or client certificates anyone who can connect could make this
            // agent open connections anywhere.
            guard config.token != nil || config.clientCA != nil else {
                throw SeedError(.forbidden, "this agent relays only with a token or client certificates configured")
            }
            let plan = try RelayPlan.decode(header)
            let only = try plan.load.map { Set(try $0.map { try Reference($0) }) }
            return jsonResponse(await relay(request, plan: plan, only: only, forwarder: forwarder))
        }
        let progress = UploadProgress()
        let body = Coalesced(base: LimitedBody(base: request.body, limit: config.maxBodyBytes, progress: progress))
        let loaded = try await load(body, progress: progress, drain: DrainPolicy(bytes: 64 << 20, seconds: 10), only: nil)
        return jsonResponse(LoadResponse(images: loaded, bytes: progress.bytes))
    }

    /// Reads an archive from `body` into the store, verifies it and loads its images (those
    /// named in `only`, if given).
    func load<Body: AsyncSequence & Sendable>(_ body: Body, progress: UploadProgress, drain: DrainPolicy?, only: Set<Reference>?, idle: Double? = nil) async throws -> [LoadedImage] where Body.Element == ByteBuffer {
        await gate.enter()
        metrics.uploadsInFlight.increment(by: 1)
        var loadedSomething = false
        defer {
            metrics.uploadsInFlight.decrement(by: 1)
            metrics.receivedBytes.increment(by: progress.bytes)
        }
        do {
            let store = try await runtime.ingestStore()
            let options = ImageArchiveOptions(
                limits: TarLimits(maxUncompressedBytes: config.maxUncompressedBytes, maxEntries: config.maxEntries, maxJSONBytes: config.maxJSONBytes),
                platform: platform,
                drainAfterFailure: drain,
                only: only
            )
            let contents = try await withIdleTimeout(progress: progress, timeout: idle ?? config.idleTimeout) {
                try await ImageArchiveReader.read(body, into: store, options: options)
            }
            for image in contents.images where image.names.isEmpty {
                throw SeedError(.invalidInput, "the archive declares no name for image \(image.root.digest); an image is loaded only under the names its archive declares")
            }
            let names = contents.images.flatMap { $0.names.map(\.description) }
            let loaded = try await locks.withLocks(names) { try await self.runtime.load(contents.images) }
            loadedSomething = true
            metrics.imagesLoaded.increment(by: Int64(loaded.count))
            logger.info("loaded", metadata: ["images": "\(loaded.map { "\($0.ref)@\($0.digest.short)" }.joined(separator: " "))", "bytes": "\(progress.bytes)"])
            await leave(collect: true)
            return loaded
        } catch {
            await leave(collect: loadedSomething)
            throw error
        }
    }

    func leave(collect: Bool) async {
        if await gate.leave(wantCollect: collect) {
            await runtime.collectGarbage()
            await gate.collected()
        }
    }

    func collectIfIdle() async {
        if await gate.tryCollectNow() {
            await runtime.collectGarbage()
            await gate.collected()
        }
    }

    /// Runs `body`, failing it if the upload makes no progress for `idleTimeout` seconds.
    func withIdleTimeout<T: Sendable>(progress: UploadProgress, timeout: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                var last = progress.bytes
                var idleSince = ContinuousClock.now
                while true {
                    try await Task.sleep(for: .milliseconds(min(1000, Int(timeout * 250))))
                    let now = progress.bytes
                    if now != last || progress.done {
                        last = now
                        idleSince = .now
                    } else if ContinuousClock.now - idleSince > .milliseconds(Int(timeout * 1000)) {
                        throw SeedError(.cancelled, "upload aborted: no data for \(timeout) seconds")
                    }
                }
            }
            defer { group.cancelAll() }
            while let r = try await group.next() {
                if let r { return r }
            }
            throw SeedError(.internal, "upload ended without a result")
        }
    }
}

/// Byte count and activity of one upload.
final class UploadProgress: Sendable {
    private let state = NIOLockedValueBox<(bytes: Int64, done: Bool)>((0, false))
    var bytes: Int64 { state.withLockedValue { $0.bytes } }
    var done: Bool { state.withLockedValue { $0.done } }
    func add(_ n: Int) { state.withLockedValue { $0.bytes += Int64(n) } }
    func finish() { state.withLockedValue { $0.done = true } }
}

/// A request body that counts its bytes and refuses to go past a limit.
struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int64
    let progress: UploadProgress

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limit: Int64
        let progress: UploadProgress

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await base.next() else {
                progress.finish()
                return nil
            }
            progress.add(chunk.readableBytes)
            if progress.bytes > limit {
                throw SeedError(.tooLarge, "request body over the \(limit)-byte limit")
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), limit: limit, progress: progress)
    }
}

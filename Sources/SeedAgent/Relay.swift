import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import SeedOCI
import SeedWire

extension RelayPlan {
    static let headerName = HTTPField.Name(RelayPlan.header)!
}

/// Sends a relayed archive on to the next agents: an HTTP client with the agent's peer TLS
/// settings. It only ever connects to the URLs of the plan the request carried.
final class Forwarder: Sendable {
    let http: HTTPClient
    let tls: TLSConfiguration?
    let logger: Logger

    init(peerCA: String?, clientCertificate: String?, clientKey: String?, logger: Logger) throws {
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        config.timeout.connect = .seconds(10)
        config.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        if peerCA != nil || clientCertificate != nil {
            var c = TLSConfiguration.makeClientConfiguration()
            if let peerCA { c.trustRoots = .file(peerCA) }
            if let clientCertificate, let clientKey {
                c.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
                c.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
            }
            tls = c
        } else {
            tls = nil
        }
        self.logger = logger
    }

    func shutdown() async {
        try? await http.shutdown()
    }
}

/// One consumer of a relayed body (a forward, or this node's own load): the chunks handed to
/// it one at a time, and how many bytes it has taken.
final class Sink: Sendable {
    let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
    private let state = NIOLockedValueBox<(offered: Int64, taken: Int64, done: Bool)>((0, 0, false))

    var done: Bool { state.withLockedValue { $0.done } }
    var taken: Int64 { state.withLockedValue { $0.taken } }

    /// Hands a chunk over; returns once it was taken, or at once if the consumer has ended.
    func send(_ chunk: ByteBuffer) async {
        guard !done else { return }
        state.withLockedValue { $0.offered += Int64(chunk.readableBytes) }
        await channel.send(chunk)
    }

    /// The consumer is gone: pending and later sends return at once.
    func end(_ error: (any Error)? = nil) {
        state.withLockedValue { $0.done = true }
        if let error { channel.fail(error) } else { channel.finish() }
    }

    /// Returns true when bytes have waited `timeout` seconds without the consumer taking any;
    /// false when cancelled.
    func stalled(timeout: Double) async -> Bool {
        var last = taken
        var since = ContinuousClock.now
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(min(1000, Int(timeout * 250)))) } catch { return false }
            let (offered, taken, done) = state.withLockedValue { ($0.offered, $0.taken, $0.done) }
            if done { return false }
            if taken != last || offered == taken {
                last = taken
                since = .now
            } else if ContinuousClock.now - since > .milliseconds(Int(timeout * 1000)) {
                return true
            }
        }
        return false
    }

    fileprivate func took(_ n: Int) { state.withLockedValue { $0.taken += Int64(n) } }
}

/// One downstream node of a relay: its sink and its request.
final class Forward: Sendable {
    let hop: RelayHop
    let plan: RelayPlan
    let sink = Sink()
    /// Seconds it may take nothing while bytes wait: longer the deeper the tree below it, so a
    /// stall is cut where it is, by the relay nearest to it, not by one further up.
    let stallTimeout: Double

    init(hop: RelayHop, plan: RelayPlan, baseTimeout: Double) {
        self.hop = hop
        self.plan = plan
        self.stallTimeout = baseTimeout * Double(1 + plan.height)
    }

    var done: Bool { sink.done }
    var taken: Int64 { sink.taken }
    func send(_ chunk: ByteBuffer) async { await sink.send(chunk) }

    /// Runs the request and returns the outcomes of this node and of the nodes of its subtree
    /// that reported (anything else a downstream agent claims is dropped). A forward that
    /// takes nothing for `stallTimeout` seconds while bytes wait is cancelled: a stalled node
    /// must not hold up its siblings and the chain above it.
    func run(_ forwarder: Forwarder, authorization: String?) async -> [RelayOutcome] {
        defer { sink.end() }
        let outcomes = await withTaskGroup(of: [RelayOutcome]?.self) { group in
            group.addTask { await self.execute(forwarder, authorization: authorization) }
            group.addTask {
                guard await self.sink.stalled(timeout: self.stallTimeout) else { return nil }
                return [self.failure(.unavailable, "node \(self.hop.name) (\(self.hop.url)) took no data for \(Int(self.stallTimeout)) seconds; relay to it abandoned")]
            }
            var first: [RelayOutcome]? = nil
            while first == nil, let r = await group.next() { first = r }
            group.cancelAll()
            return first ?? [failure(.internal, "relay to \(hop.name) ended without a result")]
        }
        let allowed = Set([hop.name] + plan.hops.map(\.name))
        var seen = Set<String>()
        return outcomes.filter { allowed.contains($0.node) && seen.insert($0.node).inserted }
    }

    func failure(_ code: SeedError.Code, _ message: String) -> RelayOutcome {
        RelayOutcome(node: hop.name, images: [], bytes: taken, error: .init(code: code.rawValue, message: message))
    }

    func execute(_ forwarder: Forwarder, authorization: String?) async -> [RelayOutcome] {
        let url = hop.url.hasSuffix("/") ? String(hop.url.dropLast()) : hop.url
        var request = HTTPClientRequest(url: url + Wire.Path.images)
        request.method = .PUT
        request.headers.add(name: "User-Agent", value: "seed-agent relay")
        request.headers.add(name: "Content-Type", value: Wire.tarContentType)
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        do {
            request.headers.add(name: RelayPlan.header, value: try plan.encoded())
        } catch {
            return [failure(.internal, "cannot encode the relay plan for \(hop.name): \(error)")]
        }
        if url.lowercased().hasPrefix("https:") { request.tlsConfiguration = forwarder.tls }
        request.body = .stream(TakenCounter(sink: sink), length: .unknown)
        do {
            let response = try await forwarder.http.execute(request, timeout: .hours(6))
            let body = try await response.body.collect(upTo: 16 << 20)
            if response.status.code == 200 {
                let r = try JSONDecoder().decode(RelayResponse.self, from: Data(body.readableBytesView))
                return [RelayOutcome(node: hop.name, images: r.images, bytes: r.bytes, error: r.error)] + r.relay
            }
            if let e = try? JSONDecoder().decode(ErrorResponse.self, from: Data(body.readableBytesView)) {
                return [RelayOutcome(node: hop.name, images: [], bytes: taken, error: e.error)]
            }
            let code: SeedError.Code = response.status.code >= 500 ? .unavailable : .io
            return [failure(code, "node \(hop.name) (\(hop.url)) answered HTTP \(response.status.code)")]
        } catch is CancellationError {
            return [failure(.cancelled, "relay to \(hop.name) cancelled")]
        } catch {
            forwarder.logger.warning("relay failed", metadata: ["node": "\(hop.name)", "url": "\(hop.url)", "error": "\(error)"])
            return [failure(.unavailable, "relay to node \(hop.name) (\(hop.url)) failed: \(error)")]
        }
    }
}

/// What a sink's consumer reads: the chunks handed to it, counted as they are taken.
struct TakenCounter: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let sink: Sink

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingChannel<ByteBuffer, any Error>.Iterator
        let sink: Sink
        mutating func next() async throws -> ByteBuffer? {
            guard let b = try await base.next() else { return nil }
            sink.took(b.readableBytes)
            return b
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: sink.channel.makeAsyncIterator(), sink: sink) }
}

/// A byte stream regrouped into buffers of at least `size` bytes (the last may be smaller).
/// Socket reads arrive in pieces of a few KiB; handing each one across tasks and threads, and
/// writing each to the next node, costs far more CPU than copying them together once.
struct Coalesced<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    var size = 256 << 10

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let size: Int
        var done = false

        mutating func next() async throws -> ByteBuffer? {
            guard !done else { return nil }
            var pending: ByteBuffer? = nil
            while let chunk = try await base.next() {
                if pending == nil {
                    if chunk.readableBytes >= size { return chunk }
                    var b = ByteBufferAllocator().buffer(capacity: size + (64 << 10))
                    b.writeImmutableBuffer(chunk)
                    pending = b
                } else {
                    pending!.writeImmutableBuffer(chunk)
                }
                if pending!.readableBytes >= size { return pending }
            }
            done = true
            return pending
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), size: size) }
}

extension AgentService {
    /// A relayed upload: every chunk of the body goes to this node's own load and to each
    /// forward, in turn, each taking it before the next chunk is read (backpressure: the chain
    /// moves at the pace of its slowest live member, with one chunk in flight per member). A
    /// failed or stalled forward, or a failed or stalled local load, drops out and the others
    /// go on.
    func relay(_ request: Request, plan: RelayPlan, only: Set<Reference>?, forwarder: Forwarder) async -> RelayResponse {
        let progress = UploadProgress()
        let local = Sink()
        let base = config.idleTimeout / 2
        let forwards = plan.children().map { Forward(hop: $0.hop, plan: $0.plan, baseTimeout: base) }
        let authorization = request.headers[.authorization]
        logger.info("relay", metadata: ["to": "\(forwards.map(\.hop.name).joined(separator: " "))", "downstream": "\(plan.hops.count)"])
        let localResult = NIOLockedValueBox<Result<[LoadedImage], any Error>?>(nil)
        let outcomes = NIOLockedValueBox<[RelayOutcome]>([])
        // This node's own silence timer must outlast the stall timers of every relay below it:
        // while a stall further down is being cut, this node hears nothing either.
        let idle = config.idleTimeout * Double(1 + plan.height)

        // A local load that cannot keep up (a slow disk, a long garbage collection) must not
        // starve the nodes below: it is dropped, they go on. Cancelled as soon as the load ends.
        let watchdog: Task<Void, Never>? = forwards.isEmpty ? nil : Task {
            if await local.stalled(timeout: base) {
                local.end(SeedError(.cancelled, "this node took no data for \(Int(base)) seconds while relaying; its own load was abandoned so the nodes after it could go on"))
            }
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                defer {
                    local.end()
                    watchdog?.cancel()
                }
                do {
                    // The size limit guards this node's store; bytes it only passes on do not count.
                    let limited = LimitedBody(base: TakenCounter(sink: local), limit: self.config.maxBodyBytes, progress: UploadProgress())
                    let loaded = try await self.load(limited, progress: progress, drain: nil, only: only, idle: idle)
                    localResult.withLockedValue { $0 = .success(loaded) }
                } catch {
                    localResult.withLockedValue { $0 = .failure(error) }
                }
            }
            for f in forwards {
                group.addTask {
                    let o = await f.run(forwarder, authorization: authorization)
                    outcomes.withLockedValue { $0.append(contentsOf: o) }
                }
            }
            do {
                // Counted for the idle timer and the answer; no limit: bytes only passed on do
                // not fill this node's store (its own load has the limit).
                for try await chunk in Coalesced(base: LimitedBody(base: request.body, limit: .max, progress: progress)) {
                    await local.send(chunk)
                    for f in forwards { await f.send(chunk) }
                    if local.done && forwards.allSatisfy(\.done) { break }
                }
                metrics.relayedBytes.increment(by: forwards.reduce(Int64(0)) { $0 + $1.taken })
                local.end()
                for f in forwards { f.sink.end() }
            } catch {
                // The upstream broke off: nothing of this body may look complete downstream.
                local.end(error)
                for f in forwards { f.sink.end(error) }
                group.cancelAll()
            }
            await group.waitForAll()
        }

        var response = RelayResponse(images: [], bytes: progress.bytes, error: nil, relay: outcomes.withLockedValue { $0 })
        switch localResult.withLockedValue({ $0 }) {
        case .success(let loaded)?: response.images = loaded
        case .failure(let error)?:
            let e = (error as? SeedError) ?? SeedError(.internal, "\(error)")
            metrics.failure(e.code.rawValue)
            response.error = .init(code: e.code.rawValue, message: e.description, missing: e.digests.isEmpty ? nil : e.digests)
        case nil:
            response.error = .init(code: SeedError.Code.internal.rawValue, message: "the local load ended without a result")
        }
        for o in response.relay {
            guard let e = o.error else { continue }
            metrics.relayFailures.increment()
            logger.warning("relay: downstream node failed", metadata: ["node": "\(o.node)", "code": "\(e.code)", "error": "\(e.message)"])
        }
        return response
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SeedArchive
import SeedOCI
import SeedWire

/// The coordinator's side of the agent API: an HTTP client, nothing more.
public struct AgentClient: Sendable {
    /// The node's name (from the manifest, or, for a discovered agent, its inventory).
    public var name: String
    /// `http(s)://host:port`.
    public var url: String
    let http: HTTPClient
    let token: String?
    let tls: TLSConfiguration?

    /// Makes a client for one agent.
    public init(name: String, url: String, http: HTTPClient, token: String?, caFile: String?) {
        self.name = name
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.http = http
        self.token = token
        if let caFile {
            var c = TLSConfiguration.makeClientConfiguration()
            c.additionalTrustRoots = [.file(caFile)]
            tls = c
        } else {
            tls = nil
        }
    }

    func request(_ path: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var r = HTTPClientRequest(url: url + path)
        r.method = method
        r.headers.add(name: "User-Agent", value: "seed")
        if let token { r.headers.add(name: "Authorization", value: "Bearer " + token) }
        r.tlsConfiguration = tls
        return r
    }

    func decode<T: Decodable>(_ type: T.Type, _ response: HTTPClientResponse, what: String) async throws -> T {
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200 else {
            let e = try? JSONDecoder().decode(ErrorResponse.self, from: Data(body.readableBytesView))
            let msg = e.map { "\($0.error.code): \($0.error.message)" } ?? "HTTP \(response.status.code)"
            let code: SeedError.Code = switch response.status.code {
            case 401: .unauthorized
            case 403: .forbidden
            case 404: .notFound
            case 409: .missingBlobs
            case 413: .tooLarge
            case 422: .digestMismatch
            case 507: .noSpace
            case 400: .invalidInput
            case 503: .unavailable
            default: response.status.code >= 500 ? .unavailable : .io
            }
            var err = SeedError(code, "node \(name): \(what): \(msg)")
            err.digests = e?.error.missing ?? []
            throw err
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw SeedError(.io, "node \(name): \(what): unexpected answer", cause: error)
        }
    }

    func execute(_ r: HTTPClientRequest, timeout: TimeAmount, what: String) async throws -> HTTPClientResponse {
        do {
            return try await http.execute(r, timeout: timeout)
        } catch let e as SeedError {
            // From our own request body (the archive writer): not the node's fault.
            throw e
        } catch {
            throw SeedError(.unavailable, "node \(name) (\(url)) unreachable: \(what)", cause: error)
        }
    }

    /// `GET /v1/inventory`.
    public func inventory(timeout: TimeAmount = .seconds(20)) async throws -> InventoryResponse {
        try await decode(InventoryResponse.self, try await execute(request(Wire.Path.inventory), timeout: timeout, what: "inventory"), what: "inventory")
    }

    /// `POST /v1/blobs/missing`.
    public func missing(_ digests: [Digest]) async throws -> [Digest] {
        guard !digests.isEmpty else { return [] }
        var r = request(Wire.Path.blobsMissing, method: .POST)
        r.headers.add(name: "Content-Type", value: "application/json")
        r.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(MissingRequest(digests: digests))))
        return try await decode(MissingResponse.self, try await execute(r, timeout: .seconds(60), what: "blobs/missing"), what: "blobs/missing").missing
    }

    /// `PUT /v1/images` with an archive streamed straight into the request body.
    public func put(_ archive: TarStream, onChunk: @escaping @Sendable (Int) -> Void) async throws -> LoadResponse {
        var r = request(Wire.Path.images, method: .PUT)
        r.headers.add(name: "Content-Type", value: Wire.tarContentType)
        r.body = .stream(CountingStream(base: archive, onChunk: onChunk), length: .unknown)
        // The deadline covers the answer's head; the agent answers once the body is loaded.
        return try await decode(LoadResponse.self, try await execute(r, timeout: .hours(6), what: "upload"), what: "upload")
    }
}

extension AgentClient {
    /// `PUT /v1/images` with a `Seed-Relay` plan (nil: a plain push): the node loads the
    /// archive and forwards it as the plan says; the answer carries every node's outcome.
    public func relay(_ archive: TarStream, plan: RelayPlan?, onChunk: @escaping @Sendable (Int) -> Void) async throws -> RelayResponse {
        guard let plan else {
            let r = try await put(archive, onChunk: onChunk)
            return RelayResponse(images: r.images, bytes: r.bytes, error: nil, relay: [])
        }
        var r = request(Wire.Path.images, method: .PUT)
        r.headers.add(name: "Content-Type", value: Wire.tarContentType)
        r.headers.add(name: RelayPlan.header, value: try plan.encoded())
        r.body = .stream(CountingStream(base: archive, onChunk: onChunk), length: .unknown)
        return try await decode(RelayResponse.self, try await execute(r, timeout: .hours(6), what: "relayed upload"), what: "relayed upload")
    }
}

/// Reports each chunk's size as it passes.
struct CountingStream<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let onChunk: @Sendable (Int) -> Void

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let onChunk: @Sendable (Int) -> Void
        mutating func next() async throws -> ByteBuffer? {
            guard let b = try await base.next() else { return nil }
            onChunk(b.readableBytes)
            return b
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), onChunk: onChunk) }
}

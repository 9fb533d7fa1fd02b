import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL
import Prometheus
import SeedArchive
import SeedOCI
import SeedStore
import SeedWire
import ServiceLifecycle

/// The node agent: serves the HTTP API v1 until SIGTERM or SIGINT.
public enum Agent {
    /// Runs the agent. `onListening` gets the bound port once the server accepts connections.
    public static func run(_ config: AgentConfiguration, version: String, logger: Logger, onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        try config.validate()
        raiseOpenFileLimit()
        let platform = config.platform ?? NodePlatform.current()
        let store = try BlobStore(root: config.store, access: .exclusive)
        let runtime: any ImageRuntime
        switch config.runtime {
        case .ociLayout:
            runtime = try OCILayoutRuntime(store: store, platform: platform)
        case .containerd:
            runtime = ContainerdRuntime(store: store, platform: platform, ctr: config.ctr, address: config.containerdAddress,
                                        namespace: config.namespace, snapshotter: config.snapshotter, logger: logger)
            // Fail at start, not at the first push, if containerd cannot be reached.
            _ = try await runtime.inventory()
        }
        let forwarder = config.relay ? try Forwarder(peerCA: config.peerCA ?? config.clientCA, clientCertificate: config.tlsCertificate,
                                                     clientKey: config.tlsKey, logger: logger) : nil
        let service = AgentService(config: config, platform: platform, runtime: runtime, version: version, logger: logger, forwarder: forwarder)
        await service.collectIfIdle()

        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ErrorMiddleware(logger: logger, metrics: service.metrics))
        router.add(middleware: AuthMiddleware(auth: service.auth))
        service.addRoutes(to: router)

        let auth = service.auth
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [ContinueHandler(auth: auth)],
            idleTimeout: .seconds(300)
        ))
        let server: HTTPServerBuilder
        if let cert = config.tlsCertificate, let key = config.tlsKey {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(cert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            )
            if let ca = config.clientCA {
                tls.trustRoots = .file(ca)
                tls.certificateVerification = .noHostnameVerification
            }
            server = try .tls(http1, tlsConfiguration: tls)
        } else {
            server = http1
        }
        let host = config.host.hasPrefix("[") ? String(config.host.dropFirst().dropLast()) : config.host
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: config.port), serverName: "seed-agent"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                logger.info("listening", metadata: ["address": "\(config.host):\(port)", "runtime": "\(runtime.name)", "platform": "\(platform)", "auth": "\(config.token == nil ? "none" : "bearer")", "tls": "\(config.tlsCertificate != nil)"])
                onListening(config.host, port)
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await forwarder?.shutdown()
            throw error
        }
        await forwarder?.shutdown()
        logger.info("stopped")
    }
}

/// Raises the soft limit on open files to the hard limit: many concurrent uploads, each with
/// files being written, and containerd pipes add up.
func raiseOpenFileLimit() {
    var lim = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0, lim.rlim_cur < lim.rlim_max else { return }
    lim.rlim_cur = lim.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
}

/// Bearer-token check, in constant time. The token is never logged or echoed.
struct Authenticator: Sendable {
    let token: [UInt8]?

    init(token: String?) { self.token = token.map { Array($0.utf8) } }

    /// Whether an `Authorization` header value grants access.
    func allows(_ header: String?) -> Bool {
        guard let token else { return true }
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.utf8.dropFirst(7))
        var diff: UInt8 = given.count == token.count ? 0 : 1
        for i in 0..<token.count {
            diff |= token[i] ^ (i < given.count ? given[i] : 0)
        }
        return diff == 0
    }
}

/// Answers `Expect: 100-continue` at once, once the token checks out, so `curl -T` does not
/// wait a second before it sends the body. Without a valid token no 100 is sent: the request
/// gets its 401 and the client never sends the body.
final class ContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let auth: Authenticator

    init(auth: Authenticator) { self.auth = auth }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let request) = unwrapInboundIn(data),
           request.headerFields[.expect]?.lowercased() == "100-continue",
           auth.allows(request.headerFields[.authorization]) {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}

/// Requires the bearer token on everything but `/v1/health`.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let auth: Authenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == Wire.Path.health || auth.allows(request.headers[.authorization]) {
            return try await next(request, context)
        }
        throw SeedError(.unauthorized, "missing or wrong bearer token")
    }
}

/// Turns every error into `{"error": {"code", "message"}}` with its status, and counts requests.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let metrics: AgentMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as SeedError {
            response = jsonResponse(ErrorResponse(code: e.code.rawValue, message: e.description, missing: e.digests.isEmpty ? nil : e.digests), status: .init(code: e.httpStatus))
            if request.method == .put { metrics.failure(e.code.rawValue) }
        } catch let e as HTTPError {
            response = jsonResponse(ErrorResponse(code: "http_\(e.status.code)", message: e.body ?? e.status.reasonPhrase), status: e.status)
        } catch {
            response = jsonResponse(ErrorResponse(code: SeedError.Code.internal.rawValue, message: "\(error)"), status: .internalServerError)
        }
        // An upload refused before its body was read to the end: the rest of the body is not
        // worth reading, so the connection closes after the answer.
        if request.method == .put && response.status.code >= 400 {
            response.headers[.connection] = "close"
        }
        let path = request.uri.path
        metrics.request(method: request.method.rawValue, path: path, status: response.status.code)
        let level: Logger.Level = (request.method == .get || request.method == .post) && response.status.code < 400 ? .debug : .info
        logger.log(level: level, "request", metadata: [
            "method": "\(request.method)", "path": "\(path)", "status": "\(response.status.code)",
            "ms": "\((ContinuousClock.now - start).components.seconds * 1000 + (ContinuousClock.now - start).components.attoseconds / 1_000_000_000_000_000)",
        ])
        return response
    }
}

/// Encodes `value` as a JSON response.
func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? e.encode(value)) ?? Data("{}".utf8)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// The agent's Prometheus metrics.
final class AgentMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let receivedBytes: Counter
    let imagesLoaded: Counter
    let uploadsInFlight: Gauge
    let relayedBytes: Counter
    let relayFailures: Counter

    init() {
        receivedBytes = registry.makeCounter(descriptor: Self.name("received_bytes", "total", "Request body bytes of image uploads."))
        imagesLoaded = registry.makeCounter(descriptor: Self.name("images_loaded", "total", "Image names made visible in the runtime."))
        uploadsInFlight = registry.makeGauge(descriptor: Self.name("uploads", "in_flight", "Image uploads being received."))
        relayedBytes = registry.makeCounter(descriptor: Self.name("relayed_bytes", "total", "Upload bytes forwarded to downstream agents."))
        relayFailures = registry.makeCounter(descriptor: Self.name("relay_failures", "total", "Downstream nodes of relayed uploads that failed or were not reached."))
    }

    /// `seed_agent_<metric>_<unit>`.
    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "seed", subsystem: "agent", metricName: metric, unitName: unit, helpText: help)
    }

    func request(method: String, path: String, status: Int) {
        let known = [Wire.Path.health, Wire.Path.inventory, Wire.Path.blobsMissing, Wire.Path.images, Wire.Path.metrics]
        registry.makeCounter(descriptor: Self.name("requests", "total", "HTTP requests by method, path and status."), labels: [("method", method), ("path", known.contains(path) ? path : "other"), ("status", String(status))]).increment()
    }

    func failure(_ code: String) {
        registry.makeCounter(descriptor: Self.name("upload_failures", "total", "Refused or failed image uploads by error code."), labels: [("code", code)]).increment()
    }
}

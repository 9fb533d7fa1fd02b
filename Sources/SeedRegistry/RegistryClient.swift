import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SeedOCI

/// How to reach one registry.
public struct RegistryOptions: Sendable, Equatable {
    /// Plain HTTP instead of HTTPS.
    public var insecure: Bool
    /// A PEM bundle of CAs to trust for this registry (in addition to the system's).
    public var caFile: String?

    /// Makes options.
    public init(insecure: Bool = false, caFile: String? = nil) {
        self.insecure = insecure
        self.caFile = caFile
    }
}

/// How persistent to be with temporary failures.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included.
    public var attempts: Int = 4
    /// The first back-off; it doubles each time.
    public var baseDelay: Double = 0.5
    /// The longest wait accepted from a `Retry-After` header (a longer one fails the request).
    public var maxRetryAfter: Double = 30

    /// The defaults: 4 attempts, 0.5 s doubling, `Retry-After` up to 30 s.
    public init(attempts: Int = 4, baseDelay: Double = 0.5, maxRetryAfter: Double = 30) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxRetryAfter = maxRetryAfter
    }
}

/// An OCI Distribution API v2 client (https://github.com/opencontainers/distribution-spec):
/// `WWW-Authenticate` challenges, Basic and Bearer tokens with an explicit
/// `repository:NAME:pull` scope cached until they expire, one token refresh on 401, retries
/// only on temporary failures (5xx, 429 honouring `Retry-After`, connection resets; never
/// 403/404), redirects followed without credentials to another host or from HTTPS to HTTP, and
/// every manifest checked against its digest. Secrets never appear in errors or logs.
public final class RegistryClient: Sendable {
    let http: HTTPClient
    let credentials: any CredentialStore
    let options: [String: RegistryOptions]
    let retry: RetryPolicy
    let logger: Logger
    let tokens = TokenCache()

    /// The largest manifest or index accepted.
    public static let maxManifestBytes = StrictJSON.defaultLimit

    /// Makes a client on a shared `HTTPClient` (which must not follow redirects itself).
    public init(http: HTTPClient, credentials: any CredentialStore, options: [String: RegistryOptions] = [:], retry: RetryPolicy = RetryPolicy(), logger: Logger) {
        self.http = http
        self.credentials = credentials
        self.options = options
        self.retry = retry
        self.logger = logger
    }

    /// The `HTTPClient` configuration seed's registry and source clients use: redirects handled
    /// by seed, a connect timeout, and an idle-read timeout for streamed bodies.
    public static func httpConfiguration() -> HTTPClient.Configuration {
        var c = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(15), read: .seconds(60)))
        c.decompression = .disabled
        return c
    }

    // MARK: public operations

    /// Resolves `ref` (by tag or digest) to its manifest or index: the descriptor (digest =
    /// the registry's `Docker-Content-Digest`, checked against the bytes) and the bytes.
    public func resolve(_ ref: Reference) async throws -> (descriptor: Descriptor, bytes: [UInt8]) {
        let what = ref.description
        let target = ref.digest?.string ?? ref.tag ?? "latest"
        let (head, bytes) = try await fetchSmall(registry: ref.registry, repository: ref.repository,
                                                 path: "/v2/\(ref.repository)/manifests/\(target)",
                                                 accept: MediaType.acceptedManifests, what: what)
        let digest = Digest.of(bytes)
        if let want = ref.digest, want != digest {
            throw SeedError(.digestMismatch, "\(what): the registry sent a manifest hashing to \(digest)")
        }
        if let header = head.headers.first(name: "Docker-Content-Digest"), header != digest.string {
            throw SeedError(.digestMismatch, "\(what): the registry's Docker-Content-Digest \(SeedError.quote(header)) does not match the manifest it sent (\(digest))")
        }
        var mediaType = head.headers.first(name: "Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        if !(MediaType.isIndex(mediaType) || MediaType.isManifest(mediaType)) {
            mediaType = (try? StrictJSON.decode(ManifestProbeType.self, from: bytes, what: what))?.mediaType
        }
        // Parsing checks the document is a manifest or index of the type it claims.
        let doc = try ManifestDocument.parse(bytes, descriptorType: mediaType, what: "manifest of \(what)")
        let type: String
        switch doc {
        case .index(let i): type = i.mediaType ?? MediaType.ociIndex
        case .manifest(let m): type = m.mediaType ?? MediaType.ociManifest
        }
        return (Descriptor(mediaType: mediaType ?? type, digest: digest, size: Int64(bytes.count)), bytes)
    }

    /// The digest a reference resolves to, by HEAD (falls back to GET if the registry does not
    /// send `Docker-Content-Digest` on HEAD).
    public func headDigest(_ ref: Reference) async throws -> Digest {
        let target = ref.digest?.string ?? ref.tag ?? "latest"
        let response = try await send(.HEAD, registry: ref.registry, repository: ref.repository,
                                      path: "/v2/\(ref.repository)/manifests/\(target)", accept: MediaType.acceptedManifests, what: ref.description)
        if let h = response.headers.first(name: "Docker-Content-Digest"), let d = try? Digest(h) { return d }
        return try await resolve(ref).descriptor.digest
    }

    /// Fetches a manifest by digest within `repository`, verified.
    public func manifest(registry: String, repository: String, descriptor: Descriptor, what: String) async throws -> [UInt8] {
        let (_, bytes) = try await fetchSmall(registry: registry, repository: repository, path: "/v2/\(repository)/manifests/\(descriptor.digest)",
                                              accept: [descriptor.mediaType] + MediaType.acceptedManifests, what: what)
        guard Digest.of(bytes) == descriptor.digest else {
            throw SeedError(.digestMismatch, "\(what): the registry sent content hashing to \(Digest.of(bytes)) for \(descriptor.digest)")
        }
        return bytes
    }

    /// Streams a blob's bytes to `sink`; returns how many. The caller hashes and checks them
    /// (it owns the staging file).
    public func blob(registry: String, repository: String, digest: Digest, what: String, sink: (ByteBuffer) async throws -> Void) async throws -> Int64 {
        let response = try await send(.GET, registry: registry, repository: repository, path: "/v2/\(repository)/blobs/\(digest)", accept: ["*/*"], what: what)
        var total: Int64 = 0
        do {
            for try await chunk in response.body {
                total += Int64(chunk.readableBytes)
                try await sink(chunk)
            }
        } catch let e as SeedError {
            throw e
        } catch {
            throw SeedError(.io, "\(what): download of \(digest) from \(registry) broke off after \(total) bytes", detail: Redact.error(error))
        }
        return total
    }

    // MARK: plumbing

    func fetchSmall(registry: String, repository: String, path: String, accept: [String], what: String) async throws -> (HTTPClientResponse, [UInt8]) {
        let response = try await send(.GET, registry: registry, repository: repository, path: path, accept: accept, what: what)
        let limit = Self.maxManifestBytes
        if let len = response.headers.first(name: "Content-Length").flatMap(Int.init), len > limit {
            throw SeedError(.tooLarge, "\(what): the manifest is \(len) bytes, over the \(limit)-byte limit")
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw SeedError(.tooLarge, "\(what): the manifest is over the \(limit)-byte limit")
        }
        return (response, Array(body.readableBytesView))
    }

    /// The base URL of a registry: `https://host` (or `http://` when insecure); Docker Hub's
    /// API lives at registry-1.docker.io.
    func base(_ registry: String) -> (scheme: String, host: String) {
        let insecure = options[registry]?.insecure ?? false
        return (insecure ? "http" : "https", registry == Reference.dockerHub ? "registry-1.docker.io" : registry)
    }

    func tls(_ registry: String) throws -> TLSConfiguration? {
        guard let ca = options[registry]?.caFile else { return nil }
        var c = TLSConfiguration.makeClientConfiguration()
        c.additionalTrustRoots = [.file(ca)]
        return c
    }

    /// Sends a request with auth, retries and redirect handling; returns a 2xx response whose
    /// body the caller consumes.
    func send(_ method: HTTPMethod, registry: String, repository: String, path: String, accept: [String], what: String) async throws -> HTTPClientResponse {
        let (scheme, host) = base(registry)
        let origin = "\(scheme)://\(host)"
        var url = origin + path
        var attempt = 1
        var refreshed = false
        var redirects = 0
        let scope = "repository:\(repository):pull"
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers.add(name: "Accept", value: accept.joined(separator: ", "))
            request.headers.add(name: "User-Agent", value: "seed")
            // Credentials only ever go to the registry's own origin.
            let sameOrigin = url.hasPrefix(origin + "/")
            if sameOrigin, let auth = await tokens.get(registry: registry, scope: scope) {
                request.headers.add(name: "Authorization", value: auth)
            }
            if sameOrigin { request.tlsConfiguration = try tls(registry) }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .seconds(60), logger: nil)
            } catch {
                if attempt < retry.attempts && Self.isTemporary(error) {
                    let delay = retry.baseDelay * pow(2, Double(attempt - 1))
                    logger.info("retrying", metadata: ["image": "\(what)", "after": "\(delay)s", "cause": "\(Redact.error(error))"])
                    try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                    attempt += 1
                    continue
                }
                throw SeedError(.unavailable, "\(what): cannot reach \(registry)", detail: Redact.error(error))
            }
            let status = Int(response.status.code)
            switch status {
            case 200..<300:
                return response
            case 401 where sameOrigin && !refreshed:
                refreshed = true
                let header = response.headers.first(name: "WWW-Authenticate")
                _ = try? await response.body.collect(upTo: 1 << 20)
                guard let header else {
                    throw SeedError(.unauthorized, "\(what): \(registry) answered 401 without a WWW-Authenticate challenge")
                }
                try await authenticate(AuthChallenge.parse(header), registry: registry, repository: repository, scope: scope, what: what)
                continue
            case 301, 302, 303, 307, 308:
                _ = try? await response.body.collect(upTo: 1 << 20)
                guard redirects < 5, let location = response.headers.first(name: "Location"), let next = Self.resolveLocation(location, against: url) else {
                    throw SeedError(.io, "\(what): \(registry) sent a bad or endless redirect")
                }
                if url.hasPrefix("https://") && next.hasPrefix("http://") {
                    throw SeedError(.io, "\(what): refusing a redirect from https to http (\(Redact.url(next)))")
                }
                url = next
                redirects += 1
                continue
            case 429, 500, 502, 503, 504:
                let retryAfter = response.headers.first(name: "Retry-After").flatMap(Self.parseRetryAfter)
                let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
                if attempt < retry.attempts {
                    var delay = retry.baseDelay * pow(2, Double(attempt - 1))
                    if let retryAfter {
                        guard retryAfter <= retry.maxRetryAfter else {
                            throw SeedError(.unavailable, "\(what): \(registry) asks to retry after \(String(format: "%.0f", retryAfter)) s, longer than the \(String(format: "%.0f", retry.maxRetryAfter)) s seed waits")
                        }
                        delay = max(retryAfter, 0)
                    }
                    logger.info("retrying", metadata: ["image": "\(what)", "status": "\(status)", "after": "\(delay)s"])
                    try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                    attempt += 1
                    continue
                }
                throw SeedError(.unavailable, "\(what): \(registry) answered \(status) \(Self.registryError(body)) after \(attempt) attempts")
            default:
                let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
                let detail = Self.registryError(body)
                switch status {
                case 401: throw SeedError(.unauthorized, "\(what): authentication to \(registry) failed (401 \(detail)); check the credentials for \(registry)")
                case 403: throw SeedError(.unauthorized, "\(what): access denied by \(registry) (403 \(detail))")
                case 404: throw SeedError(.notFound, "\(what): not found in \(registry) (404 \(detail))")
                default: throw SeedError(.io, "\(what): \(registry) answered \(status) \(detail)")
                }
            }
        }
    }

    /// Obtains and caches the Authorization header a challenge asks for.
    func authenticate(_ challenge: AuthChallenge, registry: String, repository: String, scope: String, what: String) async throws {
        let creds = try credentials.credentials(registry: registry, repository: repository)
        switch challenge.scheme {
        case "basic":
            guard case .basic(let u, let p)? = creds else {
                throw SeedError(.unauthorized, "\(what): \(registry) requires credentials and none are configured for it")
            }
            await tokens.put(registry: registry, scope: scope, header: "Basic " + Data("\(u):\(p)".utf8).base64EncodedString(), expires: .distantFuture)
        case "bearer":
            guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
                  let realmScheme = components.scheme?.lowercased(), components.host != nil else {
                throw SeedError(.unauthorized, "\(what): \(registry) sent a Bearer challenge without a valid realm")
            }
            let registryScheme = base(registry).scheme
            guard realmScheme == "https" || (realmScheme == "http" && registryScheme == "http") else {
                throw SeedError(.unauthorized, "\(what): refusing the token realm \(Redact.url(realm)): credentials for an https registry go only over https")
            }
            var query = components.queryItems ?? []
            if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
            query.append(URLQueryItem(name: "scope", value: scope))
            var request: HTTPClientRequest
            switch creds {
            case .identityToken(_, let token)?:
                components.queryItems = nil
                request = HTTPClientRequest(url: components.string ?? realm)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                var form = URLComponents()
                form.queryItems = [URLQueryItem(name: "grant_type", value: "refresh_token"), URLQueryItem(name: "refresh_token", value: token),
                                   URLQueryItem(name: "client_id", value: "seed")] + query
                request.body = .bytes(ByteBuffer(string: form.percentEncodedQuery ?? ""))
            case .basic(let u, let p)?:
                components.queryItems = query
                request = HTTPClientRequest(url: components.string ?? realm)
                request.headers.add(name: "Authorization", value: "Basic " + Data("\(u):\(p)".utf8).base64EncodedString())
            case nil:
                components.queryItems = query
                request = HTTPClientRequest(url: components.string ?? realm)
            }
            request.headers.add(name: "User-Agent", value: "seed")
            if let host = components.host, host == base(registry).host.split(separator: ":").first.map(String.init) {
                request.tlsConfiguration = try tls(registry)
            }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .seconds(30), logger: nil)
            } catch {
                throw SeedError(.io, "\(what): cannot reach the token service of \(registry)", detail: Redact.error(error))
            }
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status.code == 200 else {
                if response.status.code == 401 || response.status.code == 403 {
                    throw SeedError(.unauthorized, "\(what): the token service of \(registry) refused the credentials (\(response.status.code))")
                }
                throw SeedError(.io, "\(what): the token service of \(registry) answered \(response.status.code)")
            }
            struct TokenReply: Decodable { var token: String?; var access_token: String?; var expires_in: Int? }
            guard let reply = try? JSONDecoder().decode(TokenReply.self, from: Data(body.readableBytesView)),
                  let token = reply.token ?? reply.access_token, !token.isEmpty else {
                throw SeedError(.unauthorized, "\(what): the token service of \(registry) sent no token")
            }
            let lifetime = Double(max(reply.expires_in ?? 60, 60))
            await tokens.put(registry: registry, scope: scope, header: "Bearer " + token, expires: Date().addingTimeInterval(lifetime - 10))
        default:
            throw SeedError(.unauthorized, "\(what): \(registry) asks for unsupported authentication \(SeedError.quote(challenge.scheme))")
        }
    }

    /// Resolves a redirect's `Location` against the request URL; nil unless the result is an
    /// http or https URL.
    public static func resolveLocation(_ location: String, against url: String) -> String? {
        guard let base = URL(string: url), let next = URL(string: location, relativeTo: base)?.absoluteURL,
              let scheme = next.scheme?.lowercased(), scheme == "https" || scheme == "http" else { return nil }
        return next.absoluteString
    }

    /// `Retry-After` as seconds: an integer, or an HTTP date.
    static func parseRetryAfter(_ value: String) -> Double? {
        let v = value.trimmingCharacters(in: .whitespaces)
        if !v.isEmpty, v.allSatisfy(\.isASCII), v.allSatisfy(\.isNumber), let s = Double(v), s.isFinite { return s }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let d = f.date(from: v) else { return nil }
        return max(0, d.timeIntervalSinceNow)
    }

    /// The registry's `{"errors":[{"code","message"}]}`, shortened; never echoes headers.
    static func registryError(_ body: String) -> String {
        struct Errors: Decodable { struct E: Decodable { var code: String?; var message: String? }; var errors: [E]? }
        guard let e = try? JSONDecoder().decode(Errors.self, from: Data(body.utf8)), let first = e.errors?.first else { return "" }
        return [first.code, first.message].compactMap { $0 }.joined(separator: ": ")
    }

    static func isTemporary(_ error: any Error) -> Bool {
        if let e = error as? HTTPClientError {
            return [HTTPClientError.remoteConnectionClosed, .readTimeout, .connectTimeout, .deadlineExceeded].contains(e)
        }
        if error is NIOConnectionError { return true }
        if let e = error as? IOError { return [ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT].contains(e.errnoCode) }
        if let e = error as? ChannelError { return e == .ioOnClosedChannel || e == .eof }
        return false
    }
}

/// Peeks at a document's own media type.
struct ManifestProbeType: Decodable { var mediaType: String? }

/// Cached Authorization headers per registry and scope.
actor TokenCache {
    private var entries: [String: (header: String, expires: Date)] = [:]

    func get(registry: String, scope: String) -> String? {
        guard let e = entries[registry + " " + scope], e.expires > Date() else { return nil }
        return e.header
    }

    func put(registry: String, scope: String, header: String, expires: Date) {
        entries[registry + " " + scope] = (header, expires)
    }
}

/// Keeps secrets out of messages.
public enum Redact {
    /// A URL without user info or query (tokens and signatures live there).
    public static func url(_ s: String) -> String {
        guard var c = URLComponents(string: s) else { return "(url)" }
        c.user = nil
        c.password = nil
        c.query = nil
        return c.string ?? "(url)"
    }

    /// An error's description with URLs redacted.
    public static func error(_ e: any Error) -> String {
        let text = String(describing: e)
        guard let regex = try? NSRegularExpression(pattern: #"https?://[^\s"']+"#) else { return text }
        var out = text
        for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).reversed() {
            if let r = Range(m.range, in: out) { out.replaceSubrange(r, with: url(String(out[r]))) }
        }
        return out
    }
}

import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
private let sockStream = Int32(SOCK_STREAM.rawValue)
#elseif canImport(Musl)
import Musl
private let sockStream = SOCK_STREAM
#else
import Darwin
private let sockStream = SOCK_STREAM
#endif

/// A port on 127.0.0.1 that was free a moment ago: binds a socket to port 0, reads the port the
/// kernel chose and closes the socket. Another process may take it before the caller binds it, so
/// callers retry with a fresh port when their bind fails.
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, sockStream, 0)
    guard fd >= 0 else { throw SupportError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    return try bindLoopback(fd)
}

/// Binds `fd` to 127.0.0.1:0 and returns the port chosen.
private func bindLoopback(_ fd: Int32) throws -> Int {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SupportError("bind(127.0.0.1:0) failed: errno \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard named == 0 else { throw SupportError("getsockname failed: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A Docker token server (the "token" auth of the CNCF registry, as Docker Hub and Harbor do it)
/// for tests: `GET /token?service=S&scope=repository:NAME:pull,push` (or the OAuth2 form `POST`)
/// answers `{"token", "access_token", "expires_in", "issued_at"}` with an ES256 JWT signed by an
/// EC P-256 key whose self-signed certificate is in the JWT's `x5c` header; the registry trusts it
/// through `auth.token.rootcertbundle`.
///
/// Basic credentials of the configured user get every action they ask for on any resource; wrong
/// credentials get 401; a request without credentials gets a token with an empty access list, so
/// the registry refuses anonymous pulls and pushes (401 `insufficient_scope`).
///
/// It serves HTTP/1.1 on its own threads with plain sockets (one request per connection), not on
/// Swift's cooperative pool: tests block pool threads while skopeo or the client under test asks
/// for tokens, and a 2-CPU machine has only two of them.
public final class TokenIssuer: @unchecked Sendable {
    /// One request the issuer answered.
    public struct Request: Sendable {
        /// `GET` or `POST`.
        public var method: String
        /// The user of the Basic credentials (or of the POST form), nil when anonymous.
        public var user: String?
        /// The `scope` parameters, in order.
        public var scopes: [String]
        /// The `service` parameter.
        public var service: String?
        /// The status answered.
        public var status: Int
    }

    /// The user granted everything.
    public let user: String
    /// Its password.
    public let password: String
    /// The `service` (the JWT audience); the registry's `auth.token.service`.
    public let service: String
    /// The `iss` claim; the registry's `auth.token.issuer`.
    public let issuer: String
    /// Path of the PEM certificate the registry trusts (`auth.token.rootcertbundle`).
    public let certificatePath: String
    /// Its port on 127.0.0.1.
    public let port: Int
    /// The token endpoint, `http://127.0.0.1:PORT/token` (the registry's `auth.token.realm`).
    public var realm: String { "http://127.0.0.1:\(port)/token" }

    private let key: P256.Signing.PrivateKey
    private let certificateDER: String
    private let listenFD: Int32
    private let lock = NSLock()
    private var _requests: [Request] = []
    private var _expiresIn = 300
    private var stopping = false
    private let stopped = DispatchSemaphore(value: 0)

    /// Makes an EC P-256 key and a self-signed certificate with openssl in `dir` and starts serving
    /// on 127.0.0.1 at a port chosen by the kernel.
    public init(dir: String, user: String, password: String, service: String = "seed-test-registry", issuer: String = "seed-test-issuer") throws {
        self.user = user
        self.password = password
        self.service = service
        self.issuer = issuer
        let keyPath = dir + "/token-key.pem"
        certificatePath = dir + "/token-cert.pem"
        let openssl = try tool("openssl")
        try run([openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyPath])
        try run([openssl, "req", "-x509", "-new", "-key", keyPath, "-out", certificatePath, "-days", "30", "-subj", "/CN=seed-test-token-issuer"])
        key = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: keyPath, encoding: .utf8))
        // The base64 body of the PEM is the base64 of the DER, which is what x5c holds.
        certificateDER = try String(contentsOfFile: certificatePath, encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()

        let fd = socket(AF_INET, sockStream, 0)
        guard fd >= 0 else { throw SupportError("socket() failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            port = try bindLoopback(fd)
            guard listen(fd, 64) == 0 else { throw SupportError("listen failed: errno \(errno)") }
        } catch {
            close(fd)
            throw error
        }
        listenFD = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "seed-token-issuer"
        thread.start()
    }

    /// Every request answered so far.
    public var requests: [Request] { lock.withLock { _requests } }

    /// How many requests the issuer answered (including refusals).
    public var requestCount: Int { lock.withLock { _requests.count } }

    /// `expires_in` of the tokens issued from now on, in seconds (also their `exp` claim).
    public var expiresIn: Int {
        get { lock.withLock { _expiresIn } }
        set { lock.withLock { _expiresIn = newValue } }
    }

    /// Mints a token directly (no HTTP request, not counted) for `subject`, granting `access`:
    /// entries `(type, name, actions)` such as `("repository", "team/api", ["pull"])`.
    public func mint(subject: String, access: [(type: String, name: String, actions: [String])]) throws -> String {
        let header: [String: Any] = ["typ": "JWT", "alg": "ES256", "x5c": [certificateDER]]
        let now = Int(Date().timeIntervalSince1970)
        let claims: [String: Any] = [
            "iss": issuer, "sub": subject, "aud": service,
            "exp": now + expiresIn, "nbf": now - 10, "iat": now,
            "jti": UUID().uuidString,
            "access": access.map { ["type": $0.type, "name": $0.name, "actions": $0.actions] as [String: Any] },
        ]
        let opts: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        let signingInput = Self.base64url(try JSONSerialization.data(withJSONObject: header, options: opts)) + "."
            + Self.base64url(try JSONSerialization.data(withJSONObject: claims, options: opts))
        let signature = try key.signature(for: Data(signingInput.utf8))
        return signingInput + "." + Self.base64url(signature.rawRepresentation)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    public func stop() {
        let wait: Bool = lock.withLock {
            if stopping { return false }
            stopping = true
            return true
        }
        if wait { stopped.wait() }
    }

    deinit { stop() }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private func acceptLoop() {
        while !lock.withLock({ stopping }) {
            var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let conn = accept(listenFD, nil, nil)
            guard conn >= 0 else { continue }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let t = Thread { [self] in
                serve(conn)
                close(conn)
            }
            t.start()
        }
        close(listenFD)
        stopped.signal()
    }

    /// Reads one request from `fd`, answers it.
    private func serve(_ fd: Int32) {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { return }
            buffer += chunk[0..<n]
            if let r = Self.find(terminator, in: buffer) { headerEnd = r }
            if buffer.count > 64 << 10 { return }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ").map(String.init)
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(buffer[(headerEnd! + 4)...])
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while body.count < length {
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { return }
            body += chunk[0..<n]
        }
        let (status, extraHeaders, responseBody) = answer(method: requestLine[0], target: requestLine[1], headers: headers, body: Array(body.prefix(length)))
        let reason = [200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"][status] ?? "Status"
        var response = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\nContent-Length: \(responseBody.count)\r\nConnection: close\r\n"
        for (k, v) in extraHeaders { response += "\(k): \(v)\r\n" }
        response += "\r\n"
        var bytes = Array(response.utf8) + responseBody
        while !bytes.isEmpty {
            let n = write(fd, bytes, bytes.count)
            guard n > 0 else { return }
            bytes.removeFirst(n)
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// Decodes `application/x-www-form-urlencoded` or a query string into ordered pairs.
    private static func form(_ s: Substring) -> [(String, String)] {
        s.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0) }
            return (kv[0], kv.count > 1 ? kv[1] : "")
        }
    }

    private func answer(method: String, target: String, headers: [String: String], body: [UInt8]) -> (Int, [(String, String)], [UInt8]) {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        var params = target.contains("?") ? Self.form(target.split(separator: "?", maxSplits: 1)[1]) : []
        var record = Request(method: method, user: nil, scopes: [], service: nil, status: 0)
        func finish(_ status: Int, _ extra: [(String, String)] = [], _ json: [String: Any]) -> (Int, [(String, String)], [UInt8]) {
            record.status = status
            lock.withLock { _requests.append(record) }
            let data = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return (status, extra, Array(data))
        }
        guard path == "/token" else { return finish(404, [], ["errors": [["code": "NOT_FOUND", "message": "no such endpoint"]]]) }
        // The OAuth2 password grant (POST form) or the classic GET with Basic credentials.
        var credentials: (String, String)?
        if method == "POST" {
            params += Self.form(Substring(String(decoding: body, as: UTF8.self)))
            let p = Dictionary(params, uniquingKeysWith: { a, _ in a })
            if p["grant_type"] == "password", let u = p["username"] { credentials = (u, p["password"] ?? "") }
        } else if method != "GET" {
            return finish(405, [], ["errors": [["code": "UNSUPPORTED", "message": "method not allowed"]]])
        }
        if let auth = headers["authorization"], auth.lowercased().hasPrefix("basic ") {
            guard let decoded = Data(base64Encoded: String(auth.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                  let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else {
                return finish(400, [], ["errors": [["code": "BAD_REQUEST", "message": "malformed Basic credentials"]]])
            }
            credentials = (String(text[..<colon]), String(text[text.index(after: colon)...]))
        }
        record.user = credentials?.0
        record.scopes = params.filter { $0.0 == "scope" }.flatMap { $0.1.split(separator: " ").map(String.init) }
        record.service = params.first { $0.0 == "service" }?.1
        if let (u, p) = credentials, u != user || p != password {
            return finish(401, [("WWW-Authenticate", "Basic realm=\"seed-test-issuer\"")], ["errors": [["code": "UNAUTHORIZED", "message": "invalid username or password"]]])
        }
        var access: [(type: String, name: String, actions: [String])] = []
        if credentials != nil {
            for scope in record.scopes {
                // type:name:actions, where only the name may contain colons (a registry with a port).
                guard let first = scope.firstIndex(of: ":"), let last = scope.lastIndex(of: ":"), first < last else { continue }
                let type = String(scope[..<first])
                let name = String(scope[scope.index(after: first)..<last])
                let actions = scope[scope.index(after: last)...].split(separator: ",").map(String.init)
                access.append((type, name, actions))
            }
        }
        let token: String
        do {
            token = try mint(subject: credentials?.0 ?? "", access: access)
        } catch {
            return finish(500, [], ["errors": [["code": "INTERNAL", "message": "\(error)"]]])
        }
        let issued = ISO8601DateFormatter().string(from: Date())
        return finish(200, [], ["token": token, "access_token": token, "expires_in": expiresIn, "issued_at": issued])
    }
}

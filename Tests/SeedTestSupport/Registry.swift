import Foundation

/// The real CNCF registry (Debian `docker-registry`, distribution 2.8) started for a test on
/// 127.0.0.1 with filesystem storage in a temp dir, and stopped by its PID.
///
/// Three kinds of authentication, as real registries do it:
/// - `.none`: anyone may pull and push;
/// - `.htpasswd`: HTTP Basic, checked against a bcrypt file made by `htpasswd -Bbn`;
/// - `.token`: the Docker token protocol; the registry answers 401 with
///   `WWW-Authenticate: Bearer realm=…,service=…,scope=…` and trusts JWTs from an in-process
///   ``TokenIssuer`` (ES256, certificate in `x5c`, rooted in `auth.token.rootcertbundle`).
///
/// Use it for end-to-end tests of the registry client: push images made with
/// ``ImageFactory/make(layout:tag:platforms:layers:salt:)`` with ``push(layout:tag:to:reference:all:)``,
/// compare with ``digest(of:reference:)``, corrupt stored blobs through ``blobDataPath(_:)``.
public final class RegistryProcess: @unchecked Sendable {
    /// How clients must authenticate.
    public enum Auth: Sendable {
        /// No authentication at all.
        case none
        /// HTTP Basic against a bcrypt htpasswd file holding this one user.
        case htpasswd(user: String, password: String)
        /// Bearer tokens from a token issuer that grants this user everything it asks for, and
        /// anonymous clients nothing.
        case token(user: String, password: String)

        /// The user and password, if any.
        public var credentials: (user: String, password: String)? {
            switch self {
            case .none: return nil
            case let .htpasswd(user, password), let .token(user, password): return (user, password)
            }
        }
    }

    /// A response to ``request(_:_:repository:actions:accept:anonymous:)``.
    public struct HTTPResponse: Sendable {
        /// HTTP status.
        public var status: Int
        /// Header fields, names lowercased (the last one wins when repeated).
        public var headers: [String: String]
        /// Body as text (empty for HEAD).
        public var body: String
    }

    /// The manifest media types a client accepts: OCI manifest and index, Docker schema 2
    /// manifest and manifest list. (registry 2.8 answers 404 `MANIFEST_UNKNOWN` for an OCI
    /// manifest or index whose type is not accepted.)
    public static let manifestTypes = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]

    /// The authentication configured.
    public let auth: Auth
    /// `127.0.0.1:PORT`.
    public let host: String
    /// The port on 127.0.0.1.
    public let port: Int
    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://" + host }
    /// The temp dir holding config, log, storage, htpasswd file, token key and certificate.
    public let dir: TempDir
    /// The token issuer, in `.token` mode.
    public let tokenIssuer: TokenIssuer?
    /// The registry process.
    public let process: Process

    private let lock = NSLock()
    private var stopped = false

    /// The filesystem storage root (`storage.filesystem.rootdirectory`); blobs live under
    /// `docker/registry/v2/blobs`, repositories under `docker/registry/v2/repositories`.
    public var storageRoot: String { dir.sub("storage") }

    /// The registry's config file.
    public var configPath: String { dir.sub("config.yml") }

    /// The registry's stdout and stderr.
    public var logPath: String { dir.sub("registry.log") }

    /// The registry's log so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// `user:password` for skopeo's `--creds`/`--src-creds`/`--dest-creds`, nil in `.none` mode.
    public var credentials: String? { auth.credentials.map { "\($0.user):\($0.password)" } }

    /// The token realm (`http://127.0.0.1:PORT/token`), in `.token` mode.
    public var tokenRealm: String? { tokenIssuer?.realm }

    /// The token `service` the registry announces, in `.token` mode.
    public var tokenService: String? { tokenIssuer?.service }

    /// How many requests the token issuer answered (0 when there is none), refusals included.
    public var tokenRequests: Int { tokenIssuer?.requestCount ?? 0 }

    /// The token issuer's requests (user, scopes, status), in order.
    public var tokenRequestLog: [TokenIssuer.Request] { tokenIssuer?.requests ?? [] }

    /// Starts `docker-registry serve CONFIG` on 127.0.0.1 at a free port (retrying with another
    /// port if it was taken meanwhile) and waits until `/v2/` answers as a registry. A registry
    /// that exits or does not answer within 30 s is an error carrying its log.
    public init(auth: Auth) throws {
        self.auth = auth
        let dir = try TempDir("seed-registry")
        var issuer: TokenIssuer?
        do {
            let binary = try tool("docker-registry")
            var authYAML = ""
            switch auth {
            case .none:
                break
            case let .htpasswd(user, password):
                let entry = try run([try tool("htpasswd"), "-Bbn", user, password]).stdout
                try entry.write(toFile: dir.sub("htpasswd"), atomically: true, encoding: .utf8)
                authYAML = """
                    auth:
                      htpasswd:
                        realm: seed-test-registry
                        path: \(Self.quote(dir.sub("htpasswd")))

                    """
            case let .token(user, password):
                let i = try TokenIssuer(dir: dir.path, user: user, password: password)
                issuer = i
                authYAML = """
                    auth:
                      token:
                        realm: \(Self.quote(i.realm))
                        service: \(Self.quote(i.service))
                        issuer: \(Self.quote(i.issuer))
                        rootcertbundle: \(Self.quote(i.certificatePath))

                    """
            }
            try FileManager.default.createDirectory(atPath: dir.sub("storage"), withIntermediateDirectories: true)
            // REGISTRY_* variables override the config file; the registry must see only ours.
            let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("REGISTRY_") }
            var attempt = 0
            var started: (Process, Int)?
            while started == nil {
                attempt += 1
                let port = try freeLoopbackPort()
                let config = """
                    version: 0.1
                    log:
                      level: warn
                      formatter: text
                      accesslog:
                        disabled: true
                    storage:
                      filesystem:
                        rootdirectory: \(Self.quote(dir.sub("storage")))
                      delete:
                        enabled: true
                      maintenance:
                        uploadpurging:
                          enabled: false
                    http:
                      addr: "127.0.0.1:\(port)"
                      secret: \(Self.quote(UUID().uuidString))
                    health:
                      storagedriver:
                        enabled: false
                    \(authYAML)
                    """
                try config.write(toFile: dir.sub("config.yml"), atomically: true, encoding: .utf8)
                _ = FileManager.default.createFile(atPath: dir.sub("registry.log"), contents: nil)
                let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.sub("registry.log")))
                let p = Process()
                p.executableURL = URL(fileURLWithPath: binary)
                p.arguments = ["serve", dir.sub("config.yml")]
                p.environment = environment
                p.standardInput = FileHandle.nullDevice
                p.standardOutput = logHandle
                p.standardError = logHandle
                try p.run()
                try? logHandle.close()
                let deadline = Date().addingTimeInterval(30)
                while true {
                    let logText = { (try? String(contentsOfFile: dir.sub("registry.log"), encoding: .utf8)) ?? "" }
                    if !p.isRunning {
                        p.waitUntilExit()
                        let text = logText()
                        if attempt < 5 && text.contains("address already in use") { break }
                        throw SupportError("docker-registry exited \(p.terminationStatus) at start:\n\(text)")
                    }
                    // The version header tells the registry from whatever else took the port.
                    if let r = try? Self.curl(["-i", "--max-time", "2", "http://127.0.0.1:\(port)/v2/"]),
                       r.status != 0, r.headers["docker-distribution-api-version"] == "registry/2.0", p.isRunning {
                        started = (p, port)
                        break
                    }
                    if Date() > deadline {
                        Self.terminate(p)
                        throw SupportError("docker-registry did not answer on 127.0.0.1:\(port)/v2/ within 30 s:\n\(logText())")
                    }
                    usleep(50_000)
                }
            }
            process = started!.0
            port = started!.1
            host = "127.0.0.1:\(port)"
            self.dir = dir
            tokenIssuer = issuer
        } catch {
            issuer?.stop()
            dir.remove()
            throw error
        }
    }

    /// The path of a blob's data file in the storage
    /// (`docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data`); `digest` is `sha256:<hex>` or the
    /// bare hex. Overwrite it to make the registry serve corrupted content.
    public func blobDataPath(_ digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? String(digest.dropFirst(7)) : digest
        return "\(storageRoot)/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    /// Pushes `oci:LAYOUT:TAG` to `docker://HOST/REPOSITORY:REFERENCE` (or `@REFERENCE` for a
    /// digest) with skopeo, plain HTTP, this registry's credentials and `--preserve-digests` (so
    /// the pushed digests are the layout's: skopeo would otherwise gzip uncompressed layers).
    /// `all` copies every platform of an index (`--all`); without it skopeo pushes only the
    /// host's platform.
    public func push(layout: String, tag: String, to repository: String, reference: String, all: Bool = false) throws {
        var args = ["copy", "--dest-tls-verify=false", "--preserve-digests", "--retry-times", "0"]
        if all { args.append("--all") }
        if let credentials { args += ["--dest-creds", credentials] } else { args.append("--dest-no-creds") }
        args += ["oci:\(layout):\(tag)", "docker://\(host)/\(repository)\(Self.separator(reference))\(reference)"]
        try skopeo(args)
    }

    /// The `Docker-Content-Digest` of `repository:reference` (a tag or a digest), from an
    /// authenticated `HEAD /v2/<repository>/manifests/<reference>` accepting ``manifestTypes``.
    public func digest(of repository: String, reference: String) throws -> String {
        let r = try request("HEAD", "/v2/\(repository)/manifests/\(reference)", repository: repository)
        guard r.status == 200, let digest = r.headers["docker-content-digest"] else {
            throw SupportError("HEAD \(repository):\(reference) answered \(r.status) \(r.headers): \(r.body)")
        }
        return digest
    }

    /// The `Authorization` header value this registry's user would send for `actions` on
    /// `repository`: `Basic …` (htpasswd), `Bearer <JWT>` minted directly by the issuer without
    /// a token request (token), nil (none).
    public func authorization(repository: String?, actions: [String] = ["pull"]) throws -> String? {
        switch auth {
        case .none:
            return nil
        case let .htpasswd(user, password):
            return "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        case let .token(user, _):
            let access = repository.map { [(type: "repository", name: $0, actions: actions)] } ?? []
            return "Bearer " + (try tokenIssuer!.mint(subject: user, access: access))
        }
    }

    /// An HTTP request to this registry with curl: `path` like `/v2/team/api/manifests/1.0`,
    /// authenticated as the configured user for `actions` on `repository` unless `anonymous`,
    /// with `Accept: accept` (comma-joined) when not empty.
    public func request(_ method: String = "GET", _ path: String, repository: String? = nil, actions: [String] = ["pull"], accept: [String] = RegistryProcess.manifestTypes, anonymous: Bool = false) throws -> HTTPResponse {
        var args = method == "HEAD" ? ["-I"] : ["-i", "-X", method]
        if !accept.isEmpty { args += ["-H", "Accept: " + accept.joined(separator: ", ")] }
        if !anonymous, let value = try authorization(repository: repository, actions: actions) {
            args += ["-H", "Authorization: " + value]
        }
        args.append(url + path)
        return try Self.curl(args)
    }

    /// SIGTERM to the registry by its PID, waits for it to exit (SIGKILL after 10 s), stops the
    /// token issuer and removes the temp dir. Safe to call twice.
    public func stop() {
        let first: Bool = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        Self.terminate(process)
        tokenIssuer?.stop()
        dir.remove()
    }

    deinit { stop() }

    /// SIGTERM by PID, then SIGKILL if it is still running after 10 s; waits for the exit.
    private static func terminate(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    private static func separator(_ reference: String) -> String {
        reference.contains(":") ? "@" : ":"
    }

    /// A YAML double-quoted scalar (the JSON string syntax, which YAML accepts).
    private static func quote(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Runs curl with `args` (which must include `-i` or `-I`); status 0 when nothing answered.
    static func curl(_ args: [String]) throws -> HTTPResponse {
        let r = try run([try tool("curl"), "-sS", "-w", "\n%{http_code}"] + args, check: false)
        guard let nl = r.stdout.lastIndex(of: "\n"), let status = Int(r.stdout[r.stdout.index(after: nl)...]) else {
            throw SupportError("curl failed: \(r.stderr)")
        }
        let text = String(r.stdout[..<nl])
        var headers: [String: String] = [:]
        var body = ""
        if let end = text.range(of: "\r\n\r\n") {
            for line in text[..<end.lowerBound].components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            body = String(text[end.upperBound...])
        }
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}

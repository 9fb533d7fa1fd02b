import Foundation

/// A `seed agent` started for a test, stopped by its PID.
public final class AgentProcess: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Its port on 127.0.0.1.
    public let port: Int
    /// Its store.
    public let store: String
    /// Where its stderr goes.
    public let logPath: String
    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts `seed agent --listen 127.0.0.1:0 --store STORE ARGS...` and waits until it listens.
    public init(store: String, log: String, args: [String] = []) throws {
        self.store = store
        self.logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try seedBinary())
        p.arguments = ["agent", "--listen", "127.0.0.1:0", "--store", store, "--log-level", "debug"] + args
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardError = handle
        p.standardOutput = handle
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(30)
        while true {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: #"address=127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[r].split(separator: ":").last!)!
                break
            }
            guard p.isRunning else { throw SupportError("seed agent exited \(p.terminationStatus): \(text)") }
            guard Date() < deadline else {
                p.terminate()
                throw SupportError("seed agent did not start listening: \(text)")
            }
            usleep(50_000)
        }
    }

    /// The agent's log so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then waits; returns the exit status.
    @discardableResult
    public func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL, then waits.
    public func killHard() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// A private containerd: its own root, state and sockets under a temp dir; never the host's.
public final class ContainerdProcess: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Its temp dir.
    public let dir: TempDir
    /// The gRPC socket.
    public var address: String { dir.sub("c.sock") }
    /// The namespace tests use.
    public let namespace = "k8s.io"

    /// Starts containerd with the native snapshotter (works in any container) and CRI disabled.
    public init() throws {
        let containerd = try tool("containerd")
        _ = try tool("ctr")
        dir = try TempDir("seed-ctd")
        let config = """
            version = 2
            root = "\(dir.sub("root"))"
            state = "\(dir.sub("state"))"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.overlayfs"]
            [grpc]
              address = "\(dir.sub("c.sock"))"
            [ttrpc]
              address = "\(dir.sub("t.sock"))"
            [debug]
              address = "\(dir.sub("d.sock"))"
            [plugins."io.containerd.monitor.v1.cgroups"]
              no_prometheus = true
            """
        try config.write(toFile: dir.sub("config.toml"), atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: containerd)
        p.arguments = ["--config", dir.sub("config.toml")]
        _ = FileManager.default.createFile(atPath: dir.sub("containerd.log"), contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.sub("containerd.log")))
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(30)
        while (try? ctr(["version"])) == nil {
            guard p.isRunning, Date() < deadline else {
                let text = (try? String(contentsOfFile: dir.sub("containerd.log"), encoding: .utf8)) ?? ""
                p.terminate()
                throw SupportError("containerd did not start: \(text)")
            }
            usleep(100_000)
        }
    }

    /// Runs ctr against this containerd; returns stdout.
    @discardableResult
    public func ctr(_ args: [String], check: Bool = true) throws -> String {
        try run([try tool("ctr"), "--address=\(address)", "--namespace=\(namespace)"] + args, check: check).stdout
    }

    /// `ctr images ls` as ref → (digest, labels).
    public func images() throws -> [String: (digest: String, labels: String)] {
        var out: [String: (String, String)] = [:]
        for line in try ctr(["images", "ls"]).split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if f.count >= 3 { out[f[0]] = (f[2], f.last ?? "") }
        }
        return out
    }

    /// `ctr images check --snapshotter native` as ref → status word.
    public func check() throws -> [String: String] {
        var out: [String: String] = [:]
        for line in try ctr(["images", "check", "--snapshotter", "native"]).split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            if f.count >= 4 { out[f[0]] = f[3] }
        }
        return out
    }

    /// Stops containerd by its PID and removes its directory.
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        dir.remove()
    }

    deinit { stop() }
}

/// curl, for HTTP requests in tests (a real client, as users run it).
public struct Curl {
    /// The status code and body of a request.
    public struct Response: Sendable {
        /// HTTP status.
        public var status: Int
        /// Body as text.
        public var body: String
        /// Parses the body as JSON.
        public func json() throws -> [String: Any] {
            guard let o = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw SupportError("not a JSON object: \(body)")
            }
            return o
        }
    }

    /// Runs curl with `args` (plus silent mode and a status trailer).
    public static func request(_ args: [String]) throws -> Response {
        let r = try run([try tool("curl"), "-sS", "-w", "\n%{http_code}"] + args, check: false)
        guard let nl = r.stdout.lastIndex(of: "\n"), let status = Int(r.stdout[r.stdout.index(after: nl)...]) else {
            throw SupportError("curl failed: \(r.stderr)")
        }
        return Response(status: status, body: String(r.stdout[..<nl]))
    }
}

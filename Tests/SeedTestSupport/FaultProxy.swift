import Foundation

/// Resources/faultproxy.py in front of a registry: forwards, or injects 500s, a 429 with
/// Retry-After, or redirects of blob downloads to a second listener on another host name
/// (`localhost`) that records whether credentials reached it.
public final class FaultProxy: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Its state directory.
    public let dir: TempDir
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// `127.0.0.1:PORT`, to use as a registry host.
    public var host: String { "127.0.0.1:\(port)" }

    /// Starts the proxy for the registry listening on `upstreamPort`.
    public init(upstreamPort: Int) throws {
        dir = try TempDir("seed-proxy")
        (process, port) = try startHelper("faultproxy", args: [String(upstreamPort), dir.path], portFile: dir.sub("port"))
    }

    /// Sets the mode (`pass`, `500:N`, `429:SECS`, `redirect`) and resets the request counter
    /// by restarting the count from the next request.
    public func set(mode: String) throws {
        try mode.write(toFile: dir.sub("mode"), atomically: true, encoding: .utf8)
    }

    /// The Authorization header the redirect target uses to fetch from the registry itself.
    public func setUpstreamAuthorization(_ value: String?) throws {
        if let value { try value.write(toFile: dir.sub("upstream-auth"), atomically: true, encoding: .utf8) }
    }

    /// Request lines seen, with whether each carried Authorization.
    public var log: [String] { ((try? String(contentsOfFile: dir.sub("log"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    /// What the redirect target received (`PATH auth=HEADER|none`).
    public var redirected: [String] { ((try? String(contentsOfFile: dir.sub("redirected"), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    /// Stops it by PID (SIGKILL: a child of the test process may inherit a mask that blocks
    /// SIGTERM, and the proxy has nothing to clean up).
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        dir.remove()
    }

    deinit { stop() }
}

/// `python3 -m http.server` serving a directory on 127.0.0.1, for http(s) sources.
public final class FileServer: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Its port.
    public let port: Int

    /// Serves `directory`.
    public init(directory: String) throws {
        var lastError = ""
        for _ in 0..<5 {
            let port = try freeLoopbackPort()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try tool("python3"))
            p.arguments = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", directory, String(port)]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && p.isRunning {
                if (try? run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/"]))?.status == 0 {
                    self.process = p
                    self.port = port
                    return
                }
                usleep(100_000)
            }
            lastError = "http.server on \(port) did not answer"
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
        }
        throw SupportError(lastError)
    }

    /// Stops it by PID (SIGKILL, as for `FaultProxy`).
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Resources/stallproxy.py in front of an agent: a TCP proxy that, while `stall` is on, stops
/// reading an upload after its first MiB (the sender's writes back up), and tears both sides
/// down abortively when either goes away.
public final class StallProxy: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Its state directory.
    public let dir: TempDir
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts the proxy for the agent listening on `upstreamPort`.
    public init(upstreamPort: Int) throws {
        dir = try TempDir("seed-stall")
        (process, port) = try startHelper("stallproxy", args: [String(upstreamPort), dir.path], portFile: dir.sub("port"))
    }

    /// Turns stalling on or off.
    public func stall(_ on: Bool) {
        if on {
            _ = FileManager.default.createFile(atPath: dir.sub("stall"), contents: nil)
        } else {
            try? FileManager.default.removeItem(atPath: dir.sub("stall"))
        }
    }

    /// Whether an upload has stalled since it was turned on.
    public var stalled: Bool { FileManager.default.fileExists(atPath: dir.sub("stalled")) }

    /// Stops it by PID (SIGKILL, as for the other Python helpers).
    public func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        dir.remove()
    }

    deinit { stop() }
}

/// Starts Resources/NAME.py with `args` and waits for the port it writes to `portFile`.
func startHelper(_ name: String, args: [String], portFile: String) throws -> (Process, Int) {
    let script = Bundle.module.path(forResource: name, ofType: "py")!
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try tool("python3"))
    p.arguments = [script] + args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(15)
    while !FileManager.default.fileExists(atPath: portFile) {
        guard p.isRunning, Date() < deadline else {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw SupportError("\(name).py did not start")
        }
        usleep(50_000)
    }
    return (p, Int(try String(contentsOfFile: portFile, encoding: .utf8))!)
}

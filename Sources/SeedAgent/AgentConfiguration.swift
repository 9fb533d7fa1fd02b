import Foundation
import SeedOCI
import SeedWire

/// Everything `seed agent` is configured with.
public struct AgentConfiguration: Sendable {
    /// Which runtime images are loaded into.
    public enum Runtime: String, Sendable, CaseIterable {
        /// An OCI image layout in the store directory.
        case ociLayout = "oci-layout"
        /// containerd, through `ctr`.
        case containerd
    }

    /// Listen host.
    public var host: String = "127.0.0.1"
    /// Listen port (0: any free port; the agent logs the one it got).
    public var port: Int = 7441
    /// The agent's store directory.
    public var store: String = "/var/lib/seed"
    /// The runtime.
    public var runtime: Runtime = .ociLayout
    /// containerd's socket.
    public var containerdAddress: String = "/run/containerd/containerd.sock"
    /// containerd namespace (the kubelet's is `k8s.io`).
    public var namespace: String = "k8s.io"
    /// The ctr executable.
    public var ctr: String = "/usr/bin/ctr"
    /// The snapshotter images are unpacked into (nil: containerd's default).
    public var snapshotter: String?
    /// The bearer token clients must present (nil: no auth, loopback only).
    public var token: String?
    /// Serve on a non-loopback address without a token.
    public var allowUnauthenticated = false
    /// TLS certificate chain and key (PEM files).
    public var tlsCertificate: String?
    /// TLS private key.
    public var tlsKey: String?
    /// CA whose certificates clients must present (mutual TLS).
    public var clientCA: String?
    /// The node's name (default: the host name).
    public var name: String = ProcessInfo.processInfo.hostName
    /// The node's labels.
    public var labels: [String: String] = [:]
    /// The node's platform (default: this machine's).
    public var platform: Platform?
    /// Largest request body accepted (bytes). Default 64 GiB.
    public var maxBodyBytes: Int64 = 64 << 30
    /// Largest decompressed archive (bytes). Default 256 GiB.
    public var maxUncompressedBytes: Int64 = 256 << 30
    /// Most entries in an archive. Default 100 000.
    public var maxEntries: Int = 100_000
    /// Largest JSON document in an archive. Default 4 MiB.
    public var maxJSONBytes: Int = StrictJSON.defaultLimit
    /// Seconds without a byte of request body before an upload is aborted. Default 60.
    public var idleTimeout: Double = 60
    /// Whether the agent forwards relayed uploads to the nodes their `Seed-Relay` header names.
    public var relay = true
    /// CA for verifying the agents it relays to over https (default: `clientCA`, else the
    /// system's roots). Its own certificate and key, if any, are its client identity.
    public var peerCA: String?

    /// Makes the default configuration.
    public init() {}

    /// Checks the combination; throws `invalidInput` saying what is wrong.
    public func validate() throws {
        if token == nil && !allowUnauthenticated && !Self.isLoopback(host) {
            throw SeedError(.invalidInput, "refusing to listen on \(host) without a token: give --token-file, listen on a loopback address, or pass --allow-unauthenticated")
        }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw SeedError(.invalidInput, "--tls-cert and --tls-key go together")
        }
        if clientCA != nil && tlsCertificate == nil {
            throw SeedError(.invalidInput, "--client-ca needs --tls-cert and --tls-key")
        }
        for (flag, path) in [("--peer-ca", peerCA), ("--client-ca", clientCA), ("--tls-cert", tlsCertificate), ("--tls-key", tlsKey)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) {
                throw SeedError(.invalidInput, "\(flag) \(path): no such readable file")
            }
        }
        guard (0...65535).contains(port) else { throw SeedError(.invalidInput, "invalid port \(port)") }
        guard maxBodyBytes > 0, maxUncompressedBytes > 0, maxEntries > 0, maxJSONBytes > 0, idleTimeout > 0 else {
            throw SeedError(.invalidInput, "limits must be positive")
        }
    }

    /// Whether `host` is a loopback address or name.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Reads a token file (see `Wire.readToken`).
    public static func readToken(_ path: String) throws -> String {
        try Wire.readToken(path)
    }
}

import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// DNS discovery: a name with two addresses, resolved through a hosts file that only the seed
/// process sees (a private mount namespace with the file bind-mounted on /etc/hosts; the
/// machine's resolver configuration is untouched for every other process).
@Suite("Discovery", .serialized)
struct DiscoveryTests {
    @Test("every address of the name is an agent, named by its inventory; sync and status use them")
    func discovery() throws {
        let tmp = try TempDir("seed-discovery"); defer { tmp.remove() }
        let token = "disc-\(UUID().uuidString)"
        try token.write(toFile: tmp.sub("token"), atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        var agents: [Process] = []
        defer { for a in agents { kill(a.processIdentifier, SIGTERM); a.waitUntilExit() } }
        for (i, ip) in ["127.0.0.1", "127.0.0.2"].enumerated() {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try seedBinary())
            p.arguments = ["agent", "--listen", "\(ip):\(port)", "--store", tmp.sub("store-\(i)"), "--token-file", tmp.sub("token"), "--name", "found-\(i)"]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            agents.append(p)
            var up = false
            for _ in 0..<100 where !up {
                up = (try? run(["curl", "-sf", "http://\(ip):\(port)/v1/health"], check: false))?.status == 0
                if !up { usleep(100_000) }
            }
            #expect(up)
        }
        try "127.0.0.1 localhost\n127.0.0.1 seed-agents.test\n127.0.0.2 seed-agents.test\n".write(toFile: tmp.sub("hosts"), atomically: true, encoding: .utf8)
        try skopeo(["copy", "-q", "oci-archive:\(HostileArchives.dir)/valid.tar", "docker-archive:\(tmp.sub("img.tar")):example.com/found/app:1"])
        try """
            version: 1
            images:
              - ref: example.com/found/app:1
                source: file:img.tar
            discovery:
              dns: seed-agents.test
              port: \(port)
              scheme: http
            agents:
              tokenFile: token
            """.write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        func seed(_ args: String) throws -> ProcessResult {
            let cmd = "mount --bind '\(tmp.sub("hosts"))' /etc/hosts && exec '\(try seedBinary())' \(args) -f '\(tmp.sub("seed.yaml"))' --cache '\(tmp.sub("cache"))' -o json"
            return try run(["unshare", "--mount", "sh", "-c", cmd], check: false)
        }
        let sync = try seed("sync")
        #expect(sync.status == 0, "\(sync.stdout) \(sync.stderr)")
        let j = try JSONSerialization.jsonObject(with: Data(sync.stdout.utf8)) as? [String: Any]
        let names = ((j?["nodes"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }.sorted()
        #expect(names == ["found-0", "found-1"])
        let status = try seed("status")
        #expect(status.status == 0, "\(status.stdout) \(status.stderr)")
        let only = try seed("plan --node found-1")
        #expect(only.status == 0, "\(only.stderr)")
        #expect(only.stdout.contains("found-1") && !only.stdout.contains("found-0"))
        // Outside the namespace the name does not resolve: nothing leaked into the machine's resolver.
        #expect(try run(["getent", "hosts", "seed-agents.test"], check: false).status != 0)
    }
}

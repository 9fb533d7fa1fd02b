import Foundation
import SeedOCI
import SeedTestSupport
import Testing

/// TLS with required client certificates, and a full disk.
@Suite("Agent: TLS and disk space", .serialized)
struct AgentEdgeTests {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
    static func makeCerts(_ dir: String) throws {
        let sh = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=seed-test-ca 2>/dev/null
            for who in server client; do
              openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $who.key -out $who.csr -subj /CN=$who 2>/dev/null
            done
            printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > server.ext
            printf 'extendedKeyUsage=clientAuth\\n' > client.ext
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext 2>/dev/null
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext 2>/dev/null
            """
        try run(["sh", "-c", sh])
    }

    @Test("TLS with required client certificates: a client with one loads, one without is refused")
    func mutualTLS() throws {
        let f = try AgentOCILayoutTests.Fixture(); defer { f.tmp.remove() }
        let certs = f.tmp.sub("certs")
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        try Self.makeCerts(certs)
        let agent = try f.agent(["--tls-cert", certs + "/server.pem", "--tls-key", certs + "/server.key", "--client-ca", certs + "/ca.pem"])
        defer { agent.stop() }
        let https = "https://127.0.0.1:\(agent.port)"
        let ok = try Curl.request(AgentOCILayoutTests.auth + ["--cacert", certs + "/ca.pem", "--cert", certs + "/client.pem", "--key", certs + "/client.key",
                                                              "-T", f.dockerArchive, https + "/v1/images"])
        #expect(ok.status == 200, "\(ok.body)")
        // No client certificate: the handshake fails (curl reports status 000).
        let noCert = try Curl.request(AgentOCILayoutTests.auth + ["--cacert", certs + "/ca.pem", https + "/v1/inventory"])
        #expect(noCert.status == 0)
        // Plain HTTP to a TLS port gets nowhere either.
        let plain = try Curl.request(AgentOCILayoutTests.auth + ["http://127.0.0.1:\(agent.port)/v1/inventory"])
        #expect(plain.status != 200)
    }

    @Test("a full disk answers 507 and leaves no partial blob; the agent keeps serving")
    func diskFull() throws {
        let f = try AgentOCILayoutTests.Fixture(); defer { f.tmp.remove() }
        let mnt = f.tmp.sub("small")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt])
        defer { _ = try? run(["umount", mnt]) }
        _ = try ImageFactory.make(layout: f.layout, tag: "big", layers: [.init(files: 5, fileSize: 1 << 20, gzip: false, random: true)], salt: "full")
        let big = f.tmp.sub("big.tar")
        try skopeo(["copy", "-q", "oci:\(f.layout):big", "docker-archive:\(big):example.com/test/big:1"])
        let agent = try f.agent(store: mnt + "/store")
        defer { agent.stop() }
        let r = try AgentOCILayoutTests.put(agent, big)
        #expect(r.status == 507, "\(r.body)")
        #expect(try (r.json()["error"] as? [String: Any])?["code"] as? String == "no_space")
        #expect(listFiles(mnt + "/store/tmp").isEmpty)
        #expect(listFiles(mnt + "/store/blobs").isEmpty)
        // Still serving: a small image fits.
        let small = try AgentOCILayoutTests.put(agent, HostileArchives.dir + "/valid.tar")
        #expect(small.status == 200, "\(small.body)")
    }
}

import Foundation
import SeedTestSupport
import Testing

/// The repository's root, from this file's path.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite("seed images and examples/")
struct ExamplesAndImagesTests {
    @Test("seed images reads realistic workloads: every kind, init and ephemeral containers, List, multi-document; warns about pulls")
    func images() throws {
        let r = try run([try seedBinary(), "images", repoRoot + "/examples/workloads/app.yaml"])
        let refs = r.stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: " ")[2]) }
        #expect(refs == [
            "registry.example.com/shop/migrate:2.3.0",
            "registry.example.com/shop/api:1.4.2",
            "docker.io/envoyproxy/envoy:v1.29.1",
            "registry.example.com/shop/report:latest",
            "docker.io/library/postgres:16.2",
            "docker.io/library/busybox@sha256:5eef5ed34e1e1ff0a4ae850395cbf665c4de6b4b83a32a0bc7bcb998e24e7bbb",
            "registry.example.com/tools/netshoot:0.11",
        ])
        #expect(r.stdout.hasPrefix("images:\n"))
        // Warnings: the defaulted Always of :latest and the explicit Always; not IfNotPresent,
        // not Never, not a tagged image without a policy.
        let warnings = r.stderr.split(separator: "\n").filter { $0.hasPrefix("warning:") }
        #expect(warnings.count == 2, "\(r.stderr)")
        #expect(warnings.contains { $0.contains("app.yaml:41") && $0.contains("report:latest") })
        #expect(warnings.contains { $0.contains("app.yaml:57") && $0.contains("imagePullPolicy: Always") })

        // The output is a valid images: section for seed.yaml.
        let tmp = try TempDir(); defer { tmp.remove() }
        try ("version: 1\n" + r.stdout).write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        let check = try run([try seedBinary(), "plan", "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("cache")], check: false)
        #expect(check.status == 2)   // valid images, but no nodes: the manifest itself parsed
        #expect(check.stderr.contains("no nodes"), "\(check.stderr)")

        // Standard input, JSON, and an invalid image (exit 2, file and line named).
        let bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n    - name: c\n      image: Bad/Name:1\n"
        let e = try run([try seedBinary(), "images", "-"], stdin: Data(bad.utf8), check: false)
        #expect(e.status == 2)
        #expect(e.stderr.contains("stdin:7"), "\(e.stderr)")
        let j = try run([try seedBinary(), "images", "-o", "json", repoRoot + "/examples/workloads/app.yaml"])
        #expect(j.stdout.contains("\"usedBy\""))
    }

    @Test("examples/seed.yaml and the coordinator's ConfigMap manifest are valid seed manifests")
    func exampleManifests() throws {
        let tmp = try TempDir(); defer { tmp.remove() }
        // No nodes reachable and no registry here: `status --offline` still parses everything first
        // and fails only at the network, never with exit 2.
        // The files it names live outside the repository; stand-ins make them readable.
        try FileManager.default.createDirectory(atPath: tmp.sub("secrets"), withIntermediateDirectories: true)
        // Tests never reach beyond loopback: the example's node addresses become closed local ports.
        var quickstart = try String(contentsOfFile: repoRoot + "/examples/seed.yaml", encoding: .utf8)
        for host in ["10.0.0.11:7441", "10.0.0.12:7441", "10.0.0.13:7441"] {
            quickstart = quickstart.replacingOccurrences(of: host, with: "127.0.0.1:\(try freeLoopbackPort())")
        }
        #expect(!quickstart.contains("10.0.0."))
        try quickstart.write(toFile: tmp.sub("quickstart.yaml"), atomically: true, encoding: .utf8)
        try #"{"auths": {}}"#.write(toFile: tmp.sub("secrets/regcred.yaml"), atomically: true, encoding: .utf8)
        try "stand-in-token\n".write(toFile: tmp.sub("secrets/agent-token"), atomically: true, encoding: .utf8)
        let r = try run([try seedBinary(), "status", "--offline", "--timeout", "1", "-f", tmp.sub("quickstart.yaml"), "--cache", tmp.sub("c")], check: false)
        #expect(r.status == 1, "\(r.stderr)")
        let cronjob = try String(contentsOfFile: repoRoot + "/examples/kubernetes/coordinator-cronjob.yaml", encoding: .utf8)
        let start = cronjob.range(of: "  seed.yaml: |\n")!.upperBound
        let end = cronjob.range(of: "\n---", range: start..<cronjob.endIndex)!.lowerBound
        let embedded = cronjob[start..<end].split(separator: "\n", omittingEmptySubsequences: false).map { $0.dropFirst(4) }.joined(separator: "\n")
        try embedded.write(toFile: tmp.sub("seed.yaml"), atomically: true, encoding: .utf8)
        let fetch = try run([try seedBinary(), "plan", "-f", tmp.sub("seed.yaml"), "--cache", tmp.sub("c2")], check: false)
        // It names a credentials file that exists only in the cluster: invalid input here, and
        // it must be that file the error names, not the manifest's syntax.
        #expect(fetch.status == 2)
        #expect(fetch.stderr.contains("/etc/seed/"), "\(fetch.stderr)")
    }

    @Test("the Kubernetes examples pass the Kubernetes schemas (kubernetes-validate, offline)")
    func kubernetesSchemas() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoot + "/examples/kubernetes").filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 6)
        let r = try run(["python3", "-m", "kubernetes_validate", "--strict"] + files.map { repoRoot + "/examples/kubernetes/" + $0 }, check: false)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(!r.stdout.contains("ERROR") && !r.stderr.contains("ERROR"), "\(r.stdout)\(r.stderr)")
    }
}

@Suite("The demonstration")
struct DemoTests {
    @Test("scripts/demo.sh runs end to end, shows every image present, and stops what it started")
    func demo() throws {
        var env = ProcessInfo.processInfo.environment
        env["SEED_BINARY"] = try seedBinary()
        let r = try run([repoRoot + "/scripts/demo.sh"], environment: env, check: false)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("status: in sync: 3/3 nodes reachable; 7 present"), "\(r.stdout)")
        #expect(r.stdout.contains("status: drift"))
        #expect(r.stdout.contains("sync: 3/3 nodes in sync; 0 images sent, 0 B"))
        // Nothing left running: no agent of the demo's work directory.
        let ps = try run(["ps", "-eo", "args"]).stdout
        #expect(!ps.contains("seed-demo-"), "\(ps)")
    }
}

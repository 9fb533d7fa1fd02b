import Foundation
import SeedOCI
import Yams

/// Reads registry credentials files: a docker `config.json`, or a Kubernetes Secret of type
/// `kubernetes.io/dockerconfigjson` (YAML or JSON, `data` base64 or `stringData`), as
/// `kubectl get secret regcred -o yaml` prints it. Returns the config.json bytes. Errors name
/// the file and what is wrong, never a secret.
public enum DockerConfigFile {
    /// The config.json bytes held by the file at `path`.
    public static func read(path: String) throws -> [UInt8] {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw SeedError(.invalidInput, "cannot read the credentials file \(path)")
        }
        if let size = attrs[.size] as? NSNumber, size.intValue > 4 << 20 {
            throw SeedError(.invalidInput, "the credentials file \(path) is over 4 MiB")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SeedError(.invalidInput, "cannot read the credentials file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        // A config.json: a JSON object with auths / credHelpers / credsStore.
        if let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], obj["kind"] == nil {
            return Array(data)
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw SeedError(.invalidInput, "the credentials file \(path) is neither a docker config.json nor a Secret in YAML or JSON")
        }
        guard let map = node?.mapping else {
            throw SeedError(.invalidInput, "the credentials file \(path) is neither a docker config.json nor a Secret")
        }
        func string(_ key: String, in m: Node.Mapping) -> String? { m[Node(key)]?.scalar?.string }
        guard string("kind", in: map) == "Secret" else {
            throw SeedError(.invalidInput, "\(path): not a docker config.json and not a kind: Secret")
        }
        guard string("type", in: map) == "kubernetes.io/dockerconfigjson" else {
            throw SeedError(.invalidInput, "\(path): the Secret's type is \(SeedError.quote(string("type", in: map) ?? "(none)")), want kubernetes.io/dockerconfigjson")
        }
        if let plain = map[Node("stringData")]?.mapping.flatMap({ string(".dockerconfigjson", in: $0) }) {
            return Array(plain.utf8)
        }
        guard let encoded = map[Node("data")]?.mapping.flatMap({ string(".dockerconfigjson", in: $0) }) else {
            throw SeedError(.invalidInput, "\(path): the Secret has no .dockerconfigjson in data or stringData")
        }
        guard let decoded = Data(base64Encoded: encoded.filter { !$0.isWhitespace }) else {
            throw SeedError(.invalidInput, "\(path): the Secret's data.\".dockerconfigjson\" is not valid base64")
        }
        return Array(decoded)
    }

    /// The default location when the manifest names none: `$DOCKER_CONFIG/config.json`, then
    /// `~/.docker/config.json`; nil if neither exists (anonymous access).
    public static func defaultPath() -> String? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let d = env["DOCKER_CONFIG"], !d.isEmpty { candidates.append(d + "/config.json") }
        if let home = env["HOME"], !home.isEmpty { candidates.append(home + "/.docker/config.json") }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}

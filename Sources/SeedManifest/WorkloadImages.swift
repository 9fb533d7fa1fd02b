import Foundation
import SeedOCI
import Yams

/// An image a Kubernetes workload runs.
public struct WorkloadImage: Sendable, Hashable {
    /// The image, normalised.
    public var ref: Reference
    /// The image as written.
    public var raw: String
    /// `Deployment default/web`.
    public var workload: String
    /// The container's name (and whether it is an init or ephemeral container).
    public var container: String
    /// The pull policy in effect: as written, else Kubernetes' default (`Always` for `:latest`
    /// or no tag, `IfNotPresent` otherwise).
    public var pullPolicy: String
    /// Whether the policy was written or defaulted.
    public var pullPolicyDefaulted: Bool
    /// `file:line`.
    public var location: String

    /// Whether a pod with this container would still contact a registry when the image is
    /// already on the node.
    public var stillPulls: Bool { pullPolicy == "Always" }
}

/// Reads the images out of Kubernetes workload YAML: Pod, Deployment, StatefulSet, DaemonSet,
/// ReplicaSet, ReplicationController, Job, CronJob, and `kind: List`; multi-document files;
/// containers, initContainers and ephemeralContainers. Other kinds are skipped.
public enum WorkloadImages {
    /// The images in `yaml` (the text of `file`).
    public static func extract(_ yaml: String, file: String) throws -> [WorkloadImage] {
        var text = yaml
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let docs: [Node]
        do {
            docs = Array(try Yams.compose_all(yaml: text)).compactMap { $0 }
        } catch {
            throw SeedError(.invalidInput, "\(file): not valid YAML: \(error)")
        }
        var out: [WorkloadImage] = []
        for doc in docs { try collect(doc, file: file, into: &out) }
        return out
    }

    static func str(_ n: Node?) -> String? { n?.scalar?.string }

    static func collect(_ doc: Node, file: String, into out: inout [WorkloadImage]) throws {
        guard let m = doc.mapping else { return }
        let kind = str(m["kind"]) ?? ""
        if kind == "List" || kind.hasSuffix("List") {
            for item in m["items"]?.sequence ?? [] { try collect(item, file: file, into: &out) }
            return
        }
        let meta = m["metadata"]?.mapping
        let name = "\(kind) \(str(meta?["namespace"]) ?? "default")/\(str(meta?["name"]) ?? "?")"
        let podSpec: Node?
        switch kind {
        case "Pod": podSpec = m["spec"]
        case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
            podSpec = m["spec"]?.mapping?["template"]?.mapping?["spec"]
        case "CronJob":
            podSpec = m["spec"]?.mapping?["jobTemplate"]?.mapping?["spec"]?.mapping?["template"]?.mapping?["spec"]
        default:
            return
        }
        guard let spec = podSpec?.mapping else { return }
        for (field, label) in [("initContainers", "init container "), ("containers", "container "), ("ephemeralContainers", "ephemeral container ")] {
            for c in spec[Node(field)]?.sequence ?? [] {
                guard let cm = c.mapping, let imageNode = cm["image"], let raw = str(imageNode), !raw.isEmpty else { continue }
                let line = imageNode.mark.map { "\(file):\($0.line)" } ?? file
                let ref: Reference
                do { ref = try Reference(raw) } catch let e as SeedError {
                    throw SeedError(.invalidInput, "\(line): \(name) \(label)\(str(cm["name"]) ?? "?"): \(e.message)")
                }
                let written = str(cm["imagePullPolicy"])
                let policy = written ?? ((ref.digest == nil && (ref.tag ?? "latest") == "latest") ? "Always" : "IfNotPresent")
                out.append(WorkloadImage(ref: ref, raw: raw, workload: name, container: label + (str(cm["name"]) ?? "?"),
                                         pullPolicy: policy, pullPolicyDefaulted: written == nil, location: line))
            }
        }
    }
}

import ArgumentParser
import Foundation
import SeedManifest
import SeedOCI

/// `seed images FILES...`: the images a set of workloads runs, as a seed.yaml `images:` section.
public struct ImagesCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "images",
        abstract: "Print the images Kubernetes workload YAML runs, as a seed.yaml images: section.",
        discussion: """
        Reads Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job,
        CronJob and List objects (multi-document files; containers, initContainers,
        ephemeralContainers; - reads standard input). Warns on standard error about containers
        whose imagePullPolicy would still reach a registry although the image is pre-seeded.
        """
    )

    @Argument(help: "Workload YAML files (- for standard input).")
    var files: [String]

    @Option(name: [.short, .customLong("output")], help: "yaml or json.")
    var output = "yaml"

    public init() {}

    public func validate() throws {
        guard ["yaml", "json"].contains(output) else { throw ValidationError("--output must be yaml or json") }
        guard !files.isEmpty else { throw ValidationError("give at least one file") }
    }

    public func run() throws {
        var all: [WorkloadImage] = []
        for f in files {
            let text: String
            if f == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                guard let data = FileManager.default.contents(atPath: f) else {
                    throw SeedError(.invalidInput, "cannot read \(f)")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            all += try WorkloadImages.extract(text, file: f == "-" ? "stdin" : f)
        }
        for w in all where w.stillPulls {
            let why = w.pullPolicyDefaulted ? "imagePullPolicy is not set, and Always is the default for \(w.ref.digest == nil ? ":latest or no tag" : "this image")" : "imagePullPolicy: Always"
            FileHandle.standardError.write(Data("warning: \(w.location): \(w.workload) \(w.container) (\(w.raw)): \(why): it will still pull from the registry at every start; use IfNotPresent or Never, and a tag other than latest\n".utf8))
        }
        var seen = Set<Reference>()
        let unique = all.filter { seen.insert($0.ref).inserted }
        if output == "json" {
            let doc = unique.map { w in
                ["ref": w.ref.description, "image": w.raw, "usedBy": all.filter { $0.ref == w.ref }.map { "\($0.workload) \($0.container)" },
                 "pullPolicy": w.pullPolicy] as [String: Any]
            }
            print(json(["images": doc]))
            return
        }
        print("images:")
        for w in unique {
            let users = all.filter { $0.ref == w.ref }.map { "\($0.workload) (\($0.container))" }
            print("  - ref: \(w.ref)    # \(users.joined(separator: "; "))")
        }
    }
}

import ArgumentParser
import Foundation
import SeedOCI
import SeedArchive

/// seed's version.
public let seedVersion = "0.1.0-dev"

/// The root command.
public struct SeedCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Pre-seed container images onto Kubernetes nodes.",
        version: seedVersion,
        subcommands: [SyncCommand.self, PlanCommand.self, StatusCommand.self, FetchCommand.self, ImagesCommand.self, AgentCommand.self, VersionCommand.self]
    )

    public init() {}

    /// Runs the command line: SeedError and usage errors end with the exit codes SPEC.md lists
    /// (2 for invalid input, 3 for a held lock, 1 for a failed run).
    public static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let e as SeedError {
            FileHandle.standardError.write(Data("seed: error: \(e)\n".utf8))
            Foundation.exit(e.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// `seed version`: seed's version and the libarchive it runs with.
public struct VersionCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "version",
        abstract: "Print seed's version and the libarchive version it runs with."
    )

    @Flag(name: .long, help: "Also list libarchive's compression libraries.")
    var verbose = false

    public init() {}

    public func run() throws {
        print("seed \(seedVersion)")
        print("libarchive \(LibArchiveInfo.version)")
        if verbose { print(LibArchiveInfo.details) }
    }
}

import ArgumentParser
import SeedArchive

/// seed's version.
public let seedVersion = "0.1.0-dev"

/// The root command.
public struct SeedCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Pre-seed container images onto Kubernetes nodes.",
        version: seedVersion,
        subcommands: [VersionCommand.self]
    )

    public init() {}
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

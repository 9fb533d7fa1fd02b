// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "seed",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "seed", targets: ["seed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // libarchive's C API, found through pkg-config (Debian: libarchive-dev).
        .systemLibrary(
            name: "CArchive",
            pkgConfig: "libarchive",
            providers: [.apt(["libarchive-dev"])]
        ),
        // References, digests, descriptors, manifests, indexes, platforms, errors. No I/O.
        .target(
            name: "SeedOCI",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Streaming tar reading and writing over libarchive; docker-archive and oci-archive.
        .target(
            name: "SeedArchive",
            dependencies: [
                "CArchive", "SeedOCI",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Content-addressed, verified blob store.
        .target(
            name: "SeedStore",
            dependencies: [
                "SeedOCI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Argument parsing, exit codes; everything a command needs.
        .target(
            name: "SeedCLI",
            dependencies: [
                "SeedOCI", "SeedArchive", "SeedStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "seed", dependencies: ["SeedCLI"]),
        // Throughput and memory probe for scripts/bench (not installed, not user-facing).
        .executableTarget(
            name: "seed-bench",
            dependencies: ["SeedOCI", "SeedArchive", "SeedStore", "SeedTestSupport", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Helpers shared by the test targets: temp dirs, processes, images made with skopeo.
        .target(
            name: "SeedTestSupport",
            dependencies: ["SeedOCI", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/SeedTestSupport"
        ),
        .testTarget(name: "SeedOCITests", dependencies: ["SeedOCI"]),
        .testTarget(
            name: "SeedArchiveTests",
            dependencies: ["SeedArchive", "SeedStore", "SeedOCI", "SeedTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "SeedStoreTests", dependencies: ["SeedStore", "SeedOCI", "SeedTestSupport"]),
        .testTarget(name: "SeedCLITests", dependencies: ["SeedCLI", "SeedTestSupport"]),
    ]
)

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
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
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
        // Strict decoding and validation of seed.yaml.
        .target(name: "SeedManifest", dependencies: ["SeedOCI", .product(name: "Yams", package: "Yams")]),
        // OCI Distribution API client: auth, credentials, resolve, verified blob streams, retries.
        .target(
            name: "SeedRegistry",
            dependencies: [
                "SeedOCI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The coordinator: fetch into the cache, plan, push (directly or through relays), status.
        .target(
            name: "SeedCoordinator",
            dependencies: [
                "SeedOCI", "SeedArchive", "SeedStore", "SeedManifest", "SeedRegistry", "SeedWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The coordinator⇄agent contract: paths, JSON bodies, headers.
        .target(name: "SeedWire", dependencies: ["SeedOCI"]),
        // The node agent: HTTP API, ingest, relaying to the next agents, runtime loaders (OCI layout, containerd).
        .target(
            name: "SeedAgent",
            dependencies: [
                "SeedOCI", "SeedArchive", "SeedStore", "SeedWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Argument parsing, exit codes; everything a command needs.
        .target(
            name: "SeedCLI",
            dependencies: [
                "SeedOCI", "SeedArchive", "SeedStore", "SeedWire", "SeedAgent", "SeedManifest", "SeedRegistry", "SeedCoordinator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
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
            dependencies: [
                "SeedOCI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Tests/SeedTestSupport",
            resources: [.copy("Resources/hostile.py"), .copy("Resources/faultproxy.py"), .copy("Resources/stallproxy.py")]
        ),
        .testTarget(name: "SeedOCITests", dependencies: ["SeedOCI"]),
        .testTarget(
            name: "SeedArchiveTests",
            dependencies: ["SeedArchive", "SeedStore", "SeedOCI", "SeedTestSupport", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "SeedStoreTests", dependencies: ["SeedStore", "SeedOCI", "SeedTestSupport"]),
        .testTarget(name: "SeedCLITests", dependencies: ["SeedCLI", "SeedTestSupport"]),
        .testTarget(name: "SeedManifestTests", dependencies: ["SeedManifest", "SeedOCI", "SeedTestSupport"]),
        .testTarget(name: "SeedRegistryTests", dependencies: ["SeedRegistry", "SeedOCI", "SeedTestSupport"]),
        .testTarget(
            name: "SeedCoordinatorTests",
            dependencies: ["SeedCoordinator", "SeedManifest", "SeedRegistry", "SeedStore", "SeedOCI", "SeedWire", "SeedTestSupport"]
        ),
        .testTarget(
            name: "SeedAgentTests",
            dependencies: ["SeedAgent", "SeedWire", "SeedOCI", "SeedStore", "SeedTestSupport"]
        ),
    ]
)

// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "hyperbatch",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Hyperbatch", targets: ["Hyperbatch"]),
        .library(name: "HyperbatchJobs", targets: ["HyperbatchJobs"]),
        .library(name: "HyperbatchTestKit", targets: ["HyperbatchTestKit"]),
        .library(name: "HyperbatchEmulator", targets: ["HyperbatchEmulator"]),
        .library(name: "HyperbatchProviders", targets: ["HyperbatchProviders"]),
        .library(name: "HyperbatchPostgres", targets: ["HyperbatchPostgres"]),
        .library(name: "HyperbatchSQLite", targets: ["HyperbatchSQLite"]),
        .executable(name: "hyperbatch", targets: ["HyperbatchCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.1.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(
            name: "Hyperbatch",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchJobs",
            dependencies: [
                "Hyperbatch",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchPostgres",
            dependencies: [
                "Hyperbatch",
                "HyperbatchJobs",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchSQLite",
            dependencies: [
                "Hyperbatch",
                "HyperbatchJobs",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchTestKit",
            dependencies: [
                "HyperbatchJobs", "HyperbatchEmulator",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchEmulator",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchEmulatorTests",
            dependencies: [
                "HyperbatchEmulator",
                "HyperbatchTestKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "HyperbatchProviders",
            dependencies: [
                "HyperbatchJobs",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchProvidersTests",
            dependencies: [
                "HyperbatchProviders",
                "HyperbatchEmulator",
                "HyperbatchJobs",
                "HyperbatchTestKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "HyperbatchCLI",
            dependencies: [
                "Hyperbatch",
                "HyperbatchJobs",
                "HyperbatchProviders",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "HyperbatchEmulator",
                "HyperbatchPostgres",
                "HyperbatchSQLite",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchTests",
            dependencies: [
                "Hyperbatch",
                "HyperbatchTestKit",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchJobsTests",
            dependencies: ["HyperbatchJobs", "HyperbatchTestKit"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchPostgresTests",
            dependencies: [
                "HyperbatchPostgres", "Hyperbatch", "HyperbatchJobs", "HyperbatchTestKit", "HyperbatchEmulator",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchPipelineTests",
            dependencies: [
                "HyperbatchJobs", "HyperbatchSQLite", "HyperbatchProviders", "HyperbatchEmulator", "HyperbatchTestKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HyperbatchSQLiteTests",
            dependencies: [
                "HyperbatchSQLite", "Hyperbatch", "HyperbatchJobs", "HyperbatchTestKit",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
    ]
)

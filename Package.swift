// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "homodistil",
    products: [
        .executable(name: "hd-convert", targets: ["hd-convert"]),
        .executable(name: "hd-export", targets: ["hd-export"]),
        .library(name: "HDFormats", targets: ["HDFormats"]),
        .library(name: "HDModel", targets: ["HDModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libopenblas-dev, zlib1g-dev).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The runtime's GEMM against weights packed once (AVX-512F, chosen at run time; see its header).
        .target(name: "CRuntimeKernels"),

        // Libraries; arrows point one way: executables → {HDDistill, HDExport, HDRuntime} → HDModel →
        // {HDTensor, HDFormats, HDTokenizer} → HDErrors, and nothing between HDDistill, HDExport and HDRuntime.
        .target(name: "HDErrors"),
        .target(name: "HDTensor", dependencies: ["CBLAS"]),
        .target(name: "HDFormats", dependencies: ["HDErrors", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "HDTokenizer", dependencies: ["HDErrors"]),
        .target(name: "HDModel", dependencies: ["HDErrors", "HDTensor", "HDFormats", "HDTokenizer"]),
        .target(name: "HDRuntime", dependencies: ["HDModel", "HDTensor", "CRuntimeKernels"]),
        .target(name: "HDDistill", dependencies: ["HDErrors", "HDModel", "HDTensor", "HDTokenizer", "HDFormats"]),
        // The ONNX schema's Swift types, generated once by tools/generate_onnx_swift.sh (committed): only
        // hd-export's ONNX writer links it, so the runtime and hd-infer never carry protobuf.
        .target(name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "HDExport", dependencies: ["HDModel", "HDTensor", "HDFormats", "ONNXProto"]),

        // Thin command-line front ends, and what they share (flags, exit statuses, JSON output).
        .target(name: "HDCommandLine", dependencies: [
            "HDErrors", "HDModel", "HDFormats", "HDTokenizer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-infer", dependencies: [
            "HDCommandLine", "HDRuntime", "HDModel", "HDTensor", "HDTokenizer", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-distill", dependencies: [
            "HDDistill", "HDCommandLine", "HDModel", "HDTensor", "HDTokenizer", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-convert", dependencies: [
            "HDCommandLine", "HDModel", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-export", dependencies: [
            "HDExport", "HDCommandLine", "HDModel", "HDTensor", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Shared by the test targets only: fixture paths, real-model fetch, interop venv, tool runner.
        .target(name: "HDTestSupport", path: "Tests/HDTestSupport"),
        .testTarget(name: "HDTensorTests", dependencies: ["HDTensor", "HDTestSupport"]),
        .testTarget(name: "HDFormatsTests", dependencies: ["HDFormats", "HDTestSupport"]),
        .testTarget(name: "HDTokenizerTests", dependencies: ["HDTokenizer"]),
        .testTarget(name: "HDModelTests", dependencies: ["HDModel", "HDFormats", "HDTestSupport"]),
        .testTarget(name: "HDRuntimeTests", dependencies: ["HDRuntime", "CRuntimeKernels", "HDModel", "HDFormats", "HDTensor", "HDTestSupport"]),
        .testTarget(name: "HDExportTests", dependencies: ["HDExport", "ONNXProto", "HDModel", "HDFormats", "HDTensor", "HDTestSupport"]),
        .testTarget(name: "HDDistillTests", dependencies: ["HDDistill", "HDErrors", "HDModel", "HDFormats", "HDTensor", "HDTokenizer", "HDTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["HDFormats", "HDModel", "HDExport", "HDTestSupport", "HDDistill", "hd-convert", "hd-infer", "hd-distill", "hd-export"]),
    ]
)

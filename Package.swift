// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "homodistil",
    products: [
        .executable(name: "hd-convert", targets: ["hd-convert"]),
        .executable(name: "hd-export", targets: ["hd-export"]),
        .executable(name: "hd-finetune", targets: ["hd-finetune"]),
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
        // The AVX-512F GEMM against packed weights (chosen at run time; see its header): the runtime's dense
        // layers and attention (int8 and bf16 also on AMX tiles), through HDTensor's `GEMM` every product
        // of training, and the training loss's softmax cross-entropy rows (HDTraining).
        .target(name: "CRuntimeKernels"),

        // Libraries; arrows point one way: executables → {HDDistill, HDFinetune, HDExport, HDRuntime, HDTasks}
        // → HDModel → {HDTensor, HDFormats, HDTokenizer} → HDErrors; HDDistill and HDFinetune also use
        // HDTraining (optimiser, losses, log), which knows nothing of BERT. Nothing runs between HDDistill,
        // HDFinetune, HDExport, HDRuntime and HDTasks (task files, labels, splits, pair encoding and
        // metrics, which the command lines hand to fine-tuning, classify/evaluate and task distillation).
        .target(name: "HDErrors"),
        .target(name: "HDTensor", dependencies: ["CBLAS", "CRuntimeKernels"]),
        .target(name: "HDFormats", dependencies: ["HDErrors", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "HDTokenizer", dependencies: ["HDErrors"]),
        .target(name: "HDModel", dependencies: ["HDErrors", "HDTensor", "HDFormats", "HDTokenizer"]),
        .target(name: "HDRuntime", dependencies: ["HDModel", "HDTensor", "CRuntimeKernels"]),
        // What distillation and fine-tuning share: AdamW and its schedule, clipping, losses, the JSONL log.
        .target(name: "HDTraining", dependencies: ["HDErrors", "HDTensor", "HDFormats", "CRuntimeKernels"]),
        .target(name: "HDDistill", dependencies: ["HDErrors", "HDModel", "HDTensor", "HDTokenizer", "HDFormats", "HDTraining"]),
        // Fine-tuning a sequence classifier (the loop; task files come from HDTasks through the CLI).
        .target(name: "HDFinetune", dependencies: ["HDErrors", "HDModel", "HDTensor", "HDTraining", "HDFormats"]),
        // The ONNX schema's Swift types, generated once by tools/generate_onnx_swift.sh (committed): only
        // hd-export's ONNX writer links it, so the runtime and hd-infer never carry protobuf.
        .target(name: "ONNXProto", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "HDExport", dependencies: ["HDModel", "HDTensor", "HDFormats", "ONNXProto"]),
        .target(name: "HDTasks", dependencies: ["HDErrors", "HDTokenizer", "HDModel", "HDTensor", "HDFormats"]),

        // Thin command-line front ends, and what they share (flags, exit statuses, JSON output).
        .target(name: "HDCommandLine", dependencies: [
            "HDErrors", "HDModel", "HDFormats", "HDTokenizer", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-infer", dependencies: [
            "HDCommandLine", "HDRuntime", "HDModel", "HDTasks", "HDTensor", "HDTokenizer", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-distill", dependencies: [
            "HDDistill", "HDTraining", "HDTasks", "HDCommandLine", "HDModel", "HDTensor", "HDTokenizer", "HDFormats", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "hd-finetune", dependencies: [
            "HDFinetune", "HDTasks", "HDTraining", "HDCommandLine", "HDModel", "HDTensor", "HDTokenizer", "HDFormats",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
        .testTarget(name: "HDFinetuneTests", dependencies: ["HDFinetune", "HDModel", "HDFormats", "HDTensor", "HDTraining", "HDTestSupport"]),
        .testTarget(name: "HDTasksTests", dependencies: ["HDTasks", "HDTokenizer", "HDModel", "HDTestSupport"]),
        .testTarget(name: "HDExportTests", dependencies: ["HDExport", "ONNXProto", "HDModel", "HDFormats", "HDTensor", "HDTestSupport"]),
        .testTarget(name: "HDDistillTests", dependencies: ["HDDistill", "HDTraining", "HDErrors", "HDModel", "HDFormats", "HDTensor", "HDTokenizer", "HDTestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["HDFormats", "HDModel", "HDExport", "HDTestSupport", "HDDistill", "hd-convert", "hd-infer", "hd-distill", "hd-export", "hd-finetune"]),
    ]
)

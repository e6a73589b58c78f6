#!/usr/bin/env bash
# Regenerates Sources/ONNXProto/onnx.pb.swift, the Swift types of the ONNX schema that hd-export's
# ONNX writer fills in. Run by hand, once per schema or swift-protobuf upgrade; the output is committed,
# so building the package never needs protoc. What it used (the committed file was made with exactly these):
#   - the schema: onnx/onnx.proto from the PyPI wheel onnx==1.23.2 (proto2; the IR and opsets of ONNX 1.23)
#   - protoc 3.21.12 (Debian bookworm: apt-get install protobuf-compiler)
#   - protoc-gen-swift 1.39.0, built from apple/swift-protobuf at tag 1.39.0 (the version Package.swift
#     pins the runtime to: generated code and runtime must match), in a scratch directory outside the repo
# Usage: tools/generate_onnx_swift.sh [SCRATCH_DIR]   (default /tmp/protoc-gen-swift)
set -euo pipefail

readonly ONNX_VERSION=1.23.2
readonly ONNX_WHEEL=onnx-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
readonly ONNX_WHEEL_SHA256=c03ecf6b835d136108eeaeeafbd0026fc7b3cf98661409fbc6b63d5a29361348
readonly SWIFT_PROTOBUF_TAG=1.39.0
readonly SWIFT_PROTOBUF_GIT=${SWIFT_PROTOBUF_GIT:-https://github.com/apple/swift-protobuf}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=${1:-/tmp/protoc-gen-swift}
mkdir -p "$scratch"

command -v protoc >/dev/null || { echo "generate_onnx_swift.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

# The schema, from the onnx wheel (pinned by sha256).
if [[ ! -f "$scratch/onnx/onnx.proto" ]]; then
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.11 "onnx==$ONNX_VERSION" -d "$scratch" >/dev/null
    echo "$ONNX_WHEEL_SHA256  $scratch/$ONNX_WHEEL" | sha256sum -c - >/dev/null
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('onnx/onnx.proto', sys.argv[2])" "$scratch/$ONNX_WHEEL" "$scratch"
fi

# The plugin, built from the same swift-protobuf release as the runtime.
plugin="$scratch/src/.build/release/protoc-gen-swift"
if [[ ! -x "$plugin" ]]; then
    [[ -d "$scratch/src" ]] || git clone -q --branch "$SWIFT_PROTOBUF_TAG" "$SWIFT_PROTOBUF_GIT" "$scratch/src"
    (cd "$scratch/src" && swift build -c release --product protoc-gen-swift)
fi

# Public types (the ONNXProto target is imported by HDExport and its tests), one file.
protoc --plugin=protoc-gen-swift="$plugin" \
       --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath \
       --swift_out="$repo/Sources/ONNXProto" \
       --proto_path="$scratch" "$scratch/onnx/onnx.proto"
echo "wrote $repo/Sources/ONNXProto/onnx.pb.swift ($(protoc --version), protoc-gen-swift $SWIFT_PROTOBUF_TAG, onnx $ONNX_VERSION)"

import Foundation
import HDFormats
import HDModel
import ONNXProto
import SwiftProtobuf

/// Writes an ONNX model to disk, atomically (temp file, fsync, rename). A protobuf message cannot
/// exceed 2 GiB, so a model whose weights come near that keeps them in ONNX's external data: one
/// side file `<name>.data` beside the model, each initializer's bytes at a 4096-aligned offset (so
/// onnxruntime can map them), named by `location`/`offset`/`length` entries in its TensorProto.
public enum ONNXFile {
    /// The largest serialized model protobuf allows (2 GiB − 1), less room for the graph's own bytes.
    public static let inlineLimit = Int(Int32.max) - (64 << 20)

    /// Alignment of each tensor in the external data file.
    static let alignment = 4096

    /// When the initializers go to the side file: `automatic` when the model would exceed `inlineLimit`.
    public enum ExternalData: Sendable { case automatic, always, never }

    /// What was written: the model file, and the external data file when there is one.
    public struct Written: Sendable {
        public var model: String
        public var externalData: String?
        public var bytes: Int
    }

    /// The side file's path for `path` (`student.onnx` → `student.onnx.data`).
    public static func externalDataPath(for path: String) -> String { path + ".data" }

    public static func write(_ model: Onnx_ModelProto, to path: String, externalData: ExternalData = .automatic) throws -> Written {
        var model = model
        let rawBytes = model.graph.initializer.reduce(0) { $0 + $1.rawData.count }
        let external: Bool
        switch externalData {
        case .always: external = true
        case .never: external = false
        case .automatic: external = rawBytes > inlineLimit
        }
        var dataPath: String?
        var total = 0
        if external {
            let side = externalDataPath(for: path)
            let location = (side as NSString).lastPathComponent
            var offset = 0
            var layout: [(index: Int, offset: Int)] = []
            for (i, t) in model.graph.initializer.enumerated() where !t.rawData.isEmpty {
                offset = (offset + alignment - 1) / alignment * alignment
                layout.append((i, offset))
                offset += t.rawData.count
            }
            let size = offset
            try AtomicFile.write(to: side, body: { writer in
                var at = 0
                for (i, start) in layout {
                    if start > at { try writer.write([UInt8](repeating: 0, count: start - at)) }
                    let data = model.graph.initializer[i].rawData
                    try data.withUnsafeBytes { try writer.write($0) }
                    at = start + data.count
                }
            }, validate: { temp in
                let attributes = try FileManager.default.attributesOfItem(atPath: temp)
                guard (attributes[.size] as? Int) == size else {
                    throw FormatError(.io, file: side, "read-back size \(attributes[.size] ?? "?") differs from the \(size) bytes written")
                }
            })
            for (i, start) in layout {
                let count = model.graph.initializer[i].rawData.count
                model.graph.initializer[i].rawData = Data()
                model.graph.initializer[i].dataLocation = .external
                model.graph.initializer[i].externalData = [("location", location), ("offset", "\(start)"), ("length", "\(count)")].map { key, value in
                    var entry = Onnx_StringStringEntryProto()
                    entry.key = key
                    entry.value = value
                    return entry
                }
            }
            dataPath = side
            total += size
        } else if rawBytes > inlineLimit {
            throw ModelError(.unsupported, file: path,
                "ONNX: the weights take \(rawBytes) bytes, above the \(inlineLimit) a protobuf model can hold inline; write them as external data (the default) instead")
        }
        let bytes: Data = try model.serializedBytes()
        try AtomicFile.write(to: path, body: { writer in
            try bytes.withUnsafeBytes { try writer.write($0) }
        }, validate: { temp in
            let written = try MappedFile(path: temp, minimumBytes: 0)
            guard written.bytes.elementsEqual(bytes) else {
                throw FormatError(.io, file: path, "read-back differs from what was written")
            }
        })
        return Written(model: path, externalData: dataPath, bytes: total + bytes.count)
    }
}

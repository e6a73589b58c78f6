import Foundation
import ONNXProto

/// A small builder over the generated ONNX types: nodes in the order they are added (a topological
/// order, since each node only reads names made before it), initializers, and constants. Every node
/// gets a unique name from its op type and a counter, and every output a unique name too, so a graph
/// built by calling the helpers in sequence is valid without bookkeeping by the caller.
public struct ONNXGraph {
    public private(set) var nodes: [Onnx_NodeProto] = []
    public private(set) var initializers: [Onnx_TensorProto] = []
    /// Scalar and shape constants, shared by value: one initializer per distinct constant.
    private var constants: [String: String] = [:]
    private var counter = 0

    public init() {}

    /// Adds a node and returns its (first) output's name. `prefix` names the part of the model the
    /// node belongs to ("layer.3.attention"), so the fused or profiled graph still says where it is.
    @discardableResult
    public mutating func add(_ op: String, _ inputs: [String], prefix: String, attributes: [Onnx_AttributeProto] = [],
                             outputName: String? = nil) -> String {
        counter += 1
        var node = Onnx_NodeProto()
        node.opType = op
        node.name = "\(prefix)/\(op)_\(counter)"
        node.input = inputs
        let output = outputName ?? "\(prefix)/\(op)_\(counter)_output"
        node.output = [output]
        node.attribute = attributes
        nodes.append(node)
        return output
    }

    /// An f32 initializer of `shape` holding `values` (row-major), named `name`; returns the name.
    @discardableResult
    public mutating func initializer(_ name: String, shape: [Int], values: UnsafeBufferPointer<Float>) -> String {
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.dims = shape.map(Int64.init)
        // Little-endian f32, which is what raw_data holds on every platform ONNX names.
        t.rawData = Data(buffer: values)
        initializers.append(t)
        return name
    }

    /// `weight` ([rows, columns], row-major) transposed into a [columns, rows] initializer: what
    /// MatMul(x, W) needs for a Hugging Face `[out, in]` linear weight.
    @discardableResult
    public mutating func transposedInitializer(_ name: String, rows: Int, columns: Int, values: UnsafeBufferPointer<Float>) -> String {
        precondition(values.count == rows * columns)
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
        return out.withUnsafeBufferPointer { initializer(name, shape: [columns, rows], values: $0) }
    }

    /// A scalar f32 constant (shape []), shared by value.
    public mutating func scalar(_ value: Float) -> String {
        let key = "f32:\(value.bitPattern)"
        if let name = constants[key] { return name }
        let name = "const_f32_\(constants.count)_\(value)"
        _ = [value].withUnsafeBufferPointer { initializer(name, shape: [], values: $0) }
        constants[key] = name
        return name
    }

    /// A 1-D int64 constant (shapes for Reshape, axes for Unsqueeze, indices), shared by value.
    public mutating func int64s(_ values: [Int64], scalar: Bool = false) -> String {
        int64s(values, shape: scalar ? [] : [values.count], name: nil)
    }

    /// An int64 constant of `shape`, named `name` (default: from its values), shared by value.
    public mutating func int64s(_ values: [Int64], shape: [Int], name: String?) -> String {
        let key = "i64\(shape):\(values)"
        if let name = constants[key] { return name }
        let name = name ?? "const_i64_\(constants.count)_" + values.map(String.init).joined(separator: "_")
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.dims = shape.map(Int64.init)
        t.int64Data = values
        initializers.append(t)
        constants[key] = name
        return name
    }

    // MARK: attributes

    public static func attribute(_ name: String, int value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    public static func attribute(_ name: String, float value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }

    public static func attribute(_ name: String, ints values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    // MARK: value infos

    /// A graph input or output: `elementType` with dimensions that are numbers or symbolic names.
    public enum Dimension { case fixed(Int), symbolic(String) }

    public static func valueInfo(_ name: String, elementType: Onnx_TensorProto.DataType, shape: [Dimension]) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(elementType.rawValue)
        var s = Onnx_TensorShapeProto()
        s.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case .fixed(let n): dim.dimValue = Int64(n)
            case .symbolic(let name): dim.dimParam = name
            }
            return dim
        }
        tensor.shape = s
        v.type.tensorType = tensor
        return v
    }
}

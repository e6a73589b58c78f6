import Foundation
import HDModel
import ONNXProto

/// A dense BERT as an ONNX model: the standard BERT subgraph, node for node the way transformers'
/// eager BertModel exports, so onnxruntime's transformer optimiser (`model_type="bert"`) finds and
/// fuses attention, LayerNorm (+ residual) and GELU. Widths are the model's own, per layer (every
/// Reshape states its layer's heads × head size), so a pruned student keeps its speed-up in
/// onnxruntime. Batch and sequence axes are dynamic.
///
/// Graph (DESIGN.md's conventions: linear weights are stored `[out, in]`, MatMul takes `[in, out]`,
/// so each initializer is the transposed weight, named `<canonical name>.T`):
/// - embeddings: Gather(word, input_ids) + Gather(token_type, token_type_ids) + Gather(position,
///   Slice(position_ids, 0, sequence)), LayerNormalization (EmbedLayerNormalization once fused).
/// - the additive mask, once: (1 − Cast(Unsqueeze(Unsqueeze(attention_mask)))) · f32 lowest, [B, 1, 1, S].
/// - each layer: Q, K, V = MatMul + Add, Reshape [0, 0, heads, head size], Transpose (K to [B, h, d, S]);
///   MatMul Q·Kᵀ, Div by √(head size) (Mul by the scale when it is not 1/√(head size)), Add mask,
///   Softmax, MatMul with V, Transpose, Reshape [0, 0, heads × head size]; MatMul + Add, Add the
///   residual, LayerNormalization; FFN MatMul + Add, GELU (erf form: Div √2, Erf, Add 1, Mul x,
///   Mul 0.5; tanh form: 0.5x · (1 + Tanh(√(2/π)(x + 0.044715x³)))), MatMul + Add, Add, LayerNormalization.
/// - outputs: `last_hidden_state`; with a pooler, `pooler_output` = Tanh(dense([CLS])); with a
///   classifier, `logits` = dense(pooler_output).
public enum BertONNXGraph {
    public static let opset = 17
    /// IR version 8: ONNX 1.10+, the first IR of opset 17.
    public static let irVersion: Int64 = 8

    public enum Input: String, CaseIterable, Sendable {
        case inputIDs = "input_ids", attentionMask = "attention_mask", tokenTypeIDs = "token_type_ids"
    }

    public enum Output: String, CaseIterable, Sendable {
        case lastHiddenState = "last_hidden_state", poolerOutput = "pooler_output"
        /// A sequence classifier's [batch, labels] logits (pooler → classifier dense).
        case logits
    }

    /// Symbolic names of the dynamic axes.
    public static let batchAxis = "batch", sequenceAxis = "sequence"

    /// transformers' additive mask value (torch.finfo(float32).min).
    public static let maskValue = -Float.greatestFiniteMagnitude

    /// The ONNX model of `model` (dense: a shrunk student or any checkpoint); `metadata` goes into
    /// the model's `metadata_props`.
    public static func model(_ model: BertModel, metadata: [String: String] = [:]) throws -> Onnx_ModelProto {
        var builder = Builder(model: model)
        let (outputs, shapes) = builder.build()

        var graph = Onnx_GraphProto()
        graph.name = "bert"
        graph.node = builder.graph.nodes
        graph.initializer = builder.graph.initializers
        let dynamic: [ONNXGraph.Dimension] = [.symbolic(batchAxis), .symbolic(sequenceAxis)]
        graph.input = Input.allCases.map { ONNXGraph.valueInfo($0.rawValue, elementType: .int64, shape: dynamic) }
        graph.output = zip(outputs, shapes).map { ONNXGraph.valueInfo($0.rawValue, elementType: .float, shape: $1) }

        var proto = Onnx_ModelProto()
        proto.irVersion = irVersion
        proto.producerName = "homodistil hd-export"
        proto.producerVersion = "1"
        proto.domain = "homodistil"
        proto.docString = "BERT encoder, hidden \(model.config.hiddenSize), \(model.config.numHiddenLayers) layers"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = Int64(Self.opset)
        proto.opsetImport = [opset]
        proto.graph = graph
        proto.metadataProps = metadata.sorted { $0.key < $1.key }.map { key, value in
            var entry = Onnx_StringStringEntryProto()
            entry.key = key
            entry.value = value
            return entry
        }
        return proto
    }

    /// Builds the nodes of one model, part by part.
    struct Builder {
        let model: BertModel
        var graph = ONNXGraph()

        init(model: BertModel) { self.model = model }

        /// The graph's outputs, in order, with their shapes.
        mutating func build() -> ([Output], [[ONNXGraph.Dimension]]) {
            let d = model.config.hiddenSize
            var x = embeddings()
            let mask = additiveMask()
            for l in model.weights.layers.indices {
                x = layer(l, x, mask: mask, last: l == model.weights.layers.count - 1)
            }
            var outputs: [Output] = [.lastHiddenState]
            var shapes: [[ONNXGraph.Dimension]] = [[.symbolic(batchAxis), .symbolic(sequenceAxis), .fixed(d)]]
            if let pooler = model.weights.pooler {
                // [CLS]: the first token of every sequence.
                let first = graph.add("Gather", [x, graph.int64s([0], scalar: true)], prefix: "pooler",
                                      attributes: [ONNXGraph.attribute("axis", int: 1)])
                let dense = linear(first, pooler, name: BertNames.poolerWeight, prefix: "pooler")
                let pooled = graph.add("Tanh", [dense], prefix: "pooler", outputName: Output.poolerOutput.rawValue)
                outputs.append(.poolerOutput)
                shapes.append([.symbolic(batchAxis), .fixed(d)])
                if let classifier = model.weights.classifier {
                    // BertForSequenceClassification: dropout is the identity at inference.
                    linear(pooled, classifier, name: BertNames.classifierWeight, prefix: "classifier", outputName: Output.logits.rawValue)
                    outputs.append(.logits)
                    shapes.append([.symbolic(batchAxis), .fixed(classifier.outFeatures)])
                }
            }
            return (outputs, shapes)
        }

        /// Gather of the three tables, summed, then LayerNormalization.
        mutating func embeddings() -> String {
            let e = model.weights.embeddings, c = model.config, prefix = "embeddings"
            graph.initializer(BertNames.wordEmbeddings, shape: [c.vocabSize, c.hiddenSize], values: e.word.buffer)
            graph.initializer(BertNames.positionEmbeddings, shape: [c.maxPositionEmbeddings, c.hiddenSize], values: e.position.buffer)
            graph.initializer(BertNames.tokenTypeEmbeddings, shape: [c.typeVocabSize, c.hiddenSize], values: e.tokenType.buffer)
            let words = graph.add("Gather", [BertNames.wordEmbeddings, Input.inputIDs.rawValue], prefix: prefix)
            let types = graph.add("Gather", [BertNames.tokenTypeEmbeddings, Input.tokenTypeIDs.rawValue], prefix: prefix)
            // Positions 0 ..< sequence length, [1, S]: a slice of transformers' `position_ids` buffer
            // ([1, max positions]), the form onnxruntime's EmbedLayerNormalization fusion matches.
            let positionIDs = graph.int64s((0..<Int64(c.maxPositionEmbeddings)).map { $0 }, shape: [1, c.maxPositionEmbeddings],
                                           name: BertNames.positionIds)
            let shape = graph.add("Shape", [Input.inputIDs.rawValue], prefix: prefix)
            let length = graph.add("Gather", [shape, graph.int64s([1], scalar: true)], prefix: prefix,
                                   attributes: [ONNXGraph.attribute("axis", int: 0)])
            let end = graph.add("Unsqueeze", [length, graph.int64s([0])], prefix: prefix)
            let slice = graph.add("Slice", [positionIDs, graph.int64s([0]), end, graph.int64s([1]), graph.int64s([1])], prefix: prefix)
            let positions = graph.add("Gather", [BertNames.positionEmbeddings, slice], prefix: prefix)
            let sum = graph.add("Add", [graph.add("Add", [words, types], prefix: prefix), positions], prefix: prefix)
            return layerNorm(sum, e.layerNorm, gamma: BertNames.embeddingsLayerNormWeight, beta: BertNames.embeddingsLayerNormBias, prefix: prefix)
        }

        /// (1 − mask) · lowest, [B, 1, 1, S]: 0 where a token is real, the f32 lowest where it is padding.
        mutating func additiveMask() -> String {
            let prefix = "mask"
            let a = graph.add("Unsqueeze", [Input.attentionMask.rawValue, graph.int64s([1])], prefix: prefix)
            let b = graph.add("Unsqueeze", [a, graph.int64s([2])], prefix: prefix)
            let float = graph.add("Cast", [b], prefix: prefix,
                                  attributes: [ONNXGraph.attribute("to", int: Onnx_TensorProto.DataType.float.rawValue)])
            let inverted = graph.add("Sub", [graph.scalar(1), float], prefix: prefix)
            return graph.add("Mul", [inverted, graph.scalar(maskValue)], prefix: prefix)
        }

        /// One encoder layer, reading `x` [B, S, hidden]; the last one's output is `last_hidden_state`.
        mutating func layer(_ l: Int, _ x: String, mask: String, last: Bool) -> String {
            let w = model.weights.layers[l], s = model.config.layer(l), names = BertNames.layer(l)
            let prefix = "layer.\(l)"
            let h = Int64(s.attentionHeads), hs = Int64(s.headSize)
            func heads(_ y: String, _ perm: [Int]) -> String {
                let split = graph.add("Reshape", [y, graph.int64s([0, 0, h, hs])], prefix: prefix + ".attention")
                return graph.add("Transpose", [split], prefix: prefix + ".attention", attributes: [ONNXGraph.attribute("perm", ints: perm)])
            }
            let attention = prefix + ".attention"
            let q = heads(linear(x, w.attention.query, name: names.queryWeight, prefix: attention), [0, 2, 1, 3])
            let k = heads(linear(x, w.attention.key, name: names.keyWeight, prefix: attention), [0, 2, 3, 1])
            let v = heads(linear(x, w.attention.value, name: names.valueWeight, prefix: attention), [0, 2, 1, 3])
            let scores = graph.add("MatMul", [q, k], prefix: attention)
            let scale = model.config.attentionScale(layer: l), plain = 1 / Float(s.headSize).squareRoot()
            let scaled = model.config.attentionScale == nil || scale == plain
                ? graph.add("Div", [scores, graph.scalar(Float(s.headSize).squareRoot())], prefix: attention)
                : graph.add("Mul", [scores, graph.scalar(scale)], prefix: attention)
            let probabilities = graph.add("Softmax", [graph.add("Add", [scaled, mask], prefix: attention)], prefix: attention,
                                          attributes: [ONNXGraph.attribute("axis", int: -1)])
            let context = graph.add("MatMul", [probabilities, v], prefix: attention)
            let merged = graph.add("Reshape", [
                graph.add("Transpose", [context], prefix: attention, attributes: [ONNXGraph.attribute("perm", ints: [0, 2, 1, 3])]),
                graph.int64s([0, 0, h * hs]),
            ], prefix: attention)
            let attended = graph.add("Add", [linear(merged, w.attention.output, name: names.attentionOutputWeight, prefix: attention), x], prefix: attention)
            let y = layerNorm(attended, w.attention.outputLayerNorm, gamma: names.attentionLayerNormWeight,
                              beta: names.attentionLayerNormBias, prefix: attention)

            let ffn = prefix + ".ffn"
            let inner = gelu(linear(y, w.intermediate, name: names.intermediateWeight, prefix: ffn), prefix: ffn)
            let out = graph.add("Add", [linear(inner, w.output, name: names.outputWeight, prefix: ffn), y], prefix: ffn)
            return layerNorm(out, w.outputLayerNorm, gamma: names.outputLayerNormWeight, beta: names.outputLayerNormBias,
                             prefix: ffn, outputName: last ? Output.lastHiddenState.rawValue : nil)
        }

        /// x · Wᵀ + b as MatMul(x, W.T) then Add(·, b). `name` is the canonical weight's name; the
        /// bias keeps its canonical name (`….bias`).
        @discardableResult
        mutating func linear(_ x: String, _ w: LinearWeights, name: String, prefix: String, outputName: String? = nil) -> String {
            let weight = graph.transposedInitializer(name + ".T", rows: w.outFeatures, columns: w.inFeatures, values: w.weight.buffer)
            let bias = graph.initializer(String(name.dropLast("weight".count)) + "bias", shape: [w.outFeatures], values: w.bias.buffer)
            return graph.add("Add", [graph.add("MatMul", [x, weight], prefix: prefix), bias], prefix: prefix, outputName: outputName)
        }

        mutating func layerNorm(_ x: String, _ w: LayerNormWeights, gamma: String, beta: String, prefix: String,
                                outputName: String? = nil) -> String {
            graph.initializer(gamma, shape: [w.width], values: w.gamma.buffer)
            graph.initializer(beta, shape: [w.width], values: w.beta.buffer)
            return graph.add("LayerNormalization", [x, gamma, beta], prefix: prefix, attributes: [
                ONNXGraph.attribute("axis", int: -1), ONNXGraph.attribute("epsilon", float: model.config.layerNormEps),
            ], outputName: outputName)
        }

        /// GELU as the config's `hidden_act` says, in the forms onnxruntime's Gelu / FastGelu fusions match.
        mutating func gelu(_ x: String, prefix: String) -> String {
            if model.config.hiddenAct.isExact {
                let erf = graph.add("Erf", [graph.add("Div", [x, graph.scalar(Float(2).squareRoot())], prefix: prefix)], prefix: prefix)
                let onePlus = graph.add("Add", [erf, graph.scalar(1)], prefix: prefix)
                return graph.add("Mul", [graph.add("Mul", [x, onePlus], prefix: prefix), graph.scalar(0.5)], prefix: prefix)
            }
            let half = graph.add("Mul", [x, graph.scalar(0.5)], prefix: prefix)
            let cube = graph.add("Pow", [x, graph.scalar(3)], prefix: prefix)
            let inner = graph.add("Add", [x, graph.add("Mul", [cube, graph.scalar(0.044715)], prefix: prefix)], prefix: prefix)
            let tanh = graph.add("Tanh", [graph.add("Mul", [inner, graph.scalar(Float((2 / Double.pi).squareRoot()))], prefix: prefix)], prefix: prefix)
            return graph.add("Mul", [half, graph.add("Add", [tanh, graph.scalar(1)], prefix: prefix)], prefix: prefix)
        }
    }
}

import Foundation
import HDFormats
import HDModel
import HDTensor

/// The student's starting weights: a copy of the teacher (HomoDistil) or `RandomInit`'s.
public enum StudentInitialization: String, Sendable, CaseIterable {
    case copy, random
}

/// BERT's own initialisation (`BertPreTrainedModel._init_weights`): every matrix and embedding table
/// N(0, σ) with σ = `initializer_range` (0.02), the padding token's embedding row 0, biases 0,
/// LayerNorm γ 1 and β 0. For the baseline "distil into an untrained copy" (`hd-distill --init random`).
public enum RandomInit {
    /// A model shaped like `model` (same config, same tensors, MLM head tied or not as it was) with
    /// freshly drawn weights, the same for the same `seed`.
    public static func model(like model: BertModel, seed: UInt64, standardDeviation sigma: Double = 0.02) throws -> BertModel {
        let config = model.config
        var rng = Xoshiro256(seed: seed ^ 0x696E_6974) // "init": not the masking generator's stream
        var set = TensorSet()
        // Sorted, so the draw order (and hence the weights) does not depend on dictionary order.
        for (name, tensor) in try BertParameters(copying: model).tensorSet().tensors.sorted(by: { $0.key < $1.key }) {
            let n = tensor.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: n)
            if name.hasSuffix("LayerNorm.weight") {
                values = [Float](repeating: 1, count: n)
            } else if tensor.shape.count == 2 {
                for i in 0..<n { values[i] = Float(sigma * rng.nextStandardNormal()) }
                if name == BertNames.wordEmbeddings, config.padTokenId >= 0, config.padTokenId < tensor.shape[0] {
                    let d = tensor.shape[1]
                    for i in (config.padTokenId * d)..<((config.padTokenId + 1) * d) { values[i] = 0 }
                }
            }
            set[name] = Tensor(shape: tensor.shape, floats: values)
        }
        return try BertModel(config: config, weights: BertWeights(tensors: set, config: config, source: "<random init>"))
    }
}

import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// The whole-model backward against PyTorch autograd (fixtures/reference/tiny-bert-grads.npz, made by
/// tools/make_grad_reference.py in float64). The loss is rebuilt here from the Swift forward, its
/// gradients injected where the trainer will inject them (MLM logits at chosen rows, hidden states,
/// attention probabilities), and every parameter gradient must satisfy
/// max|swift − torch| ≤ 1e-4 · max(max|torch|, 1) per tensor (measured: ≤ 1.2e-6 · max|torch|). The
/// floor of 1 (this loss's gradients are of order 1) covers the key biases, whose true gradient is
/// exactly 0 and whose f32 value is rounding noise (≈ 5e-7).
@Suite("BERT backward vs PyTorch autograd")
struct BackwardTests {
    static let tolerance: Float = 1e-4

    /// One forward + loss + backward of the reference's loss on `model`; returns the loss.
    struct Step {
        let activations: BertActivations
        let mlm: BertMLMActivations
        let buffers: BertBackwardBuffers
        let batch: TokenBatch

        init(_ model: BertModel, _ ref: ReferenceArrays) throws {
            batch = try ref.batch()
            let c = model.config
            activations = try BertActivations(config: c, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
            mlm = try BertMLMActivations(config: c, maxRows: batch.batchSize * batch.sequenceLength)
            buffers = try BertBackwardBuffers(config: c, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength,
                                              attentionGradients: true)
        }

        func run(_ model: BertModel, _ ref: ReferenceArrays, into gradients: BertGradients) throws -> Double {
            try model.forward(batch, activations: activations)
            let rows = try ref.ints("mlm_rows").values.map { Int32($0) }, labels = try ref.ints("mlm_labels").values
            try model.mlmForward(rows: rows, activations: activations, mlm: mlm)
            buffers.prepare()

            // Mean cross-entropy over the rows: dL/dz = (softmax(z) − onehot) / n.
            var loss = 0.0
            let V = model.config.vocabSize, n = rows.count
            let logits = mlm.logits, dLogits = mlm.logitGradients
            for r in 0..<n {
                let z = (0..<V).map { Double(logits[r * V + $0]) }
                let top = z.max()!
                let e = z.map { exp($0 - top) }, total = e.reduce(0, +)
                loss += (log(total) + top - z[labels[r]]) / Double(n)
                for j in 0..<V { dLogits[r * V + j] = Float((e[j] / total - (j == labels[r] ? 1 : 0)) / Double(n)) }
            }
            let c = try ref.floats("hidden_coefficients")
            for (k, coefficient) in c.enumerated() {
                let h = activations.hiddenState(k), g = buffers.hiddenStateGradient(k)
                for i in h.indices {
                    loss += Double(coefficient) * Double(h[i]) * Double(h[i])
                    g[i] += 2 * coefficient * h[i]
                }
            }
            let R = try ref.floats("last_hidden_weight"), last = activations.lastHiddenState
            let gLast = buffers.hiddenStateGradient(model.config.numHiddenLayers)
            for i in last.indices {
                loss += Double(last[i]) * Double(R[i])
                gLast[i] += R[i]
            }
            for l in 0..<model.config.numHiddenLayers {
                let G = try ref.floats("attention_weight_\(l)")
                let probs = activations[activations.layers[l].probabilities], g = try #require(buffers.attentionGradient(l))
                for i in probs.indices {
                    loss += Double(probs[i]) * Double(G[i])
                    g[i] += G[i]
                }
            }
            try model.backward(batch, activations: activations, mlm: mlm, buffers: buffers, gradients: gradients)
            return loss
        }
    }

    /// Every trainable tensor has a reference gradient (`grad.<name>`), nothing else does, and each
    /// satisfies max|swift − torch| ≤ 1e-4 · max(max|torch|, floor).
    static func expectEveryGradient(_ gradients: BertGradients, of parameters: BertParameters, match ref: ReferenceArrays,
                                    floor: Float) throws {
        let names = Set(parameters.layout.entries.map(\.name))
        let referenced = Set(ref.set.tensors.keys.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        #expect(names == referenced)
        for entry in parameters.layout.entries {
            let expected = try ref.floats("grad.\(entry.name)")
            let actual = Array(try #require(gradients[entry.name]))
            let diff = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
            let scale = max(expected.map(abs).max() ?? 0, floor)
            #expect(diff <= tolerance * scale, "\(entry.name): max|swift − torch| \(diff), scale \(scale)")
        }
    }

    static func reference() throws -> ReferenceArrays { try ReferenceArrays("reference/tiny-bert-grads.npz") }

    /// The fixture as it is (exact GELU, tied decoder), or with the tanh GELU and the untied decoder
    /// that tools/make_grad_reference.py stored beside its gradients.
    enum Variant: String, CaseIterable, Sendable {
        case tiedExactGELU = "reference/tiny-bert-grads.npz"
        case untiedTanhGELU = "reference/tiny-bert-grads-untied-tanh.npz"

        func model(_ ref: ReferenceArrays) throws -> BertModel {
            let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
            var config = checkpoint.config, tensors = checkpoint.tensors
            if self == .untiedTanhGELU {
                config.hiddenAct = .geluNew
                tensors[BertNames.mlmDecoderWeight] = Tensor(shape: [config.vocabSize, config.hiddenSize],
                                                             floats: try ref.floats("decoder_weight"))
            }
            return try BertModel(config: config, weights: BertWeights(tensors: tensors, config: config, source: checkpoint.source))
        }
    }

    @Test(arguments: Variant.allCases)
    func everyParameterGradientMatchesPyTorch(_ variant: Variant) throws {
        let ref = try ReferenceArrays(variant.rawValue)
        let parameters = try BertParameters(copying: try variant.model(ref))
        #expect(parameters.layout.isTied == (variant == .tiedExactGELU))
        let gradients = try BertGradients(layout: parameters.layout)
        let loss = try Step(parameters.model, ref).run(parameters.model, ref, into: gradients)
        let expectedLoss = try ref.floats("loss")[0]
        #expect(abs(Float(loss) - expectedLoss) <= 1e-5 * abs(expectedLoss), "loss \(loss) vs \(expectedLoss)")

        try Self.expectEveryGradient(gradients, of: parameters, match: ref, floor: 1)
        // Q·K_bias adds one constant to every score of a query row, which softmax ignores.
        for l in 0..<parameters.model.config.numHiddenLayers {
            let keyBias = try #require(gradients[BertNames.layer(l).keyBias])
            #expect(keyBias.allSatisfy { abs($0) < 1e-5 })
        }
    }

    /// The backward adds: two passes without `zero()` give twice the gradient (gradient accumulation).
    @Test func gradientsAccumulateAcrossBackwardPasses() throws {
        let ref = try Self.reference()
        let parameters = try BertParameters(copying: try ForwardTests.tinyModel())
        let once = try BertGradients(layout: parameters.layout), twice = try BertGradients(layout: parameters.layout)
        let step = try Step(parameters.model, ref)
        _ = try step.run(parameters.model, ref, into: once)
        _ = try step.run(parameters.model, ref, into: twice)
        _ = try step.run(parameters.model, ref, into: twice)
        #expect(relativeError(Array(twice.flat), Array(once.flat).map { 2 * $0 }) <= 1e-6)
    }

    /// An optimiser writes `flat`; the next forward sees it, with no rebuild, and equals a model built
    /// from a copy of the updated tensors.
    @Test func inPlaceUpdatesReachTheForward() throws {
        let ref = try ReferenceArrays("reference/tiny-bert-forward.npz")
        let parameters = try BertParameters(copying: try ForwardTests.tinyModel())
        let batch = try ref.batch()
        let before = try parameters.model.forward(batch).lastHiddenState
        let flat = parameters.flat
        for i in flat.indices { flat[i] *= 0.9 }
        let after = try parameters.model.forward(batch).lastHiddenState
        #expect(before != after)
        let rebuilt = try BertModel(config: parameters.model.config,
                                    weights: BertWeights(tensors: parameters.tensorSet(), config: parameters.model.config,
                                                         source: "<copy>"))
        #expect(try rebuilt.forward(batch).lastHiddenState == after)
        #expect(parameters.tensorSet()[BertNames.poolerWeight] != nil)
        let word = try #require(parameters[BertNames.wordEmbeddings])
        #expect(word.count == parameters.model.config.vocabSize * parameters.model.config.hiddenSize)
        #expect(parameters.layout.entries.allSatisfy { $0.offset % 16 == 0 })
    }

    enum Misuse: String, CaseIterable, Sendable {
        case rowBelowZero, rowPastBatch, tooManyRows, gradientsOfUntiedModel, buffersOfOtherShape, buffersOfOtherModel
    }

    @Test(arguments: Misuse.allCases)
    func misuseIsRefused(_ misuse: Misuse) throws {
        let ref = try Self.reference()
        let parameters = try BertParameters(copying: try ForwardTests.tinyModel())
        let model = parameters.model, config = model.config
        let batch = try ref.batch(), T = batch.batchSize * batch.sequenceLength
        let activations = try BertActivations(config: config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        try model.forward(batch, activations: activations)
        let mlm = try BertMLMActivations(config: config, maxRows: 4)
        var gradients = try BertGradients(layout: parameters.layout)
        var buffers = try BertBackwardBuffers(config: config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        var rows: [Int32] = [0, 1]
        switch misuse {
        case .rowBelowZero: rows = [0, -1]
        case .rowPastBatch: rows = [Int32(T)]
        case .tooManyRows: rows = [0, 1, 2, 3, 4]
        case .gradientsOfUntiedModel:
            gradients = try BertGradients(layout: BertParameterLayout(config: config, hasMLMHead: true, isTied: false))
        case .buffersOfOtherShape:
            buffers = try BertBackwardBuffers(config: config, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength - 1)
        case .buffersOfOtherModel:
            var other = config
            other.intermediateSize = 8
            buffers = try BertBackwardBuffers(config: other, batchSize: batch.batchSize, sequenceLength: batch.sequenceLength)
        }
        #expect(throws: ModelError.self) {
            try model.mlmForward(rows: rows, activations: activations, mlm: mlm)
            try model.backward(batch, activations: activations, mlm: mlm, buffers: buffers, gradients: gradients)
        }
    }

    @Test func absurdBatchSizesAreRefusedBeforeAllocating() {
        let config = BertConfig(vocabSize: 10, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 16)
        #expect(throws: ModelError.self) { try BertBackwardBuffers(config: config, batchSize: 1 << 40, sequenceLength: 1 << 30) }
        #expect(throws: ModelError.self) { try BertBackwardBuffers(config: config, batchSize: 0, sequenceLength: 4) }
        #expect(throws: ModelError.self) { try BertMLMActivations(config: config, maxRows: 1 << 60) }
        #expect(throws: ModelError.self) { try BertMLMActivations(config: config, maxRows: 0) }
    }
}

/// A pruned student's dense layers gathered on its kept units (`BertModel.gathersKeptUnits`) give
/// the same forward and the same gradients as the full-width products over its zeros: the kept
/// terms are summed in the same order, so the values are equal, not merely close.
@Suite struct KeptUnitsTests {
    @Test func gatheredLayersEqualFullWidthOnes() throws {
        let ref = try ReferenceArrays(BackwardTests.Variant.tiedExactGELU.rawValue)
        let parameters = try BertParameters(copying: try BackwardTests.Variant.tiedExactGELU.model(ref))
        let config = parameters.model.config
        // Half the hidden dims, a third of every FFN, one of each head's Q/K dims and V dims.
        let masks = try PruneMasks(config: config)
        for g in masks.groups {
            let flags = masks.flags(g), per = flags.count / masks.blocks(g)
            for i in flags.indices {
                switch g {
                case .hidden: flags[i] = i % 2 == 0 ? 1 : 0
                case .ffn: flags[i] = i % 3 == 1 ? 0 : 1
                case .queryKey, .value: flags[i] = i % per == per - 1 ? 0 : 1
                }
            }
        }
        masks.zeroPruned(parameters.flat, layout: parameters.layout)
        var results: [(loss: Double, gradients: [String: [Float]], hidden: [Float], flat: [Float])] = []
        for gathers in [true, false] {
            let model = try BertModel(config: config, weights: parameters.model.weights, masks: masks, gathersKeptUnits: gathers)
            let gradients = try BertGradients(layout: parameters.layout)
            let step = try BackwardTests.Step(model, ref)
            let loss = try step.run(model, ref, into: gradients)
            let named = Dictionary(uniqueKeysWithValues: parameters.layout.entries.map { ($0.name, Array(gradients.storage[$0])) })
            results.append((loss, named, Array(step.activations.lastHiddenState), Array(gradients.flat)))
        }
        #expect(results[0].loss == results[1].loss)
        let hiddenDiffers = zip(results[0].hidden, results[1].hidden).filter { $0 != $1 }.count
        #expect(hiddenDiffers == 0, "last hidden state: \(hiddenDiffers) values differ")
        for (name, gathered) in results[0].gradients {
            let full = results[1].gradients[name] ?? []
            let differing = zip(gathered, full).filter { $0 != $1 }.count
            #expect(gathered.count == full.count && differing == 0, "\(name): \(differing) of \(full.count) gradients differ")
        }
        // Pruned units were really pruned: their weights' gradients are exactly zero either way, and
        // the kept ones are not all zero (the loss reaches them).
        #expect(results[0].flat.withUnsafeBufferPointer { masks.prunedAreZero($0, layout: parameters.layout) })
        #expect(results[0].flat.contains { $0 != 0 })
    }
}

import Foundation
import HDFormats
import HDModel
import HDRuntime
import Testing

/// The runtime's int8 and bf16 forwards on the tiny fixture model against forwards written plainly
/// here: each dense layer quantises its input rows and the weights as the kernels document it and
/// sums exact integers (int8), or multiplies bf16-rounded values in f64 (bf16); everything else
/// (embeddings, LayerNorm, attention, softmax, GELU) in f64 from the f32 weights. The two sides
/// differ only by float rounding outside the products (measured: 1.5–3.4e-7 of the largest value
/// for int8, 1.7e-7 for bf16; such rounding could move an activation across a quantisation step,
/// which this input does not do); fp32 against them differs by far more, which the test checks
/// too, so the tolerance cannot hide the quantisation.
struct QuantizedForwardTests {
    /// One sequence's last hidden state [tokens × d] with every dense product done by `product`
    /// (x: rows × k, W: out × k row-major → rows × out, without the bias).
    static func referenceForward(_ model: BertModel, ids: [Int],
                                 product: ([Float], Int, Int, LinearWeights) -> [Float]) -> [Float] {
        let c = model.config, w = model.weights, d = c.hiddenSize, T = ids.count
        func layerNorm(_ x: [Float], _ n: LayerNormWeights) -> [Float] {
            var out = x
            for t in 0..<(x.count / d) {
                let row = x[(t * d)..<(t * d + d)].map(Double.init)
                let mean = row.reduce(0, +) / Double(d)
                let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
                for j in 0..<d {
                    out[t * d + j] = Float((row[j] - mean) / (variance + Double(c.layerNormEps)).squareRoot()
                        * Double(n.gamma.buffer[j]) + Double(n.beta.buffer[j]))
                }
            }
            return out
        }
        func dense(_ x: [Float], _ l: LinearWeights) -> [Float] {
            var y = product(x, x.count / l.inFeatures, l.inFeatures, l)
            for i in y.indices { y[i] += l.bias.buffer[i % l.outFeatures] }
            return y
        }
        var h = [Float](repeating: 0, count: T * d)
        for t in 0..<T {
            for j in 0..<d {
                h[t * d + j] = w.embeddings.word.buffer[ids[t] * d + j] + w.embeddings.position.buffer[t * d + j]
                    + w.embeddings.tokenType.buffer[j]
            }
        }
        h = layerNorm(h, w.embeddings.layerNorm)
        for (i, layer) in w.layers.enumerated() {
            let a = layer.attention, s = c.layer(i), size = s.headSize, width = s.attentionWidth
            let q = dense(h, a.query), k = dense(h, a.key), v = dense(h, a.value), scale = Double(c.attentionScale(layer: i))
            var context = [Float](repeating: 0, count: T * width)
            for head in 0..<s.attentionHeads {
                let o = head * size
                for t in 0..<T {
                    var scores = (0..<T).map { u in
                        (0..<size).reduce(0.0) { $0 + Double(q[t * width + o + $1]) * Double(k[u * width + o + $1]) } * scale
                    }
                    let top = scores.max()!
                    scores = scores.map { exp($0 - top) }
                    let sum = scores.reduce(0, +)
                    for j in 0..<size {
                        context[t * width + o + j] = Float((0..<T).reduce(0.0) { $0 + scores[$1] / sum * Double(v[$1 * width + o + j]) })
                    }
                }
            }
            var attended = dense(context, a.output)
            for e in attended.indices { attended[e] += h[e] }
            h = layerNorm(attended, a.outputLayerNorm)
            var inner = dense(h, layer.intermediate)
            inner = inner.map { Float(0.5 * Double($0) * (1 + erf(Double($0) / 2.0.squareRoot()))) }
            var out = dense(inner, layer.output)
            for e in out.indices { out[e] += h[e] }
            h = layerNorm(out, layer.outputLayerNorm)
        }
        return h
    }

    /// int8: rows quantised as `QuantizedKernelsTests.quantizeRow`, weight rows as `quantize`,
    /// exact integer sums.
    static func int8Product(_ x: [Float], rows: Int, k: Int, _ l: LinearWeights) -> [Float] {
        let xs = (0..<rows).map { QuantizedKernelsTests.quantizeRow(x[($0 * k)..<($0 * k + k)]) }
        let ws = (0..<l.outFeatures).map { QuantizedKernelsTests.quantize(l.weight.buffer[($0 * k)..<($0 * k + k)]) }
        return (0..<(rows * l.outFeatures)).map { e in
            let r = xs[e / l.outFeatures], c = ws[e % l.outFeatures]
            let sum = (0..<k).reduce(Int32(0)) { $0 + (r.u[$1] - r.zero) * c.q[$1] }
            return Float(sum) * (c.scale * r.scale)
        }
    }

    /// bf16: inputs and weights rounded to bf16, products summed in f64.
    static func bf16Product(_ x: [Float], rows: Int, k: Int, _ l: LinearWeights) -> [Float] {
        let b = QuantizedKernelsTests.bf16
        return (0..<(rows * l.outFeatures)).map { e in
            let r = e / l.outFeatures, j = e % l.outFeatures
            return Float((0..<k).reduce(0.0) { $0 + Double(b(x[r * k + $1])) * Double(b(l.weight.buffer[j * k + $1])) })
        }
    }

    /// max |got − want| / max |want|.
    static func relative(_ got: ArraySlice<Float>, _ want: [Float]) -> Float {
        zip(got, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!
    }

    @Test(.enabled(if: Precision.Capabilities.current.avx512VNNI && Precision.Capabilities.current.avx512BF16,
                   "int8 and bf16 need AVX-512 VNNI and BF16"),
          arguments: [(Precision.int8, Float(2e-6)), (.bf16, 2e-6)])
    func tinyBertEqualsPlainForward(precision: Precision, tolerance: Float) throws {
        let model = try RuntimeEquivalenceTests.tinyModel(), d = model.config.hiddenSize
        // Two sequences, the second padded: rows are quantised one by one, so padding must not matter.
        let first = (0..<13).map { ($0 * 37 + 5) % 100 }, second = (0..<9).map { ($0 * 11 + 3) % 100 }
        let batch = try TokenBatch.padding([first, second], padId: 0)
        let fp32 = try InferenceSession(model: RuntimeModel(model: model), maxBatch: 2, maxLength: 13, threads: 2)
        try fp32.forward(batch)
        let plain = fp32.lastHiddenState()
        var outputs: [[Float]] = []
        for instructions in QuantizedKernelsTests.instructions(precision) {
            let session = try InferenceSession(model: RuntimeModel(model: model, precision: precision, instructions: instructions),
                                               maxBatch: 2, maxLength: 13, threads: 2)
            try session.forward(batch)
            let got = session.lastHiddenState()
            outputs.append(Array(got))
            for (b, ids) in [first, second].enumerated() {
                let want = Self.referenceForward(model, ids: ids, product: precision == .int8 ? Self.int8Product : Self.bf16Product)
                let rows = (b * 13 * d)..<((b * 13 + ids.count) * d)
                let error = Self.relative(got[rows], want), quantisation = Self.relative(plain[rows], want)
                #expect(error <= tolerance, "\(precision) on \(instructions), sequence \(b): \(error) from the plain \(precision) forward")
                #expect(quantisation >= 10 * error, "\(precision) on \(instructions), sequence \(b): fp32 is only \(quantisation) from it")
            }
        }
        if precision == .int8 { #expect(outputs.allSatisfy { $0 == outputs[0] }, "the int8 forward differs between AVX-512 and AMX") }
    }

    /// Asking for a precision this CPU lacks is an error naming the instruction set.
    @Test func refusesWhatTheCPUCannotRun() throws {
        let model = try RuntimeEquivalenceTests.tinyModel()
        for precision in [Precision.int8, .bf16] {
            if let reason = precision.unsupportedReason(kernel: .best) {
                #expect(throws: ModelError(.unsupported, file: "<cpu>", reason)) { try RuntimeModel(model: model, precision: precision) }
            } else {
                #expect(throws: Never.self) { try RuntimeModel(model: model, precision: precision) }
            }
        }
    }
}

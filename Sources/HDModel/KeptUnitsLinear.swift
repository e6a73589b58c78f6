import HDTensor

/// A pruned student's dense layers over its kept units only.
///
/// A masked student keeps its full shape: a pruned unit's weights are zero, so its outputs, the
/// gradients that reach it and its weights' gradients are all exactly zero, and the full-width
/// products spend most of their multiply-adds on zeros once pruning is under way (MiniLM at
/// hidden 192 / FFN 768: two thirds of the encoder's). Here each product runs on the kept rows and
/// columns gathered into dense operands, and the result is scattered back with zeros where units
/// are pruned. The kept terms are summed in the same order as the full-width product (a zero term
/// adds nothing to a float sum), and the accumulating products start from the gathered values of
/// their destination as the full-width ones do, so the results are the same values, not merely
/// close ones.
struct KeptUnits {
    /// Kept output units (rows of W), nil when every one is kept.
    let outputs: [Int]?
    /// Kept input units (columns of W), nil when every one is kept.
    let inputs: [Int]?

    /// Below this share of W's entries kept, gathering pays: the gathers move about as many floats
    /// as a GEMM of the batch's rows does multiply-adds per 1 − share of its work.
    static let maximumKeptShare = 0.9

    /// The kept units of a layer whose rows follow `rows` and columns follow `columns`, or nil when
    /// the layer should run at full width (no masks, or too little pruned for the gathers to pay).
    init?(masks: PruneMasks?, rows: PruneGroup, columns: PruneGroup) {
        guard let masks else { return nil }
        let outputs = Self.kept(masks.flags(rows)), inputs = Self.kept(masks.flags(columns))
        let share = Double(outputs?.count ?? masks.size(rows)) * Double(inputs?.count ?? masks.size(columns))
            / (Double(masks.size(rows)) * Double(masks.size(columns)))
        guard share <= Self.maximumKeptShare else { return nil }
        self.outputs = outputs
        self.inputs = inputs
    }

    /// The indices of the kept flags, or nil when all are kept.
    private static func kept(_ flags: UnsafeMutableBufferPointer<Float>) -> [Int]? {
        let kept = flags.indices.filter { flags[$0] != 0 }
        return kept.count == flags.count ? nil : kept
    }
}

extension BertModel {
    /// The kept units of encoder layer `index`'s dense layers (nil: run at full width).
    func keptUnits(layer index: Int) -> (query: KeptUnits?, value: KeptUnits?, output: KeptUnits?,
                                        intermediate: KeptUnits?, ffnOutput: KeptUnits?) {
        let masks = gathersKeptUnits ? masks : nil
        return (KeptUnits(masks: masks, rows: .queryKey(index), columns: .hidden),
         KeptUnits(masks: masks, rows: .value(index), columns: .hidden),
         KeptUnits(masks: masks, rows: .hidden, columns: .value(index)),
         KeptUnits(masks: masks, rows: .ffn(index), columns: .hidden),
         KeptUnits(masks: masks, rows: .hidden, columns: .ffn(index)))
    }

    /// `linear` over the kept units: y[:, kept outputs] = x[:, kept inputs] · W[kept, kept]ᵀ + b,
    /// the other columns of y zero.
    func linear(_ x: UnsafePointer<Float>, rows: Int, _ w: LinearWeights, out: UnsafeMutablePointer<Float>, kept: KeptUnits?) {
        guard let kept else { return linear(x, rows: rows, w, out: out) }
        let n = w.outFeatures, k = w.inFeatures
        let outputs = kept.outputs ?? Array(0..<n), inputs = kept.inputs ?? Array(0..<k)
        let scratch = ScratchBuffers.shared
        let weight = scratch.take(outputs.count * inputs.count), bias = scratch.take(outputs.count)
        defer { scratch.give(back: weight); scratch.give(back: bias) }
        gatherWeights(w.weight.buffer.baseAddress!, columns: k, rows: outputs, inputs, into: weight.baseAddress!)
        for (i, o) in outputs.enumerated() { bias[i] = w.bias.buffer[o] }
        withGathered(x, rows: rows, width: k, columns: kept.inputs) { xc, ldx in
            withScattered(out, rows: rows, width: n, columns: kept.outputs, accumulate: false) { yc, ldy in
                GEMM.multiply(transB: true, m: rows, n: outputs.count, k: inputs.count, a: xc, lda: ldx,
                              b: weight.baseAddress!, ldb: inputs.count, c: yc, ldc: ldy, bias: bias.baseAddress!, precision: productPrecision)
            }
        }
    }

    /// `linearBackward` over the kept units: db += Σ dy (full width: pruned columns of dy are zero),
    /// dW[kept, kept] += dy[:, kept]ᵀ · x[:, kept], and dx[:, kept inputs] (+)= dy[:, kept] · W[kept, kept]
    /// with dx's other columns zero (or left as they are when `accumulate`).
    func linearBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, _ w: LinearWeights,
                        _ g: LinearGradients, dx: UnsafeMutablePointer<Float>, accumulate: Bool, kept: KeptUnits?) {
        guard let kept else { return linearBackward(dy, x: x, rows: rows, w, g, dx: dx, accumulate: accumulate) }
        let n = w.outFeatures, k = w.inFeatures
        let outputs = kept.outputs ?? Array(0..<n), inputs = kept.inputs ?? Array(0..<k)
        Kernels.biasBackward(dy, rows: rows, width: n, dbias: g.bias.baseAddress!)
        let scratch = ScratchBuffers.shared
        let weight = scratch.take(outputs.count * inputs.count), dWeight = scratch.take(outputs.count * inputs.count)
        defer { scratch.give(back: weight); scratch.give(back: dWeight) }
        gatherWeights(w.weight.buffer.baseAddress!, columns: k, rows: outputs, inputs, into: weight.baseAddress!)
        // dW accumulates (micro-batches): its kept block is gathered, added to, and put back.
        gatherWeights(g.weight.baseAddress!, columns: k, rows: outputs, inputs, into: dWeight.baseAddress!)
        withGathered(dy, rows: rows, width: n, columns: kept.outputs) { dyc, lddy in
            withGathered(x, rows: rows, width: k, columns: kept.inputs) { xc, ldx in
                GEMM.multiply(transA: true, m: outputs.count, n: inputs.count, k: rows, a: dyc, lda: lddy, b: xc, ldb: ldx,
                              beta: 1, c: dWeight.baseAddress!, ldc: inputs.count, precision: productPrecision)
            }
            withScattered(dx, rows: rows, width: k, columns: kept.inputs, accumulate: accumulate) { dxc, lddx in
                GEMM.multiply(m: rows, n: inputs.count, k: outputs.count, a: dyc, lda: lddy, b: weight.baseAddress!,
                              ldb: inputs.count, beta: accumulate ? 1 : 0, c: dxc, ldc: lddx, precision: productPrecision)
            }
        }
        for (i, o) in outputs.enumerated() {
            let source = dWeight.baseAddress! + i * inputs.count, row = g.weight.baseAddress! + o * k
            for (j, c) in inputs.enumerated() { row[c] = source[j] }
        }
    }

    /// W[rows, columns] (of a row-major matrix `columns` wide) into a dense block.
    private func gatherWeights(_ w: UnsafePointer<Float>, columns width: Int, rows: [Int], _ columns: [Int],
                               into out: UnsafeMutablePointer<Float>) {
        for (i, r) in rows.enumerated() {
            gatherColumns(w + r * width, rows: 1, width: width, columns, into: out + i * columns.count)
        }
    }

    /// out[r][j] = x[r][columns[j]] for `rows` rows of x (`width` apart), rows split over the workers.
    private func gatherColumns(_ x: UnsafePointer<Float>, rows: Int, width: Int, _ columns: [Int],
                               into out: UnsafeMutablePointer<Float>) {
        let count = columns.count
        columns.withUnsafeBufferPointer { columns in
            ParallelFor.ranges(rows, cost: count) { _, range in
                for r in range {
                    let source = x + r * width, row = out + r * count
                    for j in 0..<count { row[j] = source[columns[j]] }
                }
            }
        }
    }

    /// Calls `body` with x's kept columns as a dense [rows × kept] operand (x itself, with its row
    /// stride, when every column is kept).
    private func withGathered(_ x: UnsafePointer<Float>, rows: Int, width: Int, columns: [Int]?,
                              _ body: (UnsafePointer<Float>, Int) -> Void) {
        guard let columns else { return body(x, width) }
        let buffer = ScratchBuffers.shared.take(rows * columns.count)
        defer { ScratchBuffers.shared.give(back: buffer) }
        gatherColumns(x, rows: rows, width: width, columns, into: buffer.baseAddress!)
        body(buffer.baseAddress!, columns.count)
    }

    /// Calls `body` to write y's kept columns into a dense [rows × kept] block, then scatters it:
    /// the other columns of y become zero, or stay as they are when `accumulate` (the block then
    /// starts from y's kept columns, for a product that adds to them). With every column kept,
    /// `body` writes y in place.
    private func withScattered(_ y: UnsafeMutablePointer<Float>, rows: Int, width: Int, columns: [Int]?, accumulate: Bool,
                               _ body: (UnsafeMutablePointer<Float>, Int) -> Void) {
        guard let columns else { return body(y, width) }
        let buffer = ScratchBuffers.shared.take(rows * columns.count)
        defer { ScratchBuffers.shared.give(back: buffer) }
        let block = buffer.baseAddress!, count = columns.count
        if accumulate { gatherColumns(y, rows: rows, width: width, columns, into: block) }
        body(block, count)
        columns.withUnsafeBufferPointer { columns in
            ParallelFor.ranges(rows, cost: width) { _, range in
                for r in range {
                    let target = y + r * width, row = block + r * count
                    if !accumulate { target.update(repeating: 0, count: width) }
                    for j in 0..<count { target[columns[j]] = row[j] }
                }
            }
        }
    }
}

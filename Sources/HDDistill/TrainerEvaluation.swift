import HDModel
import HDTensor
import HDTraining

extension Trainer {
    /// The held-out figures on the first `evalSequences` held-out sequences (all of them when the
    /// split is smaller): MLM loss, top-1 accuracy and KL (teacher head `.mlm`, masked with a
    /// generator seeded the same way at every evaluation); the student's and the teacher's task
    /// accuracy and their KL (`.classifier`); the pooled-embedding cosine (`.none`); the layer terms.
    /// The last batch may be short: it is filled up with sequences from the start of the split (the
    /// activations are sized for whole batches) whose figures are not counted. Refuses an empty
    /// held-out split.
    public func evaluate() throws -> EvalReport {
        try BLAS.withThreads(options.threads) { try heldOutEvaluation() }
    }

    private func heldOutEvaluation() throws -> EvalReport {
        let B = options.batchSize, L = data.sequenceLength
        let available = min(options.evalSequences, data.sequenceCount(.heldOut))
        guard available > 0 else {
            throw DistillError(.tooShort, file: data.origin,
                "evaluation: expected at least one held-out sequence of \(L) tokens, the held-out split has none")
        }
        var evalRNG = Xoshiro256(seed: options.seed ^ 0x6576_616C)
        let V = model.config.vocabSize
        var loss = 0.0, kl = 0.0, correct = 0, labels = 0, cosine = 0.0, taskHits = 0, teacherHits = 0
        var layerSum = LayerTerms(), tokenCount = 0
        for start in stride(from: 0, to: available, by: B) {
            let real = min(B, available - start)
            let indices = Array(start..<(start + real)) + (0..<(B - real)).map { $0 % available }
            let batch = masking.batch(data: data, split: .heldOut, indices: indices, masked: teacherHead == .mlm, rng: &evalRNG)
            _ = try run(batch)
            if let mlm {
                // Positions are ascending, so the real sequences' labels are a prefix.
                let n = batch.maskedPositions.prefix { Int($0) < real * L }.count
                let (ce, hits) = batch.labels.withUnsafeBufferPointer {
                    Losses.crossEntropy(logits: UnsafeBufferPointer(rebasing: mlm.logits[0..<(n * V)]),
                                        labels: UnsafeBufferPointer(rebasing: $0[0..<n]), vocabularySize: V)
                }
                loss += ce * Double(n)
                correct += hits
                labels += n
                if let teacherMLM {
                    kl += Double(n) * Losses.klDivergence(teacher: UnsafeBufferPointer(teacherMLM.logits), student: UnsafeBufferPointer(mlm.logits),
                                                          rows: n, vocabularySize: V, temperature: options.temperature)
                }
            }
            if let classifier, let teacherClassifier {
                let n = classifier.labels
                kl += Double(real) * Losses.klDivergence(teacher: UnsafeBufferPointer(teacherClassifier.logits),
                                                         student: UnsafeBufferPointer(classifier.logits), rows: real,
                                                         vocabularySize: n, temperature: options.temperature)
                for b in 0..<real {
                    let gold = data.heldOutLabel(start + b).map(Int.init)
                    if Self.argmax(classifier.logits, row: b, width: n) == gold { taskHits += 1 }
                    if Self.argmax(teacherClassifier.logits, row: b, width: n) == gold { teacherHits += 1 }
                }
            }
            if teacherHead == .none, let teacherActivations {
                let last = model.config.numHiddenLayers, teacherLast = teacher?.config.numHiddenLayers ?? last
                let distance = PooledCosineLoss(pooling: options.pooling)(
                    student: UnsafeBufferPointer(rebasing: activations.hiddenState(last)[0..<(real * L * model.config.hiddenSize)]),
                    teacher: UnsafeBufferPointer(rebasing: teacherActivations.hiddenState(teacherLast)[0..<(real * L * model.config.hiddenSize)]),
                    batch: real, length: L, width: model.config.hiddenSize, attentionMask: Array(batch.attentionMask[0..<(real * L)]),
                    keep: hiddenKeep)
                cosine += Double(real) * (1 - distance)
            }
            if let layerDistillation, let teacherActivations {
                // Token-weighted, so a short last batch counts for what it holds.
                let terms = layerDistillation.terms(student: activations, teacher: teacherActivations, sequences: real, keep: hiddenKeep)
                layerSum = layerSum + terms * Double(real * L)
                tokenCount += real * L
            }
        }
        let examples = Double(available)
        return EvalReport(step: step, mlm: mlm == nil ? nil : loss / Double(labels), accuracy: mlm == nil ? nil : Double(correct) / Double(labels),
                          kl: teacher == nil || teacherHead == .none ? nil : kl / (mlm == nil ? examples : Double(labels)),
                          layers: layerDistillation == nil ? nil : layerSum * (1 / Double(tokenCount)),
                          pooledCosine: teacherHead == .none ? cosine / examples : nil,
                          taskAccuracy: teacherHead == .classifier ? Double(taskHits) / examples : nil,
                          teacherTaskAccuracy: teacherHead == .classifier ? Double(teacherHits) / examples : nil,
                          sequences: available)
    }

    /// The first index of the largest of `width` logits in row `row`.
    private static func argmax(_ logits: UnsafeMutableBufferPointer<Float>, row: Int, width: Int) -> Int {
        var best = 0
        for j in 1..<width where logits[row * width + j] > logits[row * width + best] { best = j }
        return best
    }
}

import HDTraining
import Foundation
import HDDistill
import HDFormats
import HDModel
import HDTensor
import HDTestSupport
import Testing

@Suite(.serialized) struct TrainerTests {
    /// A small BERT over the real bert-base vocabulary (hidden 32, 2 layers unless `layers` says),
    /// seeded, tied MLM head (none without `mlmHead`), so the committed Austen corpus tokenises to
    /// real word pieces.
    static func model(seed: UInt64 = 1, layers: Int = 2, mlmHead: Bool = true) throws -> BertModel {
        let config = BertConfig(vocabSize: 30522, hiddenSize: 32, numHiddenLayers: layers, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 64)
        var rng = Xoshiro256(seed: seed)
        var set = TensorSet()
        let head = mlmHead ? BertNames.optionalGroups(config).first { $0.group == "MLM head" }?.tensors ?? [] : []
        for (name, shape) in BertNames.requiredShapes(config) + head {
            let n = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix("LayerNorm.weight") {
                values = [Float](repeating: 1, count: n)
            } else if shape.count == 1 {
                values = [Float](repeating: 0, count: n)
            } else {
                values = (0..<n).map { _ in (rng.nextUnitFloat() - 0.5) * 0.1 }
            }
            set[name] = Tensor(shape: shape, floats: values)
        }
        return try BertModel(config: config, weights: BertWeights(tensors: set, config: config, source: "<test>"))
    }

    static func corpus() throws -> Corpus {
        try Corpus(files: [TestSupport.fixture("corpus/tiny.txt")], tokenizer: CorpusTests.tokenizer,
                   options: CorpusOptions(sequenceLength: 32, heldOutEvery: 3))
    }

    /// `trainer` continuing `checkpoint` (`Trainer.restore`).
    static func resuming(_ trainer: Trainer, from checkpoint: TrainingCheckpoint) throws -> Trainer {
        try trainer.restore(from: checkpoint, file: "<resume>")
        return trainer
    }

    static func bits(_ c: TrainingCheckpoint) -> [String: [UInt32]] {
        c.weights.mapValues { $0.floats.map { $0.buffer.map(\.bitPattern) } ?? [] }
    }

    @Test func twoHundredStepsLowerTheHeldOutLoss() throws {
        let corpus = try Self.corpus()
        let options = TrainerOptions(steps: 200, batchSize: 8, learningRate: 3e-3, warmupSteps: 10, seed: 4, evalSequences: 16)
        let trainer = try Trainer(student: Self.model(), teacher: nil, teacherSHA256: nil, vocab: nil, data: corpus, options: options)
        let before = try trainer.evaluate()
        var first = 0.0, last = 0.0
        while !trainer.isFinished {
            let r = try trainer.trainStep()
            if r.step <= 10 { first += r.mlm! / 10 }
            if r.step > 190 { last += r.mlm! / 10 }
        }
        let after = try trainer.evaluate()
        // ln(30522) ≈ 10.3 at the start; the frequent words of one chapter are quickly learnt.
        let (start, end) = (try #require(before.mlm), try #require(after.mlm))
        #expect(start > 9.5)
        #expect(end < start - 2, "held-out MLM \(start) → \(end)")
        #expect(last < first - 2, "training MLM \(first) → \(last)")
    }

    /// Killed after 3 steps and resumed from the checkpoint, a run ends bit-identical to one that
    /// went straight through: weights, moments, projections, generator and data order all come back.
    /// Every loss term is on (MLM, KL, hidden, attention, embedding).
    @Test func resumeContinuesExactly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let corpus = try Self.corpus()
        let teacher = try Self.model(seed: 9)
        let sha = String(repeating: "0f", count: 32)
        let options = TrainerOptions(steps: 6, batchSize: 4, accumulate: 2, learningRate: 1e-3, warmupSteps: 2, seed: 8)
        let straight = try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: options)
        while !straight.isFinished { _ = try straight.trainStep() }

        let path = dir + "/student.ckpt"
        do {
            let interrupted = try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: options)
            for _ in 0..<3 { _ = try interrupted.trainStep() }
            try interrupted.checkpoint().write(to: path)
        }
        let saved = try TrainingCheckpoint.read(path: path)
        #expect(saved.state.step == 3 && saved.state.teacherSHA256 == sha)
        let resumed = try TrainerTests.resuming(Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus,
                                  options: options), from: saved)
        while !resumed.isFinished { _ = try resumed.trainStep() }
        let a = straight.checkpoint(), b = resumed.checkpoint()
        #expect(Self.bits(a) == Self.bits(b))
        #expect(a.state == b.state)
        #expect(Set(a.projections.keys) == ["embeddings", "hidden.0", "hidden.1"])
        #expect(a.projections.mapValues { $0.floats?.array.map(\.bitPattern) ?? [] } == b.projections.mapValues { $0.floats?.array.map(\.bitPattern) ?? [] })
        for moments in [\TrainingCheckpoint.adamM, \TrainingCheckpoint.adamV] {
            #expect(a[keyPath: moments].mapValues { $0.floats?.array.map(\.bitPattern) ?? [] }
                    == b[keyPath: moments].mapValues { $0.floats?.array.map(\.bitPattern) ?? [] })
        }
        // The projections moved away from the identity, so the resume really restored trained ones.
        let w = try #require(a.projections["hidden.1"]?.floats?.array)
        #expect(w[0] != 1 && w[1] != 0)

        var other = options
        other.learningRate = 2e-3
        let error = #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: other), from: saved)
        }
        #expect(error?.message.contains("lr") == true)
        #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Trainer(student: Self.model(), teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus, options: options), from: saved)
        }
        var kept = options
        (kept.alphaHidden, kept.alphaAttention, kept.alphaEmbedding) = (0, 0, 0)
        let layers = #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: kept), from: saved)
        }
        #expect(layers?.message.contains("alpha_hidden") == true)
        // A checkpoint whose projections do not match its recipe (edited by hand) is refused by name.
        var forged = saved
        forged.projections["hidden.1"] = nil
        forged.adamM["hd.proj.hidden.1"] = nil
        forged.adamV["hd.proj.hidden.1"] = nil
        let missing = #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Trainer(student: Self.model(), teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: options), from: forged)
        }
        #expect(missing?.message.contains("hd.proj.hidden.1") == true)
    }

    /// The teacher distilled into a copy of itself, projections at the identity: KL and the hidden,
    /// attention and embedding terms are 0, and so is the gradient (the student's and the projections').
    @Test func selfDistillationHasZeroLoss() throws {
        let corpus = try Self.corpus()
        let options = TrainerOptions(steps: 1, batchSize: 4, clipNorm: 0, alphaMLM: 0, evalSequences: 8)
        let trainer = try Trainer(student: Self.model(seed: 9), teacher: Self.model(seed: 9), teacherSHA256: nil, vocab: nil,
                                  data: corpus, options: options)
        let eval = try trainer.evaluate()
        #expect(abs(eval.kl ?? 1) < 1e-6)
        let layers = try #require(eval.layers)
        #expect(layers.hidden < 1e-12 && layers.attention < 1e-12 && layers.embedding < 1e-12, "\(layers)")
        let r = try trainer.trainStep()
        let terms = try #require(r.layers)
        #expect(abs(r.kl ?? 1) < 1e-6 && r.gradientNorm < 1e-4)
        #expect(terms.hidden < 1e-12 && terms.attention < 1e-12 && terms.embedding < 1e-12, "\(terms)")
        // AdamW's first m is (1 − β1)·g: zero for every projection entry means a zero projection gradient.
        let m = trainer.checkpoint().adamM
        for name in ["hd.proj.embeddings", "hd.proj.hidden.0", "hd.proj.hidden.1"] {
            let moment = try #require(m[name]?.floats?.array, "\(name)")
            #expect(moment.allSatisfy { abs($0) < 1e-9 }, "\(name)")
        }
    }

    /// The loss terms, one at a time, through the whole trainer path: the gradient the trainer
    /// applies (read back from AdamW's first moment, m₁ = (1 − β1)·g, with clipping off) agrees with
    /// central finite differences of the step's reported loss, for an entry of a projection and for
    /// the student weights whose gradient is largest in two tensors the term reaches.
    enum Term: String, CaseIterable, CustomTestStringConvertible {
        case hidden, attention, embedding
        var testDescription: String { rawValue }
        var projection: String? {
            switch self {
            case .hidden: "hidden.0"
            case .attention: nil
            case .embedding: "embeddings"
            }
        }
    }

    @Test(arguments: Term.allCases)
    func layerTermGradientMatchesFiniteDifferences(_ term: Term) throws {
        let corpus = try Self.corpus()
        let options = TrainerOptions(steps: 2, batchSize: 2, weightDecay: 0, clipNorm: 0, seed: 3, alphaMLM: 0, alphaKL: 0,
                                     alphaHidden: term == .hidden ? 1 : 0, alphaAttention: term == .attention ? 100 : 0,
                                     alphaEmbedding: term == .embedding ? 1 : 0)
        let teacher = try Self.model(seed: 9)
        func trainer(_ resume: TrainingCheckpoint?) throws -> Trainer {
            let trainer = try Trainer(student: Self.model(seed: 2), teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus,
                                      options: options)
            return try resume.map { try TrainerTests.resuming(trainer, from: $0) } ?? trainer
        }
        // A projection off the identity, so its gradient is not special; set through a step-0 checkpoint.
        var start = try trainer(nil).checkpoint()
        if let name = term.projection {
            var w = try #require(start.projections[name]?.floats?.array)
            var rng = Xoshiro256(seed: 17)
            for i in w.indices { w[i] += (rng.nextUnitFloat() - 0.5) * 0.2 }
            start.projections[name] = Tensor(shape: [32, 32], floats: w)
        }
        let stepped = try trainer(start)
        let report = try stepped.trainStep()
        let moments = stepped.checkpoint().adamM
        let c1 = Float(1 - 0.9)
        func gradient(_ key: String) throws -> [Float] { try #require(moments[key]?.floats?.array, "\(key)").map { $0 / c1 } }
        func loss(_ edit: (inout TrainingCheckpoint) -> Void) throws -> Double {
            var c = start
            edit(&c)
            return try trainer(c).trainStep().total
        }
        func check(_ what: String, analytic: Float, h: Float, _ edit: @escaping (inout TrainingCheckpoint, Float) -> Void) throws {
            let numeric = (try loss { edit(&$0, h) } - loss { edit(&$0, -h) }) / Double(2 * h)
            #expect(abs(numeric - Double(analytic)) <= 0.02 * abs(numeric) + 1e-6 * abs(report.total),
                    "\(term) \(what): analytic \(analytic), finite differences \(numeric)")
            #expect(abs(numeric) > 1e-4 * abs(report.total), "\(term) \(what): a gradient too small to check")
        }
        func perturb(_ tensors: inout [String: Tensor], _ name: String, _ i: Int, _ delta: Float) {
            var values = tensors[name]!.floats!.array
            values[i] += delta
            tensors[name] = Tensor(shape: tensors[name]!.shape, floats: values)
        }
        if let name = term.projection {
            let g = try gradient("hd.proj." + name)
            let i = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            // The term is quadratic in the projection, so a large step is exact up to rounding.
            try check("hd.proj.\(name)[\(i)]", analytic: g[i], h: 1e-2) { perturb(&$0.projections, name, i, $1) }
        }
        let weights: [String] = switch term {
        case .hidden: [BertNames.layer(0).valueWeight, BertNames.layer(1).intermediateWeight]
        // Layer 1's attention sees layer 0's FFN; no attention comes after layer 1's FFN.
        case .attention: [BertNames.layer(0).intermediateWeight, BertNames.layer(1).keyWeight]
        case .embedding: [BertNames.positionEmbeddings, BertNames.embeddingsLayerNormWeight]
        }
        for name in weights {
            let g = try gradient(name)
            let i = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            try check("\(name)[\(i)]", analytic: g[i], h: 1e-3) { perturb(&$0.weights, name, i, $1) }
        }
    }

    /// A held-out split smaller than a batch is evaluated whole: the short batch is filled up but only
    /// its real sequences count, so the figures equal an evaluation whose batch is exactly that size.
    @Test func evaluatesAShortLastBatch() throws {
        let corpus = try Self.corpus()
        let teacher = try Self.model(seed: 9)
        func eval(batch: Int, sequences: Int) throws -> EvalReport {
            try Trainer(student: Self.model(), teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus,
                        options: TrainerOptions(batchSize: batch, evalSequences: sequences)).evaluate()
        }
        let short = try eval(batch: 8, sequences: 5), exact = try eval(batch: 5, sequences: 5)
        #expect(short.sequences == 5 && exact.sequences == 5)
        #expect(abs(short.mlm! - exact.mlm!) < 1e-5 && short.accuracy == exact.accuracy)
        #expect(abs((short.kl ?? 0) - (exact.kl ?? 1)) < 1e-5)
        let a = try #require(short.layers), b = try #require(exact.layers)
        #expect(abs(a.hidden - b.hidden) < 1e-5 * b.hidden && abs(a.attention - b.attention) < 1e-5 * b.attention
                && abs(a.embedding - b.embedding) < 1e-5 * b.embedding, "\(a) vs \(b)")
        // 5 sequences in batches of 3: one whole batch and a short one, token-weighted like one batch of 5.
        let split = try eval(batch: 3, sequences: 5)
        #expect(abs(split.mlm! - exact.mlm!) < 1e-5 && abs(split.layers!.hidden - b.hidden) < 1e-5 * b.hidden)
        // More sequences asked for than the split has: all of it.
        let all = corpus.sequenceCount(.heldOut)
        #expect(try eval(batch: 4, sequences: all + 100).sequences == all)
    }

    /// `--init random`: BERT's initialisation, deterministic from the seed, shaped like the student.
    @Test func randomInitialisationIsBERTs() throws {
        let model = try Self.model()
        let a = try RandomInit.model(like: model, seed: 5), b = try RandomInit.model(like: model, seed: 5)
        let c = try RandomInit.model(like: model, seed: 6)
        let word = a.weights.embeddings.word.array
        #expect(word == b.weights.embeddings.word.array && word != c.weights.embeddings.word.array)
        let d = model.config.hiddenSize
        #expect(word[0..<d].allSatisfy { $0 == 0 }, "the padding row")
        let rest = word[d...].map(Double.init)
        let mean = rest.reduce(0, +) / Double(rest.count)
        let std = (rest.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(rest.count)).squareRoot()
        #expect(abs(mean) < 1e-3 && abs(std - 0.02) < 1e-3, "mean \(mean), std \(std)")
        let layer = a.weights.layers[1]
        #expect(layer.outputLayerNorm.gamma.array.allSatisfy { $0 == 1 } && layer.outputLayerNorm.beta.array.allSatisfy { $0 == 0 })
        #expect(layer.intermediate.bias.array.allSatisfy { $0 == 0 })
        #expect(a.config == model.config && a.weights.mlmHead?.isTied == true)
    }

    @Test func refusesMismatchedVocabularies() throws {
        let corpus = try Self.corpus()
        let tiny = try BertModel(checkpoint: Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors")))
        let error = #expect(throws: DistillError.self) {
            try Trainer(student: Self.model(), teacher: tiny, teacherSHA256: nil, vocab: nil, data: corpus, options: TrainerOptions())
        }
        #expect(error?.message.contains("vocabulary mismatch") == true)
        #expect(throws: DistillError.self) {
            try Trainer(student: tiny, teacher: nil, teacherSHA256: nil, vocab: nil, data: corpus, options: TrainerOptions())
        }
    }
}

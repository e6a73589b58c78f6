import HDTraining
import Foundation
import HDDistill
import HDErrors
import HDFormats
import HDModel
import HDTensor
import HDTestSupport
import Testing

/// Layer dropping (`--keep-layers`): the student is some of the teacher's layers, and student layer
/// j is distilled from teacher layer keep[j]. Teachers here have 3 layers (`TrainerTests.model`).
@Suite(.serialized) struct LayerDroppingTests {
    static let keep = [0, 2]

    static func mse(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) } / Double(a.count)
    }

    /// The student is the teacher's embeddings, its layers 0 and 2 renumbered 0 and 1, and its MLM
    /// head, sharing nothing it should not: same values, 2 layers in the config. Made of layer 0
    /// alone, its one hidden state equals the teacher's first, bit for bit.
    @Test func theStudentIsTheTeachersKeptLayers() throws {
        let teacher = try TrainerTests.model(seed: 9, layers: 3)
        let student = try LayerDropping.student(of: teacher, keeping: Self.keep)
        #expect(student.config.numHiddenLayers == 2)
        var expected = teacher.config
        expected.numHiddenLayers = 2
        #expect(student.config == expected)
        let s = try BertParameters.tensorSet(sharing: student).tensors, t = try BertParameters.tensorSet(sharing: teacher).tensors
        #expect(Set(s.keys).count == t.keys.count - 16, "one layer's 16 tensors fewer")
        for (j, i) in Self.keep.enumerated() {
            let from = BertNames.layer(i).prefix, to = BertNames.layer(j).prefix
            for (name, tensor) in t where name.hasPrefix(from) {
                #expect(s[to + name.dropFirst(from.count)]?.floats?.array == tensor.floats?.array, "\(name)")
            }
        }
        for name in [BertNames.wordEmbeddings, BertNames.embeddingsLayerNormWeight, BertNames.mlmTransformWeight, BertNames.mlmBias] {
            #expect(s[name]?.floats?.array == t[name]?.floats?.array, "\(name)")
        }
        #expect(student.weights.mlmHead?.isTied == true)

        let first = try LayerDropping.student(of: teacher, keeping: [0])
        let batch = try TokenBatch(ids: [[101, 2023, 2003, 1037, 3231, 102]])
        let a = try first.forward(batch, options: ForwardOptions(hiddenStates: true))
        let b = try teacher.forward(batch, options: ForwardOptions(hiddenStates: true))
        #expect(a.hiddenStates?[1] == b.hiddenStates?[1])
        // --init random draws a student of the same (shallower) shape.
        #expect(try RandomInit.model(like: student, seed: 3).config == student.config)
    }

    /// Lists that cannot map a student onto a 3-layer teacher, each refused naming the flag, the
    /// value and what is allowed.
    @Test(arguments: [([Int](), "none"), ([3], "found 3"), ([1, 1], "found 1 after 1"), ([2, 0], "found 0 after 2"), ([-1], "found -1")])
    func refusesMapsThatDoNotFit(_ layers: [Int], _ found: String) throws {
        let teacher = try TrainerTests.model(seed: 9, layers: 3)
        let error = #expect(throws: DistillError.self) { try LayerDropping.student(of: teacher, keeping: layers) }
        #expect(error?.field == "--keep-layers")
        #expect(error?.message.contains("0…2 (the teacher has 3 layers)") == true && error?.message.contains(found) == true, "\(error?.message ?? "")")
        #expect(LayerDropping.problem([0, 2], teacherDepth: 3) == nil)
        #expect(LayerDropping.parse("0,2") == [0, 2])
        for text in ["", "a", "1,", ",1", "1 ,2", "-1", "+1", "1;2", "99999999999999999999"] { #expect(LayerDropping.parse(text) == nil, "\(text)") }
    }

    /// The trainer's held-out layer terms and pooled cosine with the map [0, 2] equal the same
    /// figures computed here from the two models' forward activations: hidden MSE of student layer
    /// j against teacher layer keep[j] (projections at the identity), attention MSE likewise, the
    /// embeddings one to one, and the pooled cosine against the teacher's own last layer. A teacher
    /// without an MLM head, so the held-out batch is the text as it is.
    @Test func mappedTermsEqualADirectComputation() throws {
        let corpus = try TrainerTests.corpus()
        let teacher = try TrainerTests.model(seed: 9, layers: 3, mlmHead: false)
        let student = try TrainerTests.model(seed: 2, layers: 2, mlmHead: false)
        var options = TrainerOptions(batchSize: 4, alphaMLM: 0, alphaKL: 0, evalSequences: 4)
        options.alphaPooled = 1
        options.teacherLayers = Self.keep
        let trainer = try Trainer(student: student, teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus, options: options)
        let eval = try trainer.evaluate()
        let terms = try #require(eval.layers)

        var rng = Xoshiro256(seed: 0)
        let masking = try MLMMasking(specialIDs: corpus.specialIDs, vocabularySize: 30522)
        let batch = masking.batch(data: corpus, split: .heldOut, indices: [0, 1, 2, 3], masked: false, rng: &rng)
        let tokens = try TokenBatch(batchSize: 4, sequenceLength: batch.sequenceLength, ids: batch.ids.map(Int.init),
                                    tokenTypes: batch.tokenTypes.map(Int.init), attentionMask: batch.attentionMask.map(Int.init))
        let everything = ForwardOptions(hiddenStates: true, attentions: true)
        let s = try student.forward(tokens, options: everything), t = try teacher.forward(tokens, options: everything)
        let (sh, th, sa, ta) = try (#require(s.hiddenStates), #require(t.hiddenStates), #require(s.attentions), #require(t.attentions))
        let hidden = Self.keep.enumerated().reduce(0.0) { $0 + Self.mse(sh[$1.offset + 1], th[$1.element + 1]) }
        let attention = Self.keep.enumerated().reduce(0.0) { $0 + Self.mse(sa[$1.offset], ta[$1.element]) }
        let embedding = Self.mse(sh[0], th[0])
        #expect(abs(terms.hidden - hidden) <= 1e-5 * hidden, "\(terms.hidden) vs \(hidden)")
        #expect(abs(terms.attention - attention) <= 1e-5 * attention, "\(terms.attention) vs \(attention)")
        #expect(abs(terms.embedding - embedding) <= 1e-5 * embedding, "\(terms.embedding) vs \(embedding)")
        // The map matters: student layer 1 against teacher layer 1 gives figures ten times further off
        // than the tolerance above.
        let oneToOne = (hidden: Self.mse(sh[1], th[1]) + Self.mse(sh[2], th[2]), attention: Self.mse(sa[0], ta[0]) + Self.mse(sa[1], ta[1]))
        #expect(abs(oneToOne.hidden - hidden) > 1e-4 * hidden && abs(oneToOne.attention - attention) > 1e-4 * attention,
                "\(oneToOne) vs \(hidden), \(attention)")

        let (L, d) = (batch.sequenceLength, 32)
        var cosine = 0.0
        for b in 0..<4 {
            let real = (0..<L).filter { batch.attentionMask[b * L + $0] != 0 }
            func pooled(_ h: [Float]) -> [Double] {
                (0..<d).map { k in real.reduce(0.0) { $0 + Double(h[(b * L + $1) * d + k]) } / Double(real.count) }
            }
            let (x, y) = (pooled(sh[2]), pooled(th[3]))
            let dot = zip(x, y).reduce(0.0) { $0 + $1.0 * $1.1 }
            cosine += dot / (x.reduce(0.0) { $0 + $1 * $1 }.squareRoot() * y.reduce(0.0) { $0 + $1 * $1 }.squareRoot()) / 4
        }
        let pooledCosine = try #require(eval.pooledCosine)
        #expect(abs(pooledCosine - cosine) < 1e-5, "\(pooledCosine) vs \(cosine)")
    }

    /// The mapped hidden and attention terms through the whole trainer path, as in
    /// `TrainerTests.layerTermGradientMatchesFiniteDifferences`: the gradient the trainer applies (from
    /// AdamW's first moment, clipping off) agrees with central finite differences of the step's loss,
    /// for the largest entry of a projection and of two student tensors the term reaches.
    @Test(arguments: [TrainerTests.Term.hidden, .attention])
    func mappedTermGradientMatchesFiniteDifferences(_ term: TrainerTests.Term) throws {
        let corpus = try TrainerTests.corpus()
        var options = TrainerOptions(steps: 2, batchSize: 2, weightDecay: 0, clipNorm: 0, seed: 3, alphaMLM: 0, alphaKL: 0,
                                     alphaHidden: term == .hidden ? 1 : 0, alphaAttention: term == .attention ? 100 : 0, alphaEmbedding: 0)
        options.teacherLayers = [1, 2]
        let teacher = try TrainerTests.model(seed: 9, layers: 3)
        func trainer(_ resume: TrainingCheckpoint?) throws -> Trainer {
            let trainer = try Trainer(student: TrainerTests.model(seed: 2), teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus,
                                      options: options)
            return try resume.map { try TrainerTests.resuming(trainer, from: $0) } ?? trainer
        }
        let start = try trainer(nil).checkpoint()
        let stepped = try trainer(start)
        let report = try stepped.trainStep()
        let moments = stepped.checkpoint().adamM
        func gradient(_ key: String) throws -> [Float] { try #require(moments[key]?.floats?.array, "\(key)").map { $0 / Float(1 - 0.9) } }
        func loss(_ edit: (inout TrainingCheckpoint) -> Void) throws -> Double {
            var c = start
            edit(&c)
            return try trainer(c).trainStep().total
        }
        func perturb(_ tensors: inout [String: Tensor], _ name: String, _ i: Int, _ delta: Float) {
            var values = tensors[name]!.floats!.array
            values[i] += delta
            tensors[name] = Tensor(shape: tensors[name]!.shape, floats: values)
        }
        func check(_ name: String, in family: WritableKeyPath<TrainingCheckpoint, [String: Tensor]>, key: String, h: Float) throws {
            let g = try gradient(key)
            let i = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            let numeric = (try loss { perturb(&$0[keyPath: family], name, i, h) } - loss { perturb(&$0[keyPath: family], name, i, -h) }) / Double(2 * h)
            #expect(abs(numeric - Double(g[i])) <= 0.02 * abs(numeric) + 1e-6 * abs(report.total),
                    "\(term) \(name)[\(i)]: analytic \(g[i]), finite differences \(numeric)")
            #expect(abs(numeric) > 1e-4 * abs(report.total), "\(term) \(name)[\(i)]: a gradient too small to check")
        }
        if term == .hidden { try check("hidden.1", in: \.projections, key: "hd.proj.hidden.1", h: 1e-2) }
        let weights = term == .hidden ? [BertNames.layer(0).valueWeight, BertNames.layer(1).intermediateWeight]
                                      : [BertNames.layer(0).intermediateWeight, BertNames.layer(1).keyWeight]
        for name in weights { try check(name, in: \.weights, key: name, h: 1e-3) }
    }

    /// A layer-dropping run stopped after 3 steps and resumed from its checkpoint file ends
    /// bit-identical to one that went straight through; the checkpoint records the map
    /// (`hd.teacher_layers`), and a resume with another map, or none, is refused naming it.
    @Test func resumeContinuesExactlyWithTheSameMap() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let corpus = try TrainerTests.corpus()
        let teacher = try TrainerTests.model(seed: 9, layers: 3)
        let sha = String(repeating: "0f", count: 32)
        var options = TrainerOptions(steps: 6, batchSize: 4, accumulate: 2, learningRate: 1e-3, warmupSteps: 2, seed: 8)
        options.teacherLayers = Self.keep
        func fresh(_ options: TrainerOptions, keep: [Int] = Self.keep) throws -> Trainer {
            try Trainer(student: LayerDropping.student(of: teacher, keeping: keep), teacher: teacher, teacherSHA256: sha, vocab: nil,
                        data: corpus, options: options)
        }
        let straight = try fresh(options)
        while !straight.isFinished { _ = try straight.trainStep() }
        let path = dir + "/student.ckpt"
        do {
            let interrupted = try fresh(options)
            for _ in 0..<3 { _ = try interrupted.trainStep() }
            try interrupted.checkpoint().write(to: path)
        }
        #expect(try SafeTensors.metadata(path: path)["hd.teacher_layers"] == "0,2")
        let saved = try TrainingCheckpoint.read(path: path)
        #expect(saved.state.teacherLayers == Self.keep && saved.config.numHiddenLayers == 2)
        let resumed = try TrainerTests.resuming(fresh(options), from: saved)
        while !resumed.isFinished { _ = try resumed.trainStep() }
        let a = straight.checkpoint(), b = resumed.checkpoint()
        #expect(TrainerTests.bits(a) == TrainerTests.bits(b))
        #expect(a.state == b.state)
        #expect(Set(a.projections.keys) == ["embeddings", "hidden.0", "hidden.1"])
        #expect(a.projections.mapValues { $0.floats?.array.map(\.bitPattern) ?? [] } == b.projections.mapValues { $0.floats?.array.map(\.bitPattern) ?? [] })

        var other = options
        other.teacherLayers = [1, 2]
        let moved = #expect(throws: DistillError.self) { try TrainerTests.resuming(fresh(other, keep: [1, 2]), from: saved) }
        #expect(moved?.message.contains("hd.teacher_layers") == true && moved?.message.contains("0,2") == true, "\(moved?.message ?? "")")
        other.teacherLayers = nil
        let none = #expect(throws: DistillError.self) {
            try TrainerTests.resuming(Trainer(student: teacher, teacher: teacher, teacherSHA256: sha, vocab: nil, data: corpus, options: other), from: saved)
        }
        #expect(none?.message.contains("pass --keep-layers 0,2") == true, "\(none?.message ?? "")")
        // A teacher too shallow for the recorded map: named before anything is built.
        let shallow = #expect(throws: DistillError.self) { try saved.state.checkTeacherLayers(teacherDepth: 2, file: path) }
        #expect(shallow?.message.contains("teacher layer 2") == true, "\(shallow?.message ?? "")")
    }

    /// Without a map, a student of another depth is refused (layers match one to one); a map needs a
    /// teacher and one entry per student layer.
    @Test func refusesAMapThatDoesNotFitTheModels() throws {
        let corpus = try TrainerTests.corpus()
        let teacher = try TrainerTests.model(seed: 9, layers: 3), student = try TrainerTests.model(seed: 2)
        let depth = #expect(throws: DistillError.self) {
            try Trainer(student: student, teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus, options: TrainerOptions())
        }
        #expect(depth?.message.contains("depth mismatch") == true)
        var options = TrainerOptions()
        options.teacherLayers = [2]
        let count = #expect(throws: DistillError.self) {
            try Trainer(student: student, teacher: teacher, teacherSHA256: nil, vocab: nil, data: corpus, options: options)
        }
        #expect(count?.message.contains("one teacher layer per student layer (2)") == true)
        options.teacherLayers = [0, 1]
        #expect(throws: DistillError.self) {
            try Trainer(student: student, teacher: nil, teacherSHA256: nil, vocab: nil, data: corpus, options: options)
        }
    }

    /// `hd.teacher_layers` that is not a strictly increasing list, or not one entry per student
    /// layer, is refused by the checkpoint reader.
    @Test(arguments: ["", "1,1", "a", "2,1", "0", "0,1,2"])
    func refusesABadRecordedMap(_ text: String) throws {
        var set = try TrainingCheckpointTests.student().tensorSet
        set.metadata["hd.teacher_layers"] = text
        let error = #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(set, file: "x.ckpt") } as? any HDError
        #expect(error?.kindName == "badMetadata" && error?.message.contains("hd.teacher_layers") == true, "\(text): \(error?.message ?? "")")
        set.metadata["hd.teacher_layers"] = "1,4"
        #expect(try TrainingCheckpoint.decode(set, file: "x.ckpt").state.teacherLayers == [1, 4])
    }
}

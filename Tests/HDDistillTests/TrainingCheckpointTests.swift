import HDTraining
import Foundation
import HDDistill
import HDErrors
import HDFormats
import HDModel
import HDTensor
import HDTraining
import HDTestSupport
import Testing

@Suite struct TrainingCheckpointTests {
    /// The tiny fixture model as a student at step 7, with moments, a projection, a mask and an
    /// importance buffer, all with distinct values so a swapped tensor would show.
    static func student() throws -> TrainingCheckpoint {
        let teacher = try Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors"))
        var weights = teacher.tensors.tensors
        weights[BertNames.positionIds] = nil
        var m: [String: Tensor] = [:], v: [String: Tensor] = [:]
        var seed: UInt64 = 1
        func noise(_ shape: [Int]) -> Tensor {
            seed += 1
            var rng = Xoshiro256(seed: seed)
            let n = shape.reduce(1, *)
            return Tensor(shape: shape, floats: (0..<n).map { _ in rng.nextUnitFloat() - 0.5 })
        }
        let d = teacher.config.hiddenSize
        let projections = ["hidden.0": noise([d, d]), "embeddings": noise([d, d])]
        for (name, t) in weights where !StudentCheckpoint.frozenNames(in: weights).contains(name) { m[name] = noise(t.shape); v[name] = noise(t.shape) }
        for (name, t) in projections { m["hd.proj." + name] = noise(t.shape); v["hd.proj." + name] = noise(t.shape) }
        let state = TrainingState(step: 7, rng: Xoshiro256(seed: 5).stateWords, dataSeed: 0xDEAD_BEEF, dataEpoch: 2,
                                  dataPosition: 13, recipe: ["lr": "5e-4", "alpha_kl": "1"],
                                  teacherSHA256: String(repeating: "ab", count: 32))
        return TrainingCheckpoint(config: teacher.config, vocab: teacher.vocab, weights: weights, projections: projections,
                                 adamM: m, adamV: v, masks: ["hidden": Tensor(shape: [d], int64s: (0..<d).map { Int64($0 % 3 == 0 ? 0 : 1) })],
                                 importance: ["hidden": noise([d])], state: state)
    }

    static func bits(_ t: Tensor) -> [UInt32] { t.floats.map { $0.buffer.map(\.bitPattern) } ?? [] }

    @Test func roundTripIsBitExact() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let original = try Self.student()
        let path = dir + "/student.ckpt"
        try original.write(to: path)
        let back = try TrainingCheckpoint.read(path: path)
        #expect(back.config == original.config && back.vocab == original.vocab && back.state == original.state)
        for (a, b) in [(original.weights, back.weights), (original.projections, back.projections), (original.adamM, back.adamM),
                       (original.adamV, back.adamV), (original.importance, back.importance)] {
            #expect(Set(a.keys) == Set(b.keys))
            for (name, t) in a { #expect(b[name]?.shape == t.shape && Self.bits(b[name]!) == Self.bits(t), "\(name)") }
        }
        if case .int64(let mask) = back.masks["hidden"]?.values { #expect(mask.count == original.config.hiddenSize) } else { Issue.record("mask lost") }
        // Same content, same bytes.
        let first = try Data(contentsOf: URL(fileURLWithPath: path))
        try back.write(to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == first)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir)).contains { $0.contains(".tmp-") })
    }

    enum Bad: String, CaseIterable, CustomTestStringConvertible {
        case missingMoment, extraMoment, momentShape, missingWeight, weightShape, unknownFamily, strayTensor
        case projectionShape, projectionWithoutMoment, wrongKind, badConfig, badStep, badRNG, zeroRNG, badData, badRecipe, badTeacher
        case maskValue, maskAllPruned, maskFloat, nonFinite, vocabLength
        var testDescription: String { rawValue }
    }

    @Test(arguments: Bad.allCases)
    func refusesBadCheckpoints(_ bad: Bad) throws {
        var set = try Self.student().tensorSet
        let q = BertNames.layer(0).queryWeight
        // The model layer (StudentCheckpoint) refuses what concerns the model, the trainer the rest.
        let expected: String
        switch bad {
        case .missingMoment: set["hd.adam.v." + q] = nil; expected = "missingTensor"
        case .extraMoment: set["hd.adam.m.hd.proj.nothing"] = Tensor(shape: [2], floats: [0, 0]); expected = "unexpectedTensor"
        case .momentShape: set["hd.adam.m." + q] = Tensor(shape: [2], floats: [0, 0]); expected = "shapeMismatch"
        case .missingWeight: set[q] = nil; expected = "missingTensor"
        case .weightShape: set[q] = Tensor(shape: [3], floats: [0, 0, 0]); expected = "shapeMismatch"
        case .unknownFamily: set["hd.secret.x"] = Tensor(shape: [1], floats: [0]); expected = "unexpectedTensor"
        case .strayTensor: set["bert.extra.weight"] = Tensor(shape: [1], floats: [0]); expected = "unexpectedTensor"
        case .projectionShape: set["hd.proj.hidden.0"] = Tensor(shape: [2, 2], floats: [1, 0, 0, 1]); expected = "shapeMismatch"
        case .projectionWithoutMoment: set["hd.adam.m.hd.proj.embeddings"] = nil; expected = "missingTensor"
        case .wrongKind: set.metadata["hd.kind"] = "teacher"; expected = "badMetadata"
        case .badConfig: set.metadata["hd.config"] = nil; expected = "badMetadata"
        case .badStep: set.metadata["hd.step"] = "-1"; expected = "badMetadata"
        case .badRNG: set.metadata["hd.rng"] = "1 2 3"; expected = "badMetadata"
        case .zeroRNG: set.metadata["hd.rng"] = Array(repeating: String(repeating: "0", count: 16), count: 4).joined(separator: " "); expected = "badMetadata"
        case .badData: set.metadata["hd.data"] = "{\"epoch\":1.5,\"position\":0,\"seed\":\"0000000000000001\"}"; expected = "badMetadata"
        case .badRecipe: set.metadata["hd.recipe"] = "[1,2]"; expected = "badMetadata"
        case .badTeacher: set.metadata["hd.teacher.sha256"] = "XYZ"; expected = "badMetadata"
        case .maskValue: set["hd.mask.hidden"] = Tensor(shape: [2], int64s: [1, 2]); expected = "badMask"
        case .maskAllPruned: set["hd.mask.hidden"] = Tensor(shape: [2], int64s: [0, 0]); expected = "badMask"
        case .maskFloat: set["hd.mask.hidden"] = Tensor(shape: [2], floats: [1, 0]); expected = "badMask"
        case .nonFinite: set["hd.importance.hidden"] = Tensor(shape: [2], floats: [1, .infinity]); expected = "nonFinite"
        case .vocabLength: set.metadata["hd.vocab"] = "a\nb"; expected = "badMetadata"
        }
        let error = #expect(throws: (any Error).self) { try TrainingCheckpoint.decode(set, file: "x.ckpt") } as? any HDError
        #expect(error?.kindName == expected, "\(error?.message ?? "")")
        #expect(error?.file == "x.ckpt")
    }

    /// Through the file: a bad set is refused before anything is written, and the old file stays.
    @Test func invalidCheckpointIsNotWritten() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let good = try Self.student()
        let path = dir + "/student.ckpt"
        try good.write(to: path)
        var bad = good
        bad.adamV[BertNames.layer(1).keyBias] = nil
        #expect(throws: DistillError.self) { try bad.write(to: path) }
        #expect(try TrainingCheckpoint.read(path: path).state == good.state)
    }

    @Test func logLinesAreJSON() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/log.jsonl"
        do {
            let log = try TrainingLog(path: path, append: false)
            try log.write(["step": .int(1), "loss": .number(2.5), "kind": .text("train \"q\"\n")])
            try log.write(["step": .int(2), "loss": .number(.nan)])
        }
        let resumed = try TrainingLog(path: path, append: true)
        try resumed.write(["step": .int(3)])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0] == #"{"kind":"train \"q\"\n","loss":2.5,"step":1}"#)
        for line in lines { #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any]) }
        #expect(lines[1].contains(#""loss":"NaN""#))
    }
}

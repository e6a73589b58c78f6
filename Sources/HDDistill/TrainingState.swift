import Foundation

/// Everything besides tensors that a resumed run needs to continue exactly, as it sits in the
/// `__metadata__` of `student.ckpt` (docs/FORMATS.md): plain strings and JSON, so any language can
/// read and write it.
public struct TrainingState: Sendable, Equatable {
    /// Optimiser updates done.
    public var step: Int
    /// The masking generator's four xoshiro256** words.
    public var rng: [UInt64]
    /// The data order: its seed, epoch and position in the epoch (`DataOrder`).
    public var dataSeed: UInt64
    public var dataEpoch: Int
    public var dataPosition: Int
    /// The run's flags (`--lr`, `--alpha-kl`, …) as strings, so a resume can refuse a different recipe.
    public var recipe: [String: String]
    /// sha256 of the teacher file; nil for `--mlm-only` and self-distilled runs.
    public var teacherSHA256: String?
    /// Threads the run computed with (`hd.threads`). The parallel passes split their sums by the
    /// thread count and OpenBLAS's do too, so results are bit-exact per count only: a resume with
    /// another count is refused (`checkResume`). Nil in checkpoints written before it was recorded.
    public var threads: Int?
    /// The teacher layer each student layer is distilled from (`hd.teacher_layers`, "1,3,5"): a
    /// layer-dropping run's map (`TrainerOptions.teacherLayers`); nil matches layers one to one.
    public var teacherLayers: [Int]?

    public init(step: Int = 0, rng: [UInt64], dataSeed: UInt64, dataEpoch: Int = 0, dataPosition: Int = 0,
                recipe: [String: String] = [:], teacherSHA256: String? = nil, threads: Int? = nil, teacherLayers: [Int]? = nil) {
        self.step = step
        self.rng = rng
        self.dataSeed = dataSeed
        self.dataEpoch = dataEpoch
        self.dataPosition = dataPosition
        self.recipe = recipe
        self.teacherSHA256 = teacherSHA256
        self.threads = threads
        self.teacherLayers = teacherLayers
    }

    public enum Key {
        public static let step = "hd.step"
        public static let rng = "hd.rng"
        public static let data = "hd.data"
        public static let recipe = "hd.recipe"
        public static let teacher = "hd.teacher.sha256"
        public static let threads = "hd.threads"
        public static let teacherLayers = "hd.teacher_layers"
    }

    public var metadata: [String: String] {
        var m = [
            Key.step: String(step),
            Key.rng: rng.map(Self.hex).joined(separator: " "),
            Key.data: "{\"epoch\":\(dataEpoch),\"position\":\(dataPosition),\"seed\":\"\(Self.hex(dataSeed))\"}",
            Key.recipe: Self.json(recipe),
        ]
        if let teacherSHA256 { m[Key.teacher] = teacherSHA256 }
        if let threads { m[Key.threads] = String(threads) }
        if let teacherLayers { m[Key.teacherLayers] = LayerDropping.text(teacherLayers) }
        return m
    }

    /// Parses and checks every field; `file` is named in each error.
    public init(metadata m: [String: String], file: String) throws {
        func bad(_ key: String, _ expected: String, _ found: String?) -> DistillError {
            DistillError(.badMetadata, file: file, "metadata \(key): expected \(expected), found \(found.map { "\"\($0.prefix(80))\"" } ?? "nothing")")
        }
        guard let stepText = m[Key.step], let step = Int(stepText), step >= 0 else {
            throw bad(Key.step, "a non-negative decimal integer", m[Key.step])
        }
        let parts = (m[Key.rng] ?? "").split(separator: " ", omittingEmptySubsequences: false)
        let rng = parts.compactMap { Self.parseHex(String($0)) }
        guard parts.count == 4, rng.count == 4, rng.contains(where: { $0 != 0 }) else {
            throw bad(Key.rng, "four 16-digit hex words separated by spaces, not all zero", m[Key.rng])
        }
        guard let dataText = m[Key.data],
              let object = try? JSONSerialization.jsonObject(with: Data(dataText.utf8)) as? [String: Any],
              Set(object.keys) == ["epoch", "position", "seed"],
              let epoch = (object["epoch"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }), epoch >= 0,
              let position = (object["position"] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }), position >= 0,
              let seedText = object["seed"] as? String, let seed = Self.parseHex(seedText) else {
            throw bad(Key.data, "{\"epoch\": n ≥ 0, \"position\": n ≥ 0, \"seed\": 16 hex digits}", m[Key.data])
        }
        guard let recipeText = m[Key.recipe],
              let recipe = try? JSONDecoder().decode([String: String].self, from: Data(recipeText.utf8)) else {
            throw bad(Key.recipe, "a JSON object of strings", m[Key.recipe])
        }
        let teacher = m[Key.teacher]
        if let teacher, !(teacher.utf8.count == 64 && teacher.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })) {
            throw bad(Key.teacher, "64 lowercase hex digits", teacher)
        }
        var threads: Int?
        if let text = m[Key.threads] {
            guard let count = Int(text), count > 0, String(count) == text else { throw bad(Key.threads, "a positive decimal integer", text) }
            threads = count
        }
        var teacherLayers: [Int]?
        if let text = m[Key.teacherLayers] {
            // The range is the teacher's to judge (`Trainer.restore` compares the map with the run's).
            guard let layers = LayerDropping.parse(text), !layers.isEmpty, zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw bad(Key.teacherLayers, "strictly increasing teacher layer indices separated by commas, such as \"1,3,5\"", text)
            }
            teacherLayers = layers
        }
        self.init(step: step, rng: rng, dataSeed: seed, dataEpoch: epoch, dataPosition: position,
                  recipe: recipe, teacherSHA256: teacher, threads: threads, teacherLayers: teacherLayers)
    }

    /// Refuses to continue this state with `threads` threads when it was computed with another count
    /// (the message names both and what to pass).
    public func checkResume(threads now: Int, file: String) throws {
        guard let threads, threads != now else { return }
        throw DistillError(.badMetadata, file: file,
            "resume: metadata \(Key.threads): the checkpoint was trained with \(threads) thread\(threads == 1 ? "" : "s"), this run uses \(now); "
            + "its sums are split by the thread count, so it would not continue exactly: pass --threads \(threads)")
    }

    /// Refuses to continue a layer-dropping state with a teacher too shallow for its map (another
    /// teacher than the run's), before the run's own `--keep-layers` is judged against that teacher.
    public func checkTeacherLayers(teacherDepth: Int, file: String) throws {
        guard let teacherLayers, let deepest = teacherLayers.last, deepest >= teacherDepth else { return }
        throw DistillError(.badMetadata, file: file, field: Key.teacherLayers,
            "resume: metadata \(Key.teacherLayers) \"\(LayerDropping.text(teacherLayers))\": the checkpoint's student learns from teacher layer \(deepest), "
            + "and TEACHER has \(teacherDepth) layers (0…\(teacherDepth - 1)); resume with the teacher the run started from")
    }

    static func hex(_ x: UInt64) -> String {
        let digits = String(x, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Exactly 16 lowercase hex digits (`UInt64(_:radix:)` alone would also take a sign or fewer digits).
    static func parseHex(_ text: String) -> UInt64? {
        guard text.utf8.count == 16, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        return UInt64(text, radix: 16)
    }

    static func json(_ map: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(map)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

import Foundation
import HDModel
import HDRuntime

extension Compare {
    /// What `compare` prints: the table, or with --json these fields.
    struct Report: Encodable {
        struct Model: Encodable {
            var model: String
            var hiddenSize: Int
            var layers: Int
            var params: Int
            var flopsPer128TokenSequence: Int
            var latencyMs: LatencySummary
            var latencySamplesMs: [Double]

            init(_ checkpoint: Checkpoint, samples: [Double]) {
                model = checkpoint.source
                hiddenSize = checkpoint.config.hiddenSize
                layers = checkpoint.config.numHiddenLayers
                params = checkpoint.size.parameters
                flopsPer128TokenSequence = checkpoint.size.flopsPer128TokenSequence
                latencyMs = LatencySummary(samples: samples)
                latencySamplesMs = samples
            }

            enum CodingKeys: String, CodingKey {
                case model, layers, params
                case hiddenSize = "hidden_size", flopsPer128TokenSequence = "flops_per_128_token_sequence"
                case latencyMs = "latency_ms", latencySamplesMs = "latency_samples_ms"
            }
        }

        /// The student's figures over the teacher's.
        struct Fraction: Encodable {
            var params, flops, p50: Double
        }

        var teacher, student: Model
        var studentFraction: Fraction
        /// The teacher's p50 over the student's.
        var speedup: Double
        var batch, seqLen, threads, warmup, iterations: Int
        var precision: String
        var sentences: CompareQuality.SentenceCosine?
        var pairs: CompareQuality.PairAUC?
        var classification: CompareQuality.Classification?

        init(teacher: Model, student: Model, batch: Int, seqLen: Int, threads: Int, warmup: Int, iterations: Int, precision: String) {
            self.teacher = teacher
            self.student = student
            studentFraction = Fraction(params: Double(student.params) / Double(teacher.params),
                                       flops: Double(student.flopsPer128TokenSequence) / Double(teacher.flopsPer128TokenSequence),
                                       p50: student.latencyMs.p50 / teacher.latencyMs.p50)
            speedup = teacher.latencyMs.p50 / student.latencyMs.p50
            (self.batch, self.seqLen, self.threads, self.warmup, self.iterations, self.precision) = (batch, seqLen, threads, warmup, iterations, precision)
        }

        enum CodingKeys: String, CodingKey {
            case teacher, student, speedup, batch, threads, warmup, iterations, precision, sentences, pairs, classification
            case studentFraction = "student_fraction", seqLen = "seq_len"
        }

        func printTable() {
            func f(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }
            func describe(_ m: Model) -> String { "\(m.model) (hidden \(m.hiddenSize), \(m.layers) layers)" }
            print("teacher  \(describe(teacher))")
            print("student  \(describe(student))")
            print("latency  batch \(batch) × \(seqLen) tokens, \(threads) threads, \(precision); \(iterations) forwards of each in turns after \(warmup) warm-up")
            print("")
            var rows: [[String]] = [["", "teacher", "student", "student/teacher"]]
            rows.append(["parameters", String(format: "%.2f M", Double(teacher.params) / 1e6), String(format: "%.2f M", Double(student.params) / 1e6),
                         f(studentFraction.params, 3)])
            rows.append(["GFLOP / 128-token seq", f(Double(teacher.flopsPer128TokenSequence) / 1e9, 3),
                         f(Double(student.flopsPer128TokenSequence) / 1e9, 3), f(studentFraction.flops, 3)])
            rows.append(["p50 latency ms", f(teacher.latencyMs.p50, 2), f(student.latencyMs.p50, 2), f(studentFraction.p50, 3)])
            rows.append(["p90 latency ms", f(teacher.latencyMs.p90, 2), f(student.latencyMs.p90, 2),
                         f(student.latencyMs.p90 / teacher.latencyMs.p90, 3)])
            rows.append(["speed-up", "", f(speedup, 2) + "×", ""])
            var notes: [String] = []
            if let s = sentences {
                rows.append(["cosine to teacher", "1", "\(f(s.mean)) ± \(f(s.std))", f(s.mean)])
                notes.append("cosine to teacher: \(s.sentences) sentences of \(s.file), min \(f(s.min)), over \(s.keptDims ? "the \(s.comparedDims) teacher dimensions the student kept (hd.kept.hidden)" : "all \(s.comparedDims) dimensions")")
            }
            if let p = pairs {
                rows.append(["pair AUC", f(p.teacher), f(p.student), f(p.student / p.teacher, 3)])
                notes.append("pair AUC: cosine(premise, hypothesis), \(p.entailment) entailment against \(p.contradiction) contradiction pairs of \(p.file) (\(p.skipped) other rows left out); 0.5 is chance")
            }
            if let c = classification {
                rows.append(["accuracy", f(c.teacher.accuracy), f(c.student.accuracy), f(c.student.accuracy / c.teacher.accuracy, 3)])
                rows.append(["macro-F1", f(c.teacher.macroF1), f(c.student.macroF1), f(c.student.macroF1 / c.teacher.macroF1, 3)])
                rows.append(["label agreement", "", f(c.agreement), ""])
                notes.append("accuracy, macro-F1: \(c.examples) examples of \(c.file), labels \(c.labels.joined(separator: ", "))")
            }
            let widths = (0..<4).map { i in rows.map { $0[i].count }.max()! + 2 }
            for row in rows {
                let line = zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined()
                print(line.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
            }
            if !notes.isEmpty { print("") }
            for note in notes { print(note) }
        }
    }
}

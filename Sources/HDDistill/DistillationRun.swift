import HDTraining
import Foundation
import HDModel

/// A whole training run with the cadence every caller gets, the command-line tool included: an
/// evaluation of a fresh run before its first step, then per step a log record and the progress
/// line, an evaluation every `evalEvery` steps and at the end, the checkpoint written (atomically)
/// every `saveEvery` steps and at the end, and a closing summary record.
public final class DistillationRun {
    public let trainer: Trainer
    /// Where the checkpoint goes.
    public let output: String
    /// Evaluate every N steps (0: only at the end); no evaluation when the held-out split is empty.
    public let evalEvery: Int
    /// Write the checkpoint every N steps (0: only at the end).
    public let saveEvery: Int
    public let log: TrainingLog?
    public let progress: ProgressLine?

    public init(trainer: Trainer, output: String, evalEvery: Int, saveEvery: Int, log: TrainingLog?,
                progress: ProgressLine?) {
        self.trainer = trainer
        self.output = output
        self.evalEvery = evalEvery
        self.saveEvery = saveEvery
        self.log = log
        self.progress = progress
    }

    /// What the run did: training throughput counts the optimiser steps only (not loading,
    /// tokenising, evaluation or checkpoints), so it compares with a peer's timed training loop.
    public struct Summary: Sendable {
        public var step: Int
        public var stepsRun: Int
        public var tokens: Int
        public var trainSeconds: Double
        public var tokensPerSecond: Double { trainSeconds > 0 ? Double(tokens) / trainSeconds : 0 }
    }

    public func run() throws -> Summary {
        let evaluates = trainer.data.sequenceCount(.heldOut) > 0
        let startStep = trainer.step
        // The starting point of the curves: a fresh run is evaluated once before its first step.
        if trainer.step == 0 && evaluates && evalEvery > 0 { try evaluate() }
        var seconds = 0.0, tokens = 0
        while !trainer.isFinished {
            let started = ContinuousClock.now
            let r = try trainer.trainStep()
            let elapsed = ContinuousClock.now - started
            let stepSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            seconds += stepSeconds
            tokens += r.tokens
            try log?.write(r.logRecord(stepSeconds: stepSeconds))
            progress?.update(r)
            if (evalEvery > 0 && r.step % evalEvery == 0) || trainer.isFinished, evaluates { try evaluate() }
            if (saveEvery > 0 && r.step % saveEvery == 0) || trainer.isFinished { try trainer.checkpoint().write(to: output) }
        }
        progress?.finish()
        return Summary(step: trainer.step, stepsRun: trainer.step - startStep, tokens: tokens, trainSeconds: seconds)
    }

    /// The closing log record: throughput, peak memory (measured by the caller) and the run's threads.
    public func writeSummary(_ s: Summary, peakResidentMiB: Double) throws {
        try log?.write(["kind": .text("summary"), "step": .int(s.step), "tokens": .int(s.tokens),
                        "train_seconds": .number(s.trainSeconds), "tokens_per_second": .number(s.tokensPerSecond),
                        "peak_rss_mib": .number(peakResidentMiB), "threads": .int(trainer.options.threads)])
    }

    private func evaluate() throws {
        let e = try trainer.evaluate()
        try log?.write(e.logRecord)
        progress?.report(e)
    }
}

extension StepReport {
    /// The step's `train` record of the JSON Lines log (docs/CLI.md lists the keys).
    public func logRecord(stepSeconds: Double) -> [String: LogValue] {
        var record: [String: LogValue] = ["kind": .text("train"), "step": .int(step), "lr": .number(Double(learningRate)),
                                          "loss": .number(total), "grad_norm": .number(gradientNorm),
                                          "step_seconds": .number(stepSeconds)]
        if let mlm { record["mlm"] = .number(mlm) }
        if let pooled { record["pooled"] = .number(pooled) }
        LayerTerms.add(kl: kl, layers: layers, to: &record)
        if let crossCorrelation { record["cc"] = .number(crossCorrelation) }
        if let pruneSeconds { record["prune_seconds"] = .number(pruneSeconds) }
        if let size {
            record["width_hidden"] = .int(size.hidden)
            record["width_ffn"] = .int(size.ffn)
            record["width_head"] = .int(size.headSize)
            record["parameters"] = .int(size.size.parameters)
            record["flops_per_128_token_sequence"] = .int(size.size.flopsPer128TokenSequence)
        }
        return record
    }
}

extension EvalReport {
    /// The evaluation's `eval` record of the JSON Lines log.
    public var logRecord: [String: LogValue] {
        var record: [String: LogValue] = ["kind": .text("eval"), "step": .int(step), "sequences": .int(sequences)]
        let optional: [(String, Double?)] = [("mlm", mlm), ("accuracy", accuracy), ("pooled_cosine", pooledCosine),
                                             ("task_accuracy", taskAccuracy), ("teacher_task_accuracy", teacherTaskAccuracy)]
        for case let (key, value?) in optional { record[key] = .number(value) }
        LayerTerms.add(kl: kl, layers: layers, to: &record)
        return record
    }
}

extension LayerTerms {
    static func add(kl: Double?, layers: LayerTerms?, to record: inout [String: LogValue]) {
        if let kl { record["kl"] = .number(kl) }
        if let layers {
            record["hidden"] = .number(layers.hidden)
            record["attention"] = .number(layers.attention)
            record["embedding"] = .number(layers.embedding)
        }
    }
}

/// The progress of a run on stderr: one refreshed line on a terminal (step, losses, widths,
/// tokens/s, ETA); elsewhere (a log file, CI) a plain line every 10 % of the steps.
public final class ProgressLine {
    public let total: Int
    public let startStep: Int
    private let start = ContinuousClock.now
    private let isTerminal: Bool
    private var tokens = 0

    public init(total: Int, startStep: Int, isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total
        self.startStep = startStep
        self.isTerminal = isTerminal
    }

    public func update(_ r: StepReport) {
        tokens += r.tokens
        let e = ContinuousClock.now - start
        let elapsed = Double(e.components.seconds) + Double(e.components.attoseconds) * 1e-18
        let done = r.step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - r.step) : 0
        let line = String(format: "step %d/%d", r.step, total) + (r.mlm.map { String(format: "  mlm %.4f", $0) } ?? "")
            + Self.terms(kl: r.kl, layers: r.layers)
            + (r.crossCorrelation.map { String(format: "  cc %.4f", $0) } ?? "")
            + (r.pooled.map { String(format: "  1-cos %.4f", $0) } ?? "")
            + (r.size.map { String(format: "  width %d/%d/%d  %.2fM params  %.2f GFLOP/seq", $0.hidden, $0.ffn, $0.headSize,
                                   Double($0.size.parameters) / 1e6, Double($0.size.flopsPer128TokenSequence) / 1e9) } ?? "")
            + String(format: "  loss %.4f  |g| %.3f  lr %.2e  %.0f tok/s  ETA %.0fs",
                     r.total, r.gradientNorm, r.learningRate, Double(tokens) / max(elapsed, 1e-9), eta)
        if isTerminal {
            write("\r\u{1B}[K" + line)
        } else if r.step == total || r.step % max(1, total / 10) == 0 {
            write(line + "\n")
        }
    }

    public func report(_ e: EvalReport) {
        var figures = ""
        if let mlm = e.mlm, let accuracy = e.accuracy { figures += String(format: "  held-out mlm %.4f  top-1 %.3f", mlm, accuracy) }
        if let cosine = e.pooledCosine { figures += String(format: "  pooled cosine %.4f", cosine) }
        if let accuracy = e.taskAccuracy, let teacher = e.teacherTaskAccuracy {
            figures += String(format: "  dev accuracy %.4f (teacher %.4f)", accuracy, teacher)
        }
        write((isTerminal ? "\r\u{1B}[K" : "") + "eval step \(e.step):" + figures
              + Self.terms(kl: e.kl, layers: e.layers) + "  (\(e.sequences) sequences)\n")
    }

    public func finish() { if isTerminal { write("\n") } }

    /// " kl … hid … att … emb …" for the terms a run has (unweighted, as logged).
    static func terms(kl: Double?, layers: LayerTerms?) -> String {
        var out = kl.map { String(format: "  kl %.4f", $0) } ?? ""
        if let layers { out += String(format: "  hid %.4f  att %.2e  emb %.4f", layers.hidden, layers.attention, layers.embedding) }
        return out
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}

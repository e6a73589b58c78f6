import Foundation
import HDFinetune

/// The run's progress on stderr: one refreshed line on a terminal (epoch, step, loss, examples/s,
/// ETA); elsewhere (a log file, CI) nothing but the per-epoch dev lines.
final class FinetuneProgress {
    let total: Int
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let start = ContinuousClock.now

    init(total: Int) { self.total = total }

    func update(_ s: FinetuneStep, examplesPerSecond: Double) {
        guard isTerminal else { return }
        let elapsed = (ContinuousClock.now - start).seconds
        let eta = elapsed / Double(s.step) * Double(total - s.step)
        write(String(format: "\r\u{1B}[Kepoch %d  step %d/%d  loss %.4f  lr %.2e  %.1f examples/s  ETA %.0fs",
                     s.epoch, s.step, total, s.loss, s.learningRate, examplesPerSecond, eta))
    }

    func report(_ r: EpochResult) {
        let figures = r.accuracy.map { String(format: "accuracy %.4f  macro-F1 %.4f  ", $0, r.macroF1 ?? 0) } ?? ""
        write((isTerminal ? "\r\u{1B}[K" : "") + String(format: "epoch %d: dev %@loss %.4f\n", r.epoch, figures, r.loss))
    }

    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}

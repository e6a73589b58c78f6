import Foundation
import HDDistill
import Testing

/// Opt-in measurement on a real corpus: `HD_CORPUS=/path/a.txt[:/path/b.txt] swift test --filter CorpusMemory`.
/// Prints tokens, bytes of ids, wall time and the process's peak RSS; checks ids cost 2 bytes a token.
@Suite struct CorpusMemoryTests {
    static let files = ProcessInfo.processInfo.environment["HD_CORPUS"]?.split(separator: ":").map(String.init)

    @Test(.enabled(if: files != nil)) func realCorpusStaysCompact() throws {
        let start = Date()
        let corpus = try Corpus(files: Self.files ?? [], tokenizer: CorpusTests.tokenizer,
                                options: CorpusOptions(sequenceLength: 128))
        let seconds = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let tokens = corpus.train.count + corpus.heldOut.count
        let idBytes = corpus.train.bytes + corpus.heldOut.bytes
        let bytes = Self.files?.compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }.reduce(0, +) ?? 0
        print("corpus: \(bytes) bytes of text, \(corpus.trainParagraphs)+\(corpus.heldOutParagraphs) paragraphs, \(tokens) tokens, "
              + "\(corpus.sequenceCount(.train)) train / \(corpus.sequenceCount(.heldOut)) held-out sequences of 128; "
              + "ids \(idBytes) bytes; \(String(format: "%.1f", seconds)) s (\(String(format: "%.2f", Double(bytes) / seconds / 1e6)) MB/s); "
              + "peak RSS \(usage.ru_maxrss / 1024) MiB; modes \(corpus.modes.map(\.rawValue))")
        // Capacity rounds up to the allocator's size classes: allow a page per split.
        #expect(idBytes <= 2 * tokens + 8192)
    }
}

/// A batch of token sequences of one length L: ids, token types and attention mask, each [B × L]
/// row-major. Construction checks the shapes; `BertModel.validate` checks the values against a model
/// (ids inside the vocabulary, L inside the position table, no sequence fully masked).
public struct TokenBatch: Sendable, Equatable {
    public let batchSize: Int
    public let sequenceLength: Int
    public let ids: [Int32]
    public let tokenTypes: [Int32]
    /// 1 for a real token, 0 for padding.
    public let attentionMask: [Int32]

    static let source = "<input>"

    /// Flat [B × L] arrays; `tokenTypes` defaults to zeros and `attentionMask` to ones.
    public init(batchSize: Int, sequenceLength: Int, ids: [Int], tokenTypes: [Int]? = nil,
                attentionMask: [Int]? = nil) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badInput, file: Self.source, message) }
        guard batchSize > 0, sequenceLength > 0 else {
            throw bad("expected at least one sequence of at least one token, found batch \(batchSize) × length \(sequenceLength)")
        }
        let (count, overflow) = batchSize.multipliedReportingOverflow(by: sequenceLength)
        guard !overflow else { throw bad("batch \(batchSize) × length \(sequenceLength) overflows") }
        for (field, values) in [("input ids", ids), ("token types", tokenTypes), ("attention mask", attentionMask)] {
            if let values, values.count != count {
                throw bad("\(field): expected \(count) values (batch \(batchSize) × length \(sequenceLength)), found \(values.count)")
            }
        }
        func narrow(_ values: [Int], _ field: String) throws -> [Int32] {
            try values.enumerated().map { i, v in
                guard let n = Int32(exactly: v), n >= 0 else {
                    throw bad("\(field) of sequence \(i / sequenceLength) at position \(i % sequenceLength): expected a non-negative 32-bit value, found \(v)")
                }
                return n
            }
        }
        self.batchSize = batchSize
        self.sequenceLength = sequenceLength
        self.ids = try narrow(ids, "input id")
        self.tokenTypes = try tokenTypes.map { try narrow($0, "token type") } ?? [Int32](repeating: 0, count: count)
        if let attentionMask {
            if let i = attentionMask.firstIndex(where: { $0 != 0 && $0 != 1 }) {
                throw bad("attention mask of sequence \(i / sequenceLength) at position \(i % sequenceLength): expected 0 or 1, found \(attentionMask[i])")
            }
            self.attentionMask = attentionMask.map { Int32($0) }
        } else {
            self.attentionMask = [Int32](repeating: 1, count: count)
        }
    }

    /// One array per sequence; every row must have the same length.
    public init(ids: [[Int]], tokenTypes: [[Int]]? = nil, attentionMask: [[Int]]? = nil) throws {
        let length = ids.first?.count ?? 0
        for (field, rows) in [("input ids", ids), ("token types", tokenTypes), ("attention mask", attentionMask)] {
            guard let rows else { continue }
            guard rows.count == ids.count else {
                throw ModelError(.badInput, file: Self.source, "\(field): expected \(ids.count) sequences, found \(rows.count)")
            }
            if let i = rows.firstIndex(where: { $0.count != length }) {
                throw ModelError(.badInput, file: Self.source,
                                 "\(field) of sequence \(i): expected length \(length) (that of sequence 0), found \(rows[i].count)")
            }
        }
        try self.init(batchSize: ids.count, sequenceLength: length, ids: ids.flatMap { $0 },
                      tokenTypes: tokenTypes?.flatMap { $0 }, attentionMask: attentionMask?.flatMap { $0 })
    }

    /// Sequences of different lengths, right-padded with `padId` to the longest; the mask marks the padding.
    public static func padding(_ sequences: [[Int]], tokenTypes: [[Int]]? = nil, padId: Int = 0) throws -> TokenBatch {
        let length = sequences.map(\.count).max() ?? 0
        if let tokenTypes {
            guard tokenTypes.count == sequences.count else {
                throw ModelError(.badInput, file: source, "token types: expected \(sequences.count) sequences, found \(tokenTypes.count)")
            }
            if let i = sequences.indices.first(where: { sequences[$0].count != tokenTypes[$0].count }) {
                throw ModelError(.badInput, file: source,
                                 "token types of sequence \(i): expected length \(sequences[i].count), found \(tokenTypes[i].count)")
            }
        }
        func pad(_ row: [Int], _ value: Int) -> [Int] { row + [Int](repeating: value, count: length - row.count) }
        return try TokenBatch(ids: sequences.map { pad($0, padId) },
                              tokenTypes: tokenTypes.map { $0.map { pad($0, 0) } },
                              attentionMask: sequences.map { pad([Int](repeating: 1, count: $0.count), 0) })
    }

    /// Additive key mask for the softmax: 0 where attended, the most negative float where padded
    /// (as Hugging Face does, so a padded key gets probability exactly 0 without −∞ arithmetic).
    func additiveMask(into out: UnsafeMutableBufferPointer<Float>) {
        for i in attentionMask.indices { out[i] = attentionMask[i] == 1 ? 0 : -Float.greatestFiniteMagnitude }
    }
}

extension BertConfig {
    /// Checks `batch` against this model's tables: ids below `vocab_size`, types below
    /// `type_vocab_size`, L at most `max_position_embeddings`, every sequence with a real token.
    public func validate(_ batch: TokenBatch) throws {
        func bad(_ message: String) -> ModelError { ModelError(.badInput, file: TokenBatch.source, message) }
        guard batch.sequenceLength <= maxPositionEmbeddings else {
            throw bad("sequence length \(batch.sequenceLength) exceeds the position table (max_position_embeddings \(maxPositionEmbeddings))")
        }
        let L = batch.sequenceLength
        if let i = batch.ids.firstIndex(where: { Int($0) >= vocabSize }) {
            throw bad("input id of sequence \(i / L) at position \(i % L): expected < vocab_size \(vocabSize), found \(batch.ids[i])")
        }
        if let i = batch.tokenTypes.firstIndex(where: { Int($0) >= typeVocabSize }) {
            throw bad("token type of sequence \(i / L) at position \(i % L): expected < type_vocab_size \(typeVocabSize), found \(batch.tokenTypes[i])")
        }
        for b in 0..<batch.batchSize where !batch.attentionMask[(b * L)..<((b + 1) * L)].contains(1) {
            throw bad("attention mask of sequence \(b) is all zeros: nothing to attend to")
        }
    }
}

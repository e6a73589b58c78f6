import HDModel
import HDTokenizer

/// Model inputs for task examples: `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]` with token type 0 up
/// to the first `[SEP]` and 1 after it, cut to `maxLength` tokens by longest-first truncation; and
/// batches padded to their longest sequence.
///
/// Truncation is that of transformers 5's `BertTokenizer(…, truncation="longest_first")`, which runs
/// the `tokenizers` crate (see `BertTokenizer.encode(_:pair:maxLength:truncation:padding:)`): the
/// shorter text keeps up to half the budget, the longer gets the rest, and when both must be cut the
/// second keeps the odd token. This differs, on some pairs, from the pure-Python `truncate_sequences`
/// (transformers' slow tokenizers, `BertTokenizerLegacy` in v5), which removes one token at a time
/// from the longer text and from the second on a tie, so the first keeps the odd token: `a b c d` +
/// `e f g h` at `maxLength` 8 is `a b c` + `e f` there and `a b` + `e f g` here. We follow the
/// tokenizer the Python fine-tuning and evaluation scripts load; `fixtures/tasks/pair_encoding.json`
/// records both.
public struct TaskEncoder: Sendable {
    public let tokenizer: BertTokenizer
    public let maxLength: Int

    /// `maxLength` must leave room for a token of each text besides the three special tokens.
    public init(tokenizer: BertTokenizer, maxLength: Int) throws {
        guard maxLength >= 5 else {
            throw TaskError(.invalidArgument, file: "<argument>", field: "seq-len",
                "encoder: expected a maximum length of at least 5 ([CLS] a [SEP] b [SEP]), found \(maxLength)")
        }
        self.tokenizer = tokenizer
        self.maxLength = maxLength
    }

    public func encode(_ text: String, pair: String? = nil) throws -> Encoding {
        do {
            return try tokenizer.encode(text, pair: pair, maxLength: maxLength, truncation: true)
        } catch let error as TokenizerError {
            throw TaskError(.invalidArgument, file: error.file, error.message)
        }
    }

    public func encode(_ example: Example) throws -> Encoding {
        try encode(example.text, pair: example.pair)
    }

    /// Right-pads `encodings` with `[PAD]` to the longest of them: attention mask 0 and token type 0 on
    /// the padding. At least one encoding is needed.
    public func batch(_ encodings: [Encoding]) throws -> TokenBatch {
        guard !encodings.isEmpty else {
            throw TaskError(.invalidArgument, file: "<argument>", "batch: expected at least one example, found none")
        }
        return try TokenBatch.padding(encodings.map(\.ids), tokenTypes: encodings.map(\.tokenTypeIds),
                                      padId: tokenizer.specialIDs.pad)
    }
}

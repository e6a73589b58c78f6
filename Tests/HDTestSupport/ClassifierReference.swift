import Foundation

/// fixtures/tiny-classifier/reference.json (tools/make_classifier_fixture.py): transformers'
/// `BertForSequenceClassification` on texts and pairs — its tokenizer's ids (padded per group) and the
/// model's logits, probabilities and label in eval mode.
public struct ClassifierReference: Decodable, Sendable {
    public struct Example: Decodable, Sendable {
        public var text: String
        public var pair: String?
        public var inputIds: [Int]
        public var tokenTypeIds: [Int]
        public var attentionMask: [Int]
        public var logits: [Double]
        public var probabilities: [Double]
        public var label: String

        enum CodingKeys: String, CodingKey {
            case text, pair, logits, probabilities, label
            case inputIds = "input_ids", tokenTypeIds = "token_type_ids", attentionMask = "attention_mask"
        }
    }

    public struct Group: Decodable, Sendable {
        /// The truncation length of the group (`truncation="longest_first"`), nil when uncut.
        public var maxLength: Int?
        public var examples: [Example]
        enum CodingKeys: String, CodingKey {
            case examples
            case maxLength = "max_length"
        }
    }

    public var labels: [String]
    /// "texts", "pairs", "truncated_pairs".
    public var groups: [String: Group]

    /// The fixture model's directory (an HF directory: config.json, model.safetensors, vocab.txt).
    public static let directory = TestSupport.fixture("tiny-classifier")

    public static func load() throws -> ClassifierReference {
        let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("tiny-classifier/reference.json")))
        return try JSONDecoder().decode(ClassifierReference.self, from: data)
    }
}

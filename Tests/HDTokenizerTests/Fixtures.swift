import Foundation
import HDTokenizer

/// Reference data written by tools/make_tokenizer_fixture.py from Hugging Face's BertTokenizer.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    static let vocabularyPath = root.appendingPathComponent("vocab/bert-base-uncased.txt").path

    static let uncased: BertTokenizer = try! BertTokenizer(vocabularyFile: vocabularyPath)
    static let cased: BertTokenizer = try! BertTokenizer(vocabularyFile: vocabularyPath, lowercase: false)

    static func tokenizer(lowercase: Bool) -> BertTokenizer { lowercase ? uncased : cased }

    static func jsonLines<T: Decodable>(_ name: String, as type: T.Type) throws -> [T] {
        let data = try Data(contentsOf: root.appendingPathComponent("tokenizer/\(name)"))
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(T.self, from: Data($0)) }
    }
}

struct CorpusLine: Decodable, Sendable {
    let source: String
    let text: String
    let ids: [Int]
}

struct HardCase: Decodable, Sendable, CustomStringConvertible {
    let name: String
    let lowercase: Bool
    let text: String
    let ids: [Int]
    let tokens: [String]
    let decoded: String
    var description: String { "\(name) (\(lowercase ? "uncased" : "cased"))" }
}

struct PairCase: Decodable, Sendable, CustomStringConvertible {
    let a: String
    let b: String?
    let max_length: Int?
    let truncation: Bool
    let padding: String
    let ids: [Int]
    let token_type_ids: [Int]
    let attention_mask: [Int]

    var strategy: PaddingStrategy {
        if padding == "max_length" { return .toMaxLength }
        if padding.hasPrefix("multiple:"), let n = Int(padding.dropFirst("multiple:".count)) { return .toMultiple(of: n) }
        return .none
    }

    var description: String {
        "\(a.prefix(20))|\(b?.prefix(20) ?? "nil") max=\(max_length.map(String.init) ?? "nil") trunc=\(truncation) pad=\(padding)"
    }
}

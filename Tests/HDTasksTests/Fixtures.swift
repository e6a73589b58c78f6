import Foundation
import HDTasks
import HDTokenizer

/// Committed fixtures (fixtures/tasks, fixtures/vocab) and the shared data, if present.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static let tokenizer: BertTokenizer = try! BertTokenizer(vocabularyFile: path("vocab/bert-base-uncased.txt"))

    /// ../shared/data/tasks beside the repository (or /work/shared), nil on a fresh clone without it.
    static func sharedTask(_ name: String) -> String? {
        let candidates = [
            root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data/tasks/\(name)").path,
            "/work/shared/data/tasks/\(name)",
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    static func json<T: Decodable>(_ relative: String, as type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: root.appendingPathComponent(relative)))
    }
}

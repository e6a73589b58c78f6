import ArgumentParser
import Foundation
import HDErrors

/// The one reporting path of every hd-* tool: exit 0 ok, 64 usage (ArgumentParser's
/// ValidationError), 65 bad input data, 1 anything else.
public enum ToolErrors {
    /// Runs `body`; any library error (`HDError`: formats, models, tokenizers, training) becomes one
    /// line on stderr — the file, then what was expected and found — and, with `json`, one object
    /// on stdout (`{"error": {"kind", "file", "field", "message", "exit_status"}}`), so a caller
    /// reading JSON learns why there is no result; then the error's exit status.
    public static func reporting(_ tool: String, json: Bool = false, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as any HDError {
            if json { try? JSONOutput.print(["error": ErrorRecord(error)], pretty: false) }
            fail(tool, error.description, status: error.exitStatus)
        }
    }

    /// One line on stderr, then exit with `status` (65, bad input data, by default).
    public static func fail(_ tool: String, _ message: String, status: Int32 = ExitStatus.dataError) -> Never {
        FileHandle.standardError.write(Data("\(tool): error: \(message)\n".utf8))
        exit(status)
    }

    /// An error as `--json` reports it.
    public struct ErrorRecord: Encodable {
        public var kind: String
        public var file: String
        public var field: String?
        public var message: String
        public var exitStatus: Int32

        public init(_ error: any HDError) {
            (kind, file, field, message, exitStatus) = (error.kindName, error.file, error.field, error.message, error.exitStatus)
        }

        enum CodingKeys: String, CodingKey {
            case kind, file, field, message
            case exitStatus = "exit_status"
        }
    }
}

/// JSON output with sorted keys, so machines and diffs see stable text.
public enum JSONOutput {
    public static func print<T: Encodable>(_ value: T, pretty: Bool = true) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
    }
}

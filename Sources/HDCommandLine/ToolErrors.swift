import ArgumentParser
import Foundation
import HDFormats
import HDModel
import HDTokenizer

/// The exit statuses every hd-* tool documents: 0 ok, 64 usage (ArgumentParser's ValidationError),
/// 65 bad input data, 1 anything else.
public enum ToolErrors {
    /// Runs `body`, turning our typed input errors into one line on stderr and exit status 65.
    public static func reporting(_ tool: String, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as FormatError {
            fail(tool, error.description)
        } catch let error as ModelError {
            fail(tool, error.description)
        } catch let error as TokenizerError {
            fail(tool, error.description)
        }
    }

    /// One line on stderr, exit status 65.
    public static func fail(_ tool: String, _ message: String) -> Never {
        FileHandle.standardError.write(Data("\(tool): error: \(message)\n".utf8))
        exit(65)
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

import ArgumentParser
import Foundation
import HDCommandLine
import HDModel
import HDTokenizer

/// Reading TEXT: the argument, or stdin line by line (`-`), checked to be UTF-8, with a bad stdin
/// line reported in its place while the batch goes on.
extension TextArguments {
    /// How messages name an input: "stdin line 3" or "the text".
    func describe(line: Int) -> String { text == "-" ? "stdin line \(line)" : "the text" }

    /// Runs `body` on each input with its 1-based line number (1 for a TEXT argument). Input that is
    /// not UTF-8 is refused naming the byte. A TEXT argument's error is the command's (exit 65). With
    /// `-`, lines are read and run one at a time; a line's bad input (`ModelError` about `<input>`:
    /// empty, not UTF-8, too long, no [MASK]) is reported in its place (a JSON object with --json, a
    /// line on stderr otherwise) and the next line runs; exit 65 at the end when any line failed.
    func forEachInput(_ body: (_ line: Int, _ text: String) throws -> Void) throws {
        guard text == "-" else {
            if let failure = Self.invalidArgumentBytes(text) {
                throw ModelError(.badInput, file: "<input>", "the text argument, byte \(failure.offset + 1): expected UTF-8 text, found \(failure.hex); \(failure.hint)")
            }
            try body(1, text)
            return
        }
        var failed: [Int] = []
        var count = 0
        var reader = StdinLines()
        while let bytes = try reader.next() {
            count += 1
            if count == 1, let encoding = UTF8Validation.utf16(bytes) {
                throw ModelError(.badInput, file: "<stdin>", UTF8Validation.utf16Message("stdin", encoding: encoding))
            }
            do {
                try body(count, try Self.decode(bytes, line: count))
            } catch let error as ModelError where error.file == "<input>" {
                failed.append(count)
                if json {
                    try JSONOutput.print(LineError(line: count, error: error.message), pretty: false)
                } else {
                    FileHandle.standardError.write(Data("hd-infer: error: \(error.description)\n".utf8))
                }
            }
        }
        if !failed.isEmpty {
            let listed = failed.prefix(20).map(String.init).joined(separator: ", ") + (failed.count > 20 ? ", …" : "")
            ToolErrors.fail("hd-infer", "<stdin>: \(failed.count) of \(count) lines failed (line\(failed.count == 1 ? "" : "s") \(listed), reported in place); the others ran")
        }
    }

    /// The JSON printed in place of a failed stdin line's result.
    struct LineError: Encodable {
        var line: Int
        var error: String
    }

    /// A stdin line (without its newline) as text, refusing invalid UTF-8 and NUL bytes.
    static func decode(_ bytes: [UInt8], line: Int) throws -> String {
        if let failure = UTF8Validation.firstInvalid(bytes) {
            throw ModelError(.badInput, file: "<input>", "stdin line \(line), byte \(failure.offset + 1): expected UTF-8 text, found \(failure.hex); \(failure.hint)")
        }
        if let nul = bytes.firstIndex(of: 0) {
            throw ModelError(.badInput, file: "<input>", "stdin line \(line), byte \(nul + 1): expected UTF-8 text, found a NUL byte (UTF-16 or a binary file?)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Swift decodes argv with replacement characters; when `text` holds one, the raw argument
    /// it came from says whether the user typed U+FFFD or bytes that are not UTF-8.
    static func invalidArgumentBytes(_ text: String) -> UTF8Validation.Failure? {
        guard text.unicodeScalars.contains("\u{FFFD}") else { return nil }
        for i in 1..<Int(CommandLine.argc) {
            guard let pointer = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: strlen(pointer))
            if let failure = UTF8Validation.firstInvalid(bytes), String(decoding: bytes, as: UTF8.self) == text { return failure }
        }
        return nil
    }
}

/// Stdin as lines of bytes, read as they arrive (a pipe of many inputs is answered line by line):
/// split on `\n`, a `\r` before it dropped, a last line without a newline kept.
struct StdinLines {
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    mutating func next() throws -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var line = Array(buffer[start..<newline])
                start = newline + 1
                if line.last == 0x0D { line.removeLast() }
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                var line = Array(buffer[start...])
                start = buffer.count
                if line.last == 0x0D { line.removeLast() }
                return line
            }
            buffer.removeFirst(start)
            start = 0
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ModelError(.badInput, file: "<stdin>", "cannot read stdin: \(String(cString: strerror(errno)))")
            }
            if n == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<n]) }
        }
    }
}

/// A text file read whole as UTF-8 (bench --text), refused naming the line and byte when it is not.
func readUTF8File(_ path: String) throws -> String {
    var info = stat()
    guard stat(path, &info) == 0 else {
        throw ModelError(.badInput, file: path, "cannot read the text file: \(String(cString: strerror(errno))); check the path")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw ModelError(.badInput, file: path, "expected a regular text file, found a directory or special file")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ModelError(.badInput, file: path, "cannot read the text file")
    }
    if let encoding = UTF8Validation.utf16(data) {
        throw ModelError(.badInput, file: path, UTF8Validation.utf16Message("text", encoding: encoding))
    }
    if let (line, byte, failure) = data.withUnsafeBytes({ UTF8Validation.firstInvalidLine($0.bindMemory(to: UInt8.self)) }) {
        throw ModelError(.badInput, file: path, "line \(line), byte \(byte) (offset \(failure.offset) in the file): expected UTF-8 text, found \(failure.hex); \(failure.hint)")
    }
    return String(decoding: data, as: UTF8.self)
}

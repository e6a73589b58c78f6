import Foundation
import HDFormats

/// One value in a log record.
public enum LogValue: Sendable, Equatable {
    case int(Int)
    case number(Double)
    case text(String)
}

/// The `--log` file: JSON Lines, one object per training step or evaluation, keys sorted. Each line is
/// written with a single write(2) as soon as it is made, so `tail -f` and a crash both see whole lines.
/// Non-finite numbers, which JSON cannot hold, are written as the strings "NaN", "Infinity", "-Infinity".
public final class TrainingLog {
    public let path: String
    private let fd: Int32

    /// Opens `path` for appending (a resumed run continues its log) or truncates it.
    public init(path: String, append: Bool) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else {
            throw TrainingError(.io, file: path, "log: cannot open for writing: \(String(cString: strerror(errno)))")
        }
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    public func write(_ record: [String: LogValue]) throws {
        var line = Self.encode(record)
        line.append(0x0A)
        var offset = 0
        try line.withUnsafeBytes { bytes in
            while offset < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw TrainingError(.io, file: path, "log: write failed: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    public static func encode(_ record: [String: LogValue]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (i, entry) in record.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            StrictJSON.appendQuoted(entry.key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch entry.value {
            case .int(let v): out += Array(String(v).utf8)
            case .number(let v):
                if v.isFinite { out += Array("\(v)".utf8) } else { StrictJSON.appendQuoted(v.isNaN ? "NaN" : (v > 0 ? "Infinity" : "-Infinity"), to: &out) }
            case .text(let s): StrictJSON.appendQuoted(s, to: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}

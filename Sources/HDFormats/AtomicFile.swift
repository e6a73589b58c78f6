#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers only ever see the old complete file or the new complete one:
/// temp file beside the destination (O_EXCL), streamed with every write checked, fsync, close,
/// validated by the caller's reader, renamed over the destination, directory fsynced. On any error
/// the temp file is removed and the destination is untouched. Renaming (never truncating) also keeps
/// a destination that is currently memory-mapped intact for whoever maps it.
public enum AtomicFile {
    /// Streams bytes into the temp file; buffers small writes.
    public final class Writer {
        public let path: String
        private let fd: Int32
        private var buffer: [UInt8] = []
        private let bufferLimit = 1 << 20
        public private(set) var bytesWritten = 0

        init(path: String, fd: Int32) {
            self.path = path
            self.fd = fd
            buffer.reserveCapacity(bufferLimit)
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            if buffer.count + bytes.count > bufferLimit { try flush() }
            if bytes.count >= bufferLimit {
                try writeAll(bytes)
            } else {
                buffer.append(contentsOf: bytes)
            }
            bytesWritten += bytes.count
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { raw in try write(raw) }
        }

        public func write(_ text: String) throws { try write(Array(text.utf8)) }

        func flush() throws {
            guard !buffer.isEmpty else { return }
            let pending = buffer
            buffer.removeAll(keepingCapacity: true)
            try pending.withUnsafeBytes { raw in try writeAll(raw) }
        }

        private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FormatError(.io, file: path, "write failed after \(offset) bytes: \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
    }

    /// Writes `destination` atomically. `body` streams the content; `validate` re-reads the finished
    /// temp file (given its path) and throws if it is not what was meant to be written.
    public static func write(to destination: String,
                             body: (Writer) throws -> Void,
                             validate: (String) throws -> Void) throws {
        let directory = parentDirectory(of: destination)
        let base = destination.split(separator: "/").last.map(String.init) ?? destination
        var temp = ""
        var fd: Int32 = -1
        for attempt in 0..<16 {
            temp = "\(directory)/.\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw FormatError(.io, file: destination, "cannot create a temp file in \(directory): \(String(cString: strerror(errno)))")
        }
        var closed = false
        do {
            let writer = Writer(path: destination, fd: fd)
            try body(writer)
            try writer.flush()
            guard fsync(fd) == 0 else {
                throw FormatError(.io, file: destination, "fsync failed: \(String(cString: strerror(errno)))")
            }
            closed = true
            guard close(fd) == 0 else {
                throw FormatError(.io, file: destination, "close failed: \(String(cString: strerror(errno)))")
            }
            try validate(temp)
            guard rename(temp, destination) == 0 else {
                throw FormatError(.io, file: destination, "rename from \(temp) failed: \(String(cString: strerror(errno)))")
            }
        } catch {
            if !closed { close(fd) }
            unlink(temp)
            throw error
        }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}

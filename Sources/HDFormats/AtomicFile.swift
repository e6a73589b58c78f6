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
        removeStaleTempFiles(of: destination)
        let (temp, fd) = try createTemp(for: destination)
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

    /// Checks, before any long work, that `write(to: destination, …)` will be able to create its
    /// temp file: creates one (the same name pattern, same directory) and removes it. Throws the
    /// error the write would throw, naming the directory and what to do.
    public static func checkCreatable(_ destination: String) throws {
        let (temp, fd) = try createTemp(for: destination)
        close(fd)
        unlink(temp)
    }

    /// `.NAME.tmp-PID-RANDOM-ATTEMPT` beside `destination`, created with O_EXCL.
    static func createTemp(for destination: String) throws -> (path: String, fd: Int32) {
        let directory = parentDirectory(of: destination)
        let base = baseName(of: destination)
        var temp = ""
        var fd: Int32 = -1
        for attempt in 0..<16 {
            temp = "\(directory)/\(tempPrefix(base))\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt)"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            var info = stat()
            let what = stat(directory, &info) != 0
                ? "the directory \(directory) does not exist; create it first or choose another output path"
                : (info.st_mode & S_IFMT) != S_IFDIR ? "\(directory) is not a directory; choose another output path"
                : "check the directory's permissions and free space, or choose another output path"
            throw FormatError(.io, file: destination, "cannot create a temp file in \(directory) (\(reason)): \(what)")
        }
        return (temp, fd)
    }

    static func baseName(of path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }

    static func tempPrefix(_ base: String) -> String { ".\(base).tmp-" }

    /// Removes the temp files of earlier writes of `destination` whose process is gone (killed during
    /// a write: `kill(pid, 0)` says ESRCH). Only names of exactly our pattern are touched
    /// (`.NAME.tmp-PID-RANDOM-ATTEMPT`, decimal fields); a live writer's (this process's included)
    /// stay, and so does anything that cannot be checked. Returns the names removed.
    @discardableResult
    public static func removeStaleTempFiles(of destination: String) -> [String] {
        let directory = parentDirectory(of: destination)
        let prefix = tempPrefix(baseName(of: destination))
        guard let dir = opendir(directory) else { return [] }
        var entries: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(prefix) { entries.append(name) }
        }
        closedir(dir)
        var removed: [String] = []
        for name in entries {
            let fields = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
            guard fields.count == 3, fields.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
                  let pid = pid_t(fields[0]), pid > 0, UInt32(fields[1]) != nil, Int(fields[2]).map({ $0 < 16 }) == true else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            let path = "\(directory)/\(name)"
            var info = stat()
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }

    public static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }
}

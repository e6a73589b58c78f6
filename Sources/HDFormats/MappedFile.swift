#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file mapped read-only into memory. Readers parse straight from `bytes` and hand out
/// tensors that borrow it, so the mapping lives as long as any tensor that needs it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let mapping: UnsafeMutableRawPointer?

    /// Opens and maps `path`, refusing what is not a regular, non-empty file under the size cap.
    public init(path: String, limits: ReadLimits = .default, minimumBytes: Int = 1) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw FormatError(.notFound, file: path, "no such file; check the path") }
            if e == EISDIR { throw FormatError(.notRegularFile, file: path, "is a directory, expected a model file") }
            throw FormatError(.io, file: path, "cannot open: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw FormatError(.io, file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let what = (st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a regular file"
            throw FormatError(.notRegularFile, file: path, "is \(what), expected a model file")
        }
        let size = Int(st.st_size)
        guard size >= minimumBytes else {
            throw FormatError(.tooSmall, file: path, "is \(size) bytes, shorter than the smallest valid header (\(minimumBytes) bytes)")
        }
        guard size <= limits.maxFileBytes else {
            throw FormatError(.tooLarge, file: path, "is \(size) bytes, over the file size cap of \(limits.maxFileBytes) bytes (ReadLimits.maxFileBytes)")
        }
        guard size > 0 else {
            mapping = nil
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw FormatError(.io, file: path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        mapping = p
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let mapping { munmap(mapping, bytes.count) }
    }
}

/// Asks the kernel to reclaim the whole pages inside memory whose contents are consumed: a
/// read-only file mapping (`MappedFile`) once its data was copied, inflated or packed elsewhere (the
/// npz reader's members, the runtime's packed weights), so it does not stay resident twice.
/// MADV_PAGEOUT keeps the contents — file pages are read back on the next access, anonymous ones
/// (an inflated member) stay put when there is no swap — unlike MADV_DONTNEED, which would zero
/// anonymous memory. Only whole pages inside the range are touched.
public enum ResidentPages {
    public static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    public static func release(_ range: UnsafeRawBufferPointer) {
        guard let base = range.baseAddress else { return }
        let start = (Int(bitPattern: base) + pageSize - 1) & ~(pageSize - 1)
        let end = (Int(bitPattern: base) + range.count) & ~(pageSize - 1)
        if end > start { madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_PAGEOUT)) }
    }
}

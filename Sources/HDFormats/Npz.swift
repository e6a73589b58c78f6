#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// NumPy `.npz` archives: a zip of `.npy` members, read through our own zip reader (`ZipReader`).
///
/// Member `x.npy` becomes tensor `x`. Stored members holding aligned little-endian f32 are borrowed
/// from the mapping; every other member is decoded straight into its final buffer (deflated members
/// inflated in parallel, largest first). numpy's `np.load` reads what `write` produces, and `read`
/// reads `np.savez` / `np.savez_compressed` output.
public enum Npz {
    public enum Compression: Sendable { case stored, deflated }

    /// Online cores: the default parallelism for inflating members.
    public static var defaultThreads: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    public static func read(path: String, limits: ReadLimits = .default, threads: Int = defaultThreads) throws -> TensorSet {
        let mapped = try MappedFile(path: path, limits: limits, minimumBytes: 22)
        try FileKind.require(.npz, mapped.bytes, file: path)
        return try decode(mapped.bytes, file: path, owner: mapped, limits: limits, threads: threads, releasePages: true)
    }

    /// Reads an archive held in memory (tests, fuzzing); values are copied out of `bytes`.
    public static func read(bytes: UnsafeRawBufferPointer, name: String = "<memory>", limits: ReadLimits = .default,
                            threads: Int = 1) throws -> TensorSet {
        try decode(bytes, file: name, owner: nil, limits: limits, threads: threads, releasePages: false)
    }

    /// Writes `set` atomically: members in byte order of their names, then a full re-read (CRC and
    /// structure) and a name/shape/type comparison before the destination is replaced.
    public static func write(_ set: TensorSet, to path: String, compression: Compression = .stored) throws {
        let names = set.sortedNames
        var headers: [NpyHeader] = []
        for name in names {
            guard !name.isEmpty else {
                throw FormatError(.badMemberName, file: path, "a tensor has an empty name; npz members are named '<tensor>.npy'")
            }
            headers.append(try Npy.header(for: set.tensors[name]!, name: name, file: path))
        }
        try AtomicFile.write(to: path, body: { out in
            let archive = ZipWriter(out)
            for (name, header) in zip(names, headers) {
                try addMember(set.tensors[name]!, header: header, name: name, compression: compression, to: archive)
            }
            try archive.finish()
        }, validate: { temp in
            let back = try read(path: temp)
            for (name, header) in zip(names, headers) {
                guard let got = back[name], got.shape == header.shape, got.storedAs == header.type else {
                    throw FormatError(.io, file: path, "member '\(name).npy' did not read back as written; the destination was left untouched")
                }
            }
            guard back.tensors.count == names.count else {
                throw FormatError(.io, file: path, "archive read back with \(back.tensors.count) members, wrote \(names.count); the destination was left untouched")
            }
        })
    }

    // MARK: - Reading

    static func decode(_ bytes: UnsafeRawBufferPointer, file: String, owner: AnyObject?, limits: ReadLimits,
                       threads: Int, releasePages: Bool) throws -> TensorSet {
        let entries = try ZipReader.entries(bytes, file: file, limits: limits)
        var total = 0
        for entry in entries {
            guard entry.name.hasSuffix(".npy"), entry.name.utf8.count > 4 else {
                throw FormatError(.badMemberName, file: file, "member '\(entry.name)' is not a .npy array; an npz archive holds only '<name>.npy' members")
            }
            let (sum, overflow) = total.addingReportingOverflow(entry.uncompressedSize)
            guard !overflow, sum <= limits.maxDecompressedBytes else {
                throw FormatError(.tooLarge, file: file, "members declare more than \(limits.maxDecompressedBytes) bytes in total once decompressed (ReadLimits.maxDecompressedBytes), at member '\(entry.name)'")
            }
            total = sum
        }
        let jobs = entries.sorted { ($0.uncompressedSize, $1.name) > ($1.uncompressedSize, $0.name) }
        let release: ((UnsafeRawBufferPointer) -> Void)? = releasePages ? { ResidentPages.release($0) } : nil
        let tensors = try ParallelJobs.run(count: jobs.count, threads: threads) { i in
            try decodeMember(jobs[i], in: bytes, file: file, owner: owner, limits: limits, release: release)
        }
        var set = TensorSet()
        for (entry, tensor) in zip(jobs, tensors) { set[String(entry.name.dropLast(4))] = tensor }
        return set
    }

    private static func decodeMember(_ entry: ZipEntry, in bytes: UnsafeRawBufferPointer, file: String, owner: AnyObject?,
                                     limits: ReadLimits, release: ((UnsafeRawBufferPointer) -> Void)?) throws -> Tensor {
        let input = UnsafeRawBufferPointer(rebasing: bytes[entry.dataOffset..<(entry.dataOffset + entry.compressedSize)])
        // Aligned stored f32 is borrowed in place; a header that fails to parse here is reported by
        // the streaming path below, which parses it again.
        if entry.method == .stored, let owner,
           let parsed = try? NpyHeader.parse(input, name: entry.name, file: file, maxHeaderBytes: limits.maxHeaderBytes),
           Npy.isBorrowable(parsed.header),
           (Int(bitPattern: input.baseAddress) + parsed.dataOffset) % MemoryLayout<Float>.alignment == 0 {
            let crc = CRC32.checksum(input)
            guard crc == entry.crc else {
                throw FormatError(.checksumMismatch, file: file, "member '\(entry.name)': CRC-32 of the stored data is \(hex(crc)); the central directory says \(hex(entry.crc))")
            }
            return try Npy.decode(input, name: entry.name, file: file, owner: owner, limits: limits)
        }
        let stream: MemberStream = entry.method == .stored
            ? StoredStream(input: input, member: entry.name, file: file, consumed: release)
            : try RawInflater(input: input, declaredSize: entry.uncompressedSize, member: entry.name, file: file, consumed: release)
        let tensor = try streamMember(stream, entry: entry, file: file, limits: limits)
        try stream.finish(expectedCRC: entry.crc)
        return tensor
    }

    /// Reads header then data from `stream`, allocating only after the header is checked against the
    /// declared size; f32 data goes straight into the tensor's storage.
    private static func streamMember(_ stream: MemberStream, entry: ZipEntry, file: String, limits: ReadLimits) throws -> Tensor {
        let member = entry.name, declared = entry.uncompressedSize
        var header = [UInt8](repeating: 0, count: min(declared, 12))
        try header.withUnsafeMutableBytes { try stream.read(into: $0) }
        let (prefix, headerLength) = try header.withUnsafeBytes {
            try NpyHeader.preamble($0, name: member, file: file, maxHeaderBytes: limits.maxHeaderBytes)
        }
        // The preamble bounded headerLength by the cap; the member may still be shorter than it.
        let headerEnd = min(prefix + headerLength, declared)
        if headerEnd > header.count {
            let have = header.count
            header += [UInt8](repeating: 0, count: headerEnd - have)
            try header.withUnsafeMutableBytes { try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[have...])) }
        }
        let (npy, dataOffset) = try header.withUnsafeBytes {
            try NpyHeader.parse(UnsafeRawBufferPointer(rebasing: $0[..<headerEnd]), name: member, file: file, maxHeaderBytes: limits.maxHeaderBytes)
        }
        let expected = try Npy.dataByteCount(npy, name: member, file: file)
        let declaredData = declared - dataOffset
        if declaredData < expected {
            throw FormatError(.truncated, file: file, "member '\(member)': shape \(npy.shape) of \(NpyDescr.code(npy.type)) needs \(expected) data bytes, the member declares \(declaredData)")
        }
        if declaredData > expected {
            throw FormatError(.trailingBytes, file: file, "member '\(member)': declares \(declaredData - expected) bytes beyond the \(expected) data bytes that shape \(npy.shape) needs")
        }
        if Npy.isBorrowable(npy) {
            let storage = try FloatStorage(count: expected / 4) { out in try stream.read(into: UnsafeMutableRawBufferPointer(out)) }
            return Tensor(shape: npy.shape, values: .float32(storage), storedAs: .float32)
        }
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: expected, alignment: 64)
        defer { raw.deallocate() }
        try stream.read(into: raw)
        return Npy.tensor(npy, data: UnsafeRawBufferPointer(raw), owner: nil)
    }

    // MARK: - Writing

    private static func addMember(_ tensor: Tensor, header: NpyHeader, name: String, compression: Compression, to zip: ZipWriter) throws {
        let npyHeader = header.encoded()
        let dataBytes = ShapeMath.byteCount(header.shape, itemSize: header.type.byteCount) ?? 0
        let size = npyHeader.count + dataBytes
        var crc = npyHeader.withUnsafeBytes { CRC32.checksum($0) }
        try Npy.writeData(tensor, header: header) { crc = CRC32.checksum($0, continuing: crc) }
        let member = name + ".npy"
        switch compression {
        case .stored:
            try zip.add(name: member, method: .stored, crc: crc, uncompressedSize: size, compressedSize: size,
                        alignment: NpyHeader.alignment) { out in
                try out.write(npyHeader)
                try Npy.writeData(tensor, header: header) { try out.write($0) }
            }
        case .deflated:
            let deflater = try RawDeflater(file: zip.path)
            try npyHeader.withUnsafeBytes { try deflater.compress($0) }
            try Npy.writeData(tensor, header: header) { try deflater.compress($0) }
            try deflater.finish()
            try zip.add(name: member, method: .deflated, crc: crc, uncompressedSize: size, compressedSize: deflater.output.count) { out in
                try out.write(deflater.output)
            }
        }
    }
}

/// The bytes of one member, in order: inflated (`RawInflater`) or copied from a stored member.
protocol MemberStream: AnyObject {
    func read(into out: UnsafeMutableRawBufferPointer) throws
    func finish(expectedCRC: UInt32) throws
}

extension RawInflater: MemberStream {}

/// A stored member copied out in order, with its CRC computed on the way.
final class StoredStream: MemberStream {
    private let input: UnsafeRawBufferPointer
    private let consumed: ((UnsafeRawBufferPointer) -> Void)?
    private var at = 0
    private var crc: UInt32 = 0
    private let file: String
    private let member: String

    init(input: UnsafeRawBufferPointer, member: String, file: String, consumed: ((UnsafeRawBufferPointer) -> Void)?) {
        self.input = input
        self.consumed = consumed
        self.member = member
        self.file = file
    }

    /// Copies in pieces so that `consumed` can drop source pages while the copy proceeds.
    func read(into out: UnsafeMutableRawBufferPointer) throws {
        let piece = 4 << 20
        var done = 0
        while done < out.count {
            let n = min(piece, out.count - done)
            guard n <= input.count - at else {
                throw FormatError(.truncated, file: file, "member '\(member)': stored data ends after \(input.count) bytes")
            }
            let source = UnsafeRawBufferPointer(rebasing: input[at..<(at + n)])
            crc = CRC32.checksum(source, continuing: crc)
            out.baseAddress!.advanced(by: done).copyMemory(from: source.baseAddress!, byteCount: n)
            consumed?(source)
            at += n
            done += n
        }
    }

    func finish(expectedCRC: UInt32) throws {
        guard crc == expectedCRC else {
            throw FormatError(.checksumMismatch, file: file, "member '\(member)': CRC-32 of the stored data is \(hex(crc)); the central directory says \(hex(expectedCRC))")
        }
    }
}

/// Runs `count` independent jobs on up to `threads` cores, handing them out in index order (callers
/// sort largest first so the tail is short). After a failure no new job starts; the error reported is
/// the failing job with the lowest index, which is the one a sequential run would have hit.
enum ParallelJobs {
    static func run<T>(count: Int, threads: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
        let jobs = Jobs(count: count, body: body)
        let workers = min(max(threads, 1), count)
        if workers > 1 {
            DispatchQueue.concurrentPerform(iterations: workers) { _ in jobs.work() }
        } else {
            jobs.work()
        }
        return try jobs.collect()
    }

    /// Shared by the workers. Each result slot is written by exactly one worker (the one that claimed
    /// its index from `next`) and read only after `concurrentPerform` returns, hence unchecked.
    private final class Jobs<T>: @unchecked Sendable {
        let count: Int
        let body: (Int) throws -> T
        let results: UnsafeMutableBufferPointer<Result<T, any Error>?>
        let next = Atomic<Int>(0)
        let failed = Atomic<Bool>(false)

        init(count: Int, body: @escaping (Int) throws -> T) {
            self.count = count
            self.body = body
            results = .allocate(capacity: count)
            results.initialize(repeating: nil)
        }

        deinit {
            _ = results.deinitialize()
            results.deallocate()
        }

        func work() {
            while !failed.load(ordering: .relaxed) {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= count { return }
                do {
                    results[i] = .success(try body(i))
                } catch {
                    results[i] = .failure(error)
                    failed.store(true, ordering: .relaxed)
                }
            }
        }

        func collect() throws -> [T] {
            for case .failure(let error)? in results { throw error }
            return results.compactMap { slot in if case .success(let value)? = slot { value } else { nil } }
        }
    }
}

import CZlib

/// CRC-32 (the zip polynomial) through zlib, fed in chunks because zlib's length parameter is 32-bit.
enum CRC32 {
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = uLong(crc)
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)
            value = crc32(value, bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(n))
            offset += n
        }
        return UInt32(truncatingIfNeeded: value)
    }
}

/// Inflates one raw deflate stream (zip method 8, windowBits −15) whose size is declared up front.
/// The caller hands out the destination in pieces (`read(into:)`), typically the npy header first and
/// then the final tensor buffer, so nothing is inflated twice or copied afterwards. `finish` proves the
/// stream ends exactly at the declared size, with no input left over, and checks the CRC.
final class RawInflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeRawBufferPointer
    private let declaredSize: Int
    private let member: String
    private let file: String
    /// Called with each span of input zlib has fully consumed (the npz reader drops those pages).
    private let consumed: ((UnsafeRawBufferPointer) -> Void)?
    /// Input is fed in bounded pieces so `consumed` runs while inflating, not only at the end.
    private static let inputPiece = 4 << 20
    private var fed = 0
    private var reportedConsumed = 0
    private var produced = 0
    private var ended = false
    private var crc: UInt32 = 0

    init(input: UnsafeRawBufferPointer, declaredSize: Int, member: String, file: String,
         consumed: ((UnsafeRawBufferPointer) -> Void)? = nil) throws {
        self.input = input
        self.declaredSize = declaredSize
        self.member = member
        self.file = file
        self.consumed = consumed
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = inflateInit2_(stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            stream.deallocate()
            throw FormatError(.io, file: file, "member '\(member)': cannot start inflating (zlib error \(rc))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Fills all of `out` with the next inflated bytes.
    func read(into out: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < out.count {
            if ended {
                throw FormatError(.truncated, file: file, "member '\(member)': deflate stream ends after \(produced) bytes; the central directory declares \(declaredSize)")
            }
            let room = min(out.count - done, 1 << 30)
            let n = try step(into: out.baseAddress!.advanced(by: done), room: room)
            crc = CRC32.checksum(UnsafeRawBufferPointer(start: out.baseAddress!.advanced(by: done), count: n), continuing: crc)
            done += n
        }
    }

    /// Checks that the stream ends here: no byte beyond the declared size, no input after the end,
    /// and a CRC-32 equal to `expectedCRC`.
    func finish(expectedCRC: UInt32) throws {
        var extra: UInt8 = 0
        while !ended {
            // One byte of room: a stream that still produces output is longer than declared.
            if try step(into: &extra, room: 1) > 0 {
                throw FormatError(.corruptDeflate, file: file, "member '\(member)': inflates to more than the declared \(declaredSize) bytes")
            }
        }
        let leftover = Int(stream.pointee.avail_in) + (input.count - fed)
        guard leftover == 0 else {
            throw FormatError(.trailingBytes, file: file, "member '\(member)': \(leftover) bytes of compressed data follow the end of the deflate stream")
        }
        guard crc == expectedCRC else {
            throw FormatError(.checksumMismatch, file: file, "member '\(member)': CRC-32 of the inflated data is \(hex(crc)); the central directory says \(hex(expectedCRC))")
        }
    }

    /// One inflate call into `room` bytes at `out`; returns how many bytes it produced.
    private func step(into out: UnsafeMutableRawPointer, room: Int) throws -> Int {
        if stream.pointee.avail_in == 0 && fed < input.count {
            let n = min(input.count - fed, Self.inputPiece)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.advanced(by: fed).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(n)
            fed += n
        }
        let inputBefore = stream.pointee.avail_in
        stream.pointee.next_out = out.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = uInt(room)
        let rc = inflate(stream, Z_NO_FLUSH)
        let n = room - Int(stream.pointee.avail_out)
        produced += n
        reportConsumedInput()
        switch rc {
        case Z_OK:
            return n
        case Z_STREAM_END:
            ended = true
            return n
        case Z_BUF_ERROR where n == 0 && stream.pointee.avail_in == inputBefore:
            // No progress possible: zlib wants input we do not have.
            throw FormatError(.truncated, file: file, "member '\(member)': compressed data ends before the deflate stream does (\(produced) of \(declaredSize) bytes inflated)")
        case Z_BUF_ERROR:
            return n
        case Z_DATA_ERROR, Z_NEED_DICT:
            let reason = stream.pointee.msg.map { String(cString: $0) } ?? "invalid data"
            throw FormatError(.corruptDeflate, file: file, "member '\(member)': corrupt deflate stream after \(produced) bytes: \(reason)")
        default:
            throw FormatError(.io, file: file, "member '\(member)': inflate failed (zlib error \(rc))")
        }
    }

    private func reportConsumedInput() {
        guard let consumed else { return }
        let done = fed - Int(stream.pointee.avail_in)
        if done - reportedConsumed >= Self.inputPiece || (done == input.count && done > reportedConsumed) {
            consumed(UnsafeRawBufferPointer(rebasing: input[reportedConsumed..<done]))
            reportedConsumed = done
        }
    }
}

/// Raw deflate (windowBits −15) of a stream of chunks, appending the compressed bytes to `output`.
final class RawDeflater {
    private let stream: UnsafeMutablePointer<z_stream>
    private let file: String
    private var scratch = [UInt8](repeating: 0, count: 256 << 10)
    private(set) var output: [UInt8] = []

    init(level: Int32 = 6, file: String) throws {
        self.file = file
        stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let rc = deflateInit2_(stream, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            stream.deallocate()
            throw FormatError(.io, file: file, "cannot start deflating (zlib error \(rc))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    func compress(_ chunk: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < chunk.count {
            let n = min(chunk.count - offset, 1 << 30)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: chunk.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(n)
            while stream.pointee.avail_in > 0 { _ = try run(Z_NO_FLUSH) }
            offset += n
        }
    }

    func finish() throws {
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        while try run(Z_FINISH) != Z_STREAM_END {}
    }

    private func run(_ flush: Int32) throws -> Int32 {
        let capacity = scratch.count
        return try scratch.withUnsafeMutableBytes { out in
            stream.pointee.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(capacity)
            let rc = deflate(stream, flush)
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                throw FormatError(.io, file: file, "deflate failed (zlib error \(rc))")
            }
            output.append(contentsOf: out.prefix(capacity - Int(stream.pointee.avail_out)))
            return rc
        }
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

/// Streams a zip archive into an `AtomicFile.Writer`: local header, data, and at the end the central
/// directory and end records, with zip64 fields exactly where a size, offset or count needs them.
/// Output is deterministic: every member gets the DOS timestamp 1980-01-01 00:00 and no attributes,
/// and the caller adds members in sorted order.
final class ZipWriter {
    private let out: AtomicFile.Writer
    private var central: [UInt8] = []
    private var count = 0

    private static let dosDate: UInt16 = (0 << 9) | (1 << 5) | 1
    private static let placeholder32: UInt64 = 0xFFFF_FFFF

    /// The destination, for error messages.
    var path: String { out.path }

    init(_ out: AtomicFile.Writer) {
        self.out = out
    }

    /// Adds one member; `data` must write exactly `compressedSize` bytes to the writer it is given.
    /// With `alignment` > 1 the local header gets a padding extra block (zipalign's id 0xD935) so the
    /// data starts at a multiple of it in the file: stored npy members can then be borrowed in place.
    func add(name: String, method: ZipEntry.Method, crc: UInt32, uncompressedSize: Int, compressedSize: Int,
             alignment: Int = 1, data: (AtomicFile.Writer) throws -> Void) throws {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= Int(UInt16.max) else {
            throw FormatError(.badMemberName, file: out.path, "member name of \(nameBytes.count) bytes is over the zip limit of 65535: '\(name.prefix(64))…'")
        }
        let offset = UInt64(out.bytesWritten)
        let usize = UInt64(uncompressedSize), csize = UInt64(compressedSize)
        let sizes64 = usize >= Self.placeholder32 || csize >= Self.placeholder32
        let offset64 = offset >= Self.placeholder32
        let version: UInt16 = sizes64 || offset64 ? 45 : 20
        // Bit 11: the name is UTF-8 (only needed, and only set, when it is not ASCII).
        let flags: UInt16 = nameBytes.allSatisfy { $0 < 0x80 } ? 0 : 0x0800

        var local = Bytes()
        local.u32(ZipReader.localSignature)
        local.u16(version); local.u16(flags); local.u16(method.rawValue)
        local.u16(0); local.u16(Self.dosDate); local.u32(crc)
        local.u32(sizes64 ? 0xFFFF_FFFF : UInt32(csize)); local.u32(sizes64 ? 0xFFFF_FFFF : UInt32(usize))
        let unpadded = Int(offset) + 30 + nameBytes.count + (sizes64 ? 20 : 0)
        var padding = (alignment - unpadded % alignment) % alignment
        if padding > 0 && padding < 6 { padding += alignment }
        local.u16(UInt16(nameBytes.count)); local.u16(UInt16((sizes64 ? 20 : 0) + padding))
        local.bytes += nameBytes
        if sizes64 {
            local.u16(1); local.u16(16); local.u64(usize); local.u64(csize)
        }
        if padding > 0 {
            local.u16(0xD935); local.u16(UInt16(padding - 4)); local.u16(UInt16(alignment))
            local.bytes += [UInt8](repeating: 0, count: padding - 6)
        }
        try out.write(local.bytes)
        let before = out.bytesWritten
        try data(out)
        guard out.bytesWritten - before == compressedSize else {
            throw FormatError(.io, file: out.path, "member '\(name)': wrote \(out.bytesWritten - before) bytes of data, expected \(compressedSize)")
        }

        // The central zip64 extra holds only the fields whose 32-bit slot is the placeholder.
        var extra = Bytes()
        let fields = [(usize, usize >= Self.placeholder32), (csize, csize >= Self.placeholder32), (offset, offset64)]
        for (value, needed) in fields where needed { extra.u64(value) }
        var entry = Bytes()
        entry.u32(ZipReader.centralSignature)
        entry.u16(version); entry.u16(version); entry.u16(flags); entry.u16(method.rawValue)
        entry.u16(0); entry.u16(Self.dosDate); entry.u32(crc)
        entry.u32(fields[1].1 ? 0xFFFF_FFFF : UInt32(csize)); entry.u32(fields[0].1 ? 0xFFFF_FFFF : UInt32(usize))
        entry.u16(UInt16(nameBytes.count)); entry.u16(extra.bytes.isEmpty ? 0 : UInt16(4 + extra.bytes.count))
        entry.u16(0); entry.u16(0); entry.u16(0); entry.u32(0)
        entry.u32(offset64 ? 0xFFFF_FFFF : UInt32(offset))
        entry.bytes += nameBytes
        if !extra.bytes.isEmpty {
            entry.u16(1); entry.u16(UInt16(extra.bytes.count))
            entry.bytes += extra.bytes
        }
        central += entry.bytes
        count += 1
    }

    /// Writes the central directory and the end records.
    func finish() throws {
        let cdOffset = UInt64(out.bytesWritten), cdSize = UInt64(central.count)
        try out.write(central)
        let count = UInt64(self.count)
        var end = Bytes()
        if count >= 0xFFFF || cdOffset >= Self.placeholder32 || cdSize >= Self.placeholder32 {
            let recordOffset = UInt64(out.bytesWritten)
            end.u32(ZipReader.zip64EndSignature); end.u64(44)
            end.u16(45); end.u16(45); end.u32(0); end.u32(0)
            end.u64(count); end.u64(count); end.u64(cdSize); end.u64(cdOffset)
            end.u32(ZipReader.zip64LocatorSignature); end.u32(0); end.u64(recordOffset); end.u32(1)
        }
        let count16 = UInt16(min(count, 0xFFFF))
        end.u32(ZipReader.endSignature)
        end.u16(0); end.u16(0); end.u16(count16); end.u16(count16)
        end.u32(UInt32(min(cdSize, Self.placeholder32))); end.u32(UInt32(min(cdOffset, Self.placeholder32)))
        end.u16(0)
        try out.write(end.bytes)
    }
}

/// Little-endian field appender for the records above.
private struct Bytes {
    var bytes: [UInt8] = []
    mutating func u16(_ v: UInt16) { bytes += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }
    mutating func u32(_ v: UInt32) { u16(UInt16(truncatingIfNeeded: v)); u16(UInt16(truncatingIfNeeded: v >> 16)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(truncatingIfNeeded: v)); u32(UInt32(truncatingIfNeeded: v >> 32)) }
}

/// One member of a zip archive as the central directory describes it, after every check.
struct ZipEntry: Equatable {
    enum Method: UInt16 { case stored = 0, deflated = 8 }

    var name: String
    var method: Method
    var crc: UInt32
    var compressedSize: Int
    var uncompressedSize: Int
    var localHeaderOffset: Int
    /// Where the member's (possibly compressed) bytes start; they run for `compressedSize` bytes.
    var dataOffset: Int
}

/// Reads a zip archive's table of contents from its central directory and checks it against the
/// file: end record, zip64 records, counts, bounds, local headers, member names and overlaps. It only
/// locates data; inflating is the caller's business.
enum ZipReader {
    static let localSignature: UInt32 = 0x0403_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let endSignature: UInt32 = 0x0605_4B50
    static let zip64EndSignature: UInt32 = 0x0606_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    static func entries(_ bytes: UnsafeRawBufferPointer, file: String, limits: ReadLimits = .default) throws -> [ZipEntry] {
        let directory = try centralDirectory(bytes, file: file)
        guard directory.count <= limits.maxTensorCount else {
            throw FormatError(.tooLarge, file: file, "zip declares \(directory.count) members, over the cap of \(limits.maxTensorCount) (ReadLimits.maxTensorCount)")
        }
        // Every central entry is at least 46 bytes, so a count the directory cannot hold is caught
        // here, before any allocation sized by it.
        guard directory.count <= directory.size / 46 else {
            throw FormatError(.badZip, file: file, "end record declares \(directory.count) members but the central directory is only \(directory.size) bytes (46 per member at least)")
        }
        var entries: [ZipEntry] = []
        entries.reserveCapacity(directory.count)
        var names = Set<String>()
        var at = directory.offset
        let end = directory.offset + directory.size
        while at < end {
            guard entries.count < directory.count else {
                throw FormatError(.badZip, file: file, "central directory holds more than the \(directory.count) members the end record declares")
            }
            let entry = try centralEntry(bytes, at: &at, end: end, dataLimit: directory.offset, file: file)
            guard names.insert(entry.name).inserted else {
                throw FormatError(.badMemberName, file: file, "member '\(entry.name)' appears twice in the central directory")
            }
            entries.append(entry)
        }
        guard at == end, entries.count == directory.count else {
            throw FormatError(.badZip, file: file, "end record declares \(directory.count) members in \(directory.size) bytes; the central directory holds \(entries.count) members in \(at - directory.offset) bytes")
        }
        try checkNoOverlap(entries, file: file)
        return entries
    }

    // MARK: - End of central directory

    private struct Directory { var offset: Int, size: Int, count: Int }

    private static func centralDirectory(_ bytes: UnsafeRawBufferPointer, file: String) throws -> Directory {
        guard bytes.count >= 22 else {
            throw FormatError(.badZip, file: file, "\(bytes.count) bytes is too short for a zip end-of-central-directory record (22 bytes)")
        }
        // The end record is the last 22 bytes plus a comment of up to 65535 bytes. Requiring the
        // comment to reach the end of the file exactly keeps a signature inside a comment from matching.
        var eocd = -1
        var candidate = bytes.count - 22
        while candidate >= max(0, bytes.count - 22 - 65535) {
            if u32(bytes, candidate) == endSignature && candidate + 22 + Int(u16(bytes, candidate + 20)) == bytes.count {
                eocd = candidate
                break
            }
            candidate -= 1
        }
        guard eocd >= 0 else {
            throw FormatError(.badZip, file: file, "no zip end-of-central-directory record in the last 65557 bytes; the file is not a zip archive or is truncated")
        }
        let disk = u16(bytes, eocd + 4), cdDisk = u16(bytes, eocd + 6)
        let diskCount = u16(bytes, eocd + 8), count16 = u16(bytes, eocd + 10)
        let size32 = u32(bytes, eocd + 12), offset32 = u32(bytes, eocd + 16)
        guard disk == 0, cdDisk == 0 else {
            throw FormatError(.unsupportedZip, file: file, "multi-disk (split) archives are not supported: disk \(disk), central directory on disk \(cdDisk)")
        }
        guard diskCount == count16 else {
            throw FormatError(.badZip, file: file, "end record counts disagree: \(diskCount) members on this disk, \(count16) in total")
        }
        var directory = Directory(offset: Int(offset32), size: Int(size32), count: Int(count16))
        var directoryLimit = eocd
        let hasLocator = eocd >= 20 && u32(bytes, eocd - 20) == zip64LocatorSignature
        if hasLocator {
            let record = try zip64End(bytes, locator: eocd - 20, file: file)
            // A 32-bit field must either agree with the zip64 record or be the 0xFF… placeholder.
            guard count16 == 0xFFFF || Int(count16) == record.count,
                  size32 == 0xFFFF_FFFF || Int(size32) == record.size,
                  offset32 == 0xFFFF_FFFF || Int(offset32) == record.offset else {
                throw FormatError(.badZip, file: file, "end record (\(count16) members, \(size32) bytes at \(offset32)) disagrees with the zip64 end record (\(record.count) members, \(record.size) bytes at \(record.offset))")
            }
            directory = Directory(offset: record.offset, size: record.size, count: record.count)
            directoryLimit = record.recordOffset
        } else if count16 == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
            throw FormatError(.badZip, file: file, "end record has zip64 placeholders (0xFFFF…) but no zip64 end locator precedes it")
        }
        guard directory.offset <= directoryLimit, directory.size <= directoryLimit - directory.offset else {
            throw FormatError(.badZip, file: file, "central directory (\(directory.size) bytes at offset \(directory.offset)) is outside the file: it must end by offset \(directoryLimit)")
        }
        return directory
    }

    private struct Zip64End { var offset: Int, size: Int, count: Int, recordOffset: Int }

    private static func zip64End(_ bytes: UnsafeRawBufferPointer, locator: Int, file: String) throws -> Zip64End {
        let disk = u32(bytes, locator + 4), disks = u32(bytes, locator + 16)
        guard disk == 0, disks == 1 else {
            throw FormatError(.unsupportedZip, file: file, "zip64 locator names disk \(disk) of \(disks); multi-disk archives are not supported")
        }
        guard let at = Int(exactly: u64(bytes, locator + 8)), at <= locator - 56 else {
            throw FormatError(.badZip, file: file, "zip64 end record offset \(u64(bytes, locator + 8)) does not leave 56 bytes before the locator at \(locator)")
        }
        guard u32(bytes, at) == zip64EndSignature else {
            throw FormatError(.badZip, file: file, "no zip64 end record signature at offset \(at) (found \(hex(u32(bytes, at))))")
        }
        guard let recordSize = Int(exactly: u64(bytes, at + 4)), recordSize >= 44, recordSize <= locator - at - 12 else {
            throw FormatError(.badZip, file: file, "zip64 end record at \(at) declares a size of \(u64(bytes, at + 4)) bytes; expected 44 up to the locator")
        }
        let onDisk = u64(bytes, at + 24), total = u64(bytes, at + 32)
        guard u32(bytes, at + 16) == 0, u32(bytes, at + 20) == 0 else {
            throw FormatError(.unsupportedZip, file: file, "zip64 end record names another disk; multi-disk archives are not supported")
        }
        guard onDisk == total else {
            throw FormatError(.badZip, file: file, "zip64 end record counts disagree: \(onDisk) members on this disk, \(total) in total")
        }
        guard let count = Int(exactly: total), let size = Int(exactly: u64(bytes, at + 40)),
              let offset = Int(exactly: u64(bytes, at + 48)) else {
            throw FormatError(.badZip, file: file, "zip64 end record fields are over \(Int.max)")
        }
        return Zip64End(offset: offset, size: size, count: count, recordOffset: at)
    }

    // MARK: - Members

    private static func centralEntry(_ bytes: UnsafeRawBufferPointer, at: inout Int, end: Int,
                                     dataLimit: Int, file: String) throws -> ZipEntry {
        let start = at
        guard end - start >= 46, u32(bytes, start) == centralSignature else {
            throw FormatError(.badZip, file: file, "no central directory entry at offset \(start) (member \(start == end ? "missing" : "signature \(end - start >= 4 ? hex(u32(bytes, start)) : "cut off")"))")
        }
        let flags = u16(bytes, start + 8), methodCode = u16(bytes, start + 10)
        let crc = u32(bytes, start + 16)
        let nameLength = Int(u16(bytes, start + 28)), extraLength = Int(u16(bytes, start + 30))
        let commentLength = Int(u16(bytes, start + 32))
        let next = start + 46 + nameLength + extraLength + commentLength
        guard next <= end else {
            throw FormatError(.badZip, file: file, "central directory entry at offset \(start) runs past the end of the directory (\(next) > \(end))")
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(start + 46)..<(start + 46 + nameLength)])
        let name = try memberName(nameBytes, file: file)
        guard flags & 0x41 == 0 else {
            throw FormatError(.unsupportedZip, file: file, "member '\(name)' is encrypted (flags \(String(flags, radix: 16))); encrypted archives are not supported")
        }
        guard let method = ZipEntry.Method(rawValue: methodCode) else {
            throw FormatError(.unsupportedZip, file: file, "member '\(name)' uses compression method \(methodCode); only 0 (stored) and 8 (deflate) are supported")
        }
        let extra = UnsafeRawBufferPointer(rebasing: bytes[(start + 46 + nameLength)..<(start + 46 + nameLength + extraLength)])
        var fields = Zip64Fields(uncompressed: UInt64(u32(bytes, start + 24)), compressed: UInt64(u32(bytes, start + 20)),
                                 offset: UInt64(u32(bytes, start + 42)), disk: UInt32(u16(bytes, start + 34)))
        try fields.resolve(extra: extra, member: name, file: file)
        guard fields.disk == 0 else {
            throw FormatError(.unsupportedZip, file: file, "member '\(name)' starts on disk \(fields.disk); multi-disk archives are not supported")
        }
        guard let uncompressed = Int(exactly: fields.uncompressed), let compressed = Int(exactly: fields.compressed),
              let offset = Int(exactly: fields.offset) else {
            throw FormatError(.badZip, file: file, "member '\(name)': sizes or offset over \(Int.max)")
        }
        if method == .stored && compressed != uncompressed {
            throw FormatError(.badZip, file: file, "member '\(name)' is stored but its sizes differ: \(compressed) compressed, \(uncompressed) uncompressed")
        }
        at = next
        let dataOffset = try localData(bytes, offset: offset, name: nameBytes, member: name, methodCode: methodCode, file: file)
        guard dataOffset <= dataLimit, compressed <= dataLimit - dataOffset else {
            throw FormatError(.badZip, file: file, "member '\(name)': \(compressed) bytes of data at offset \(dataOffset) run past the start of the central directory at \(dataLimit)")
        }
        return ZipEntry(name: name, method: method, crc: crc, compressedSize: compressed, uncompressedSize: uncompressed,
                        localHeaderOffset: offset, dataOffset: dataOffset)
    }

    /// Checks the local header at `offset` against the central entry and returns where the data starts.
    /// Sizes and CRC in the local header are ignored: numpy writes 0xFFFFFFFF there with a zip64 extra,
    /// and streamed archives put zeros there; the central directory is the authority.
    private static func localData(_ bytes: UnsafeRawBufferPointer, offset: Int, name: UnsafeRawBufferPointer,
                                  member: String, methodCode: UInt16, file: String) throws -> Int {
        guard offset <= bytes.count - 30, u32(bytes, offset) == localSignature else {
            let found = offset <= bytes.count - 4 ? hex(u32(bytes, offset)) : "the end of the file"
            throw FormatError(.badZip, file: file, "member '\(member)': no local header signature at offset \(offset) (found \(found))")
        }
        let localFlags = u16(bytes, offset + 6), localMethod = u16(bytes, offset + 8)
        let nameLength = Int(u16(bytes, offset + 26)), extraLength = Int(u16(bytes, offset + 28))
        let dataOffset = offset + 30 + nameLength + extraLength
        guard dataOffset <= bytes.count else {
            throw FormatError(.badZip, file: file, "member '\(member)': local header at \(offset) runs past the end of the file")
        }
        guard UnsafeRawBufferPointer(rebasing: bytes[(offset + 30)..<(offset + 30 + nameLength)]).elementsEqual(name) else {
            let local = String(decoding: bytes[(offset + 30)..<(offset + 30 + nameLength)], as: UTF8.self)
            throw FormatError(.badZip, file: file, "member '\(member)': local header at \(offset) names '\(local)' instead")
        }
        guard localFlags & 0x41 == 0 else {
            throw FormatError(.unsupportedZip, file: file, "member '\(member)': local header marks it encrypted; encrypted archives are not supported")
        }
        guard localMethod == methodCode else {
            throw FormatError(.badZip, file: file, "member '\(member)': local header says method \(localMethod), central directory says \(methodCode)")
        }
        return dataOffset
    }

    /// Member names are used as tensor names, never as paths, but path-like names are refused so
    /// that nothing downstream is ever tempted. Interior `/` is allowed: TF-style names use it.
    static func memberName(_ raw: UnsafeRawBufferPointer, file: String) throws -> String {
        guard let name = String(validating: raw, as: UTF8.self) else {
            throw FormatError(.badMemberName, file: file, "member name \(raw.map { String($0, radix: 16) }.joined(separator: " ")) is not valid UTF-8")
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        let reason: String? = if name.isEmpty { "is empty" }
            else if name.hasPrefix("/") { "is an absolute path" }
            else if name.contains("\\") { "contains a backslash" }
            else if name.utf8.contains(0) { "contains a NUL byte" }
            else if name.utf8.count >= 2 && name.utf8.dropFirst().first == UInt8(ascii: ":") { "starts with a drive letter" }
            else if components.contains(where: { $0 == ".." || $0 == "." }) { "contains a '.' or '..' path component" }
            else if components.contains(where: \.isEmpty) { "has an empty path component (a directory entry or '//')" }
            else { nil }
        if let reason {
            throw FormatError(.badMemberName, file: file, "member name '\(name)' \(reason); expected a plain name such as 'weight.npy'")
        }
        return name
    }

    /// The overlap zip bomb points many entries at the same data; each member must own
    /// [local header, data end) alone.
    private static func checkNoOverlap(_ entries: [ZipEntry], file: String) throws {
        let ordered = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.dataOffset + a.compressedSize > b.localHeaderOffset {
            throw FormatError(.badZip, file: file, "members '\(a.name)' (data ends at \(a.dataOffset + a.compressedSize)) and '\(b.name)' (header at \(b.localHeaderOffset)) overlap")
        }
    }

    // Little-endian field reads; callers have bounds-checked the offsets.
    static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 { UInt32(u16(b, at)) | UInt32(u16(b, at + 2)) << 16 }
    static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 { UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32 }
}

/// The 32-bit size/offset fields of a central entry, replaced from its zip64 extra (id 1) where they
/// hold the 0xFFFFFFFF placeholder. The extra lists only the replaced fields, in this order.
private struct Zip64Fields {
    var uncompressed: UInt64
    var compressed: UInt64
    var offset: UInt64
    var disk: UInt32

    mutating func resolve(extra: UnsafeRawBufferPointer, member: String, file: String) throws {
        var zip64: UnsafeRawBufferPointer?
        var at = 0
        while at < extra.count {
            guard extra.count - at >= 4 else {
                throw FormatError(.badZip, file: file, "member '\(member)': extra field has \(extra.count - at) stray bytes at its end")
            }
            let id = ZipReader.u16(extra, at), size = Int(ZipReader.u16(extra, at + 2))
            guard size <= extra.count - at - 4 else {
                throw FormatError(.badZip, file: file, "member '\(member)': extra block 0x\(String(id, radix: 16)) of \(size) bytes runs past the extra field (\(extra.count - at - 4) left)")
            }
            if id == 1 {
                guard zip64 == nil else {
                    throw FormatError(.badZip, file: file, "member '\(member)': two zip64 extra blocks")
                }
                zip64 = UnsafeRawBufferPointer(rebasing: extra[(at + 4)..<(at + 4 + size)])
            }
            at += 4 + size
        }
        let needs = [uncompressed == 0xFFFF_FFFF, compressed == 0xFFFF_FFFF, offset == 0xFFFF_FFFF]
        let needed = needs.filter { $0 }.count * 8 + (disk == 0xFFFF ? 4 : 0)
        guard needed > 0 else { return }
        guard let zip64, zip64.count >= needed else {
            throw FormatError(.badZip, file: file, "member '\(member)': central entry has 0xFFFFFFFF placeholders needing \(needed) bytes of zip64 extra, found \(zip64.map { "\($0.count)" } ?? "none")")
        }
        var at64 = 0
        func next() -> UInt64 {
            defer { at64 += 8 }
            return ZipReader.u64(zip64, at64)
        }
        if needs[0] { uncompressed = next() }
        if needs[1] { compressed = next() }
        if needs[2] { offset = next() }
        if disk == 0xFFFF { disk = ZipReader.u32(zip64, at64) }
    }
}

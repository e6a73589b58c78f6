/// Builds zip archives in code, with a knob for every field the npz reader checks, so each bad-input
/// row states exactly what is wrong. Deflate streams are built from stored deflate blocks
/// (`storedDeflate`), which makes lengths exact without linking zlib into the tests.
struct ZipMember {
    var name: String
    var payload: [UInt8]
    var uncompressedSize: Int
    var crc: UInt32
    var method: UInt16 = 0
    var flags: UInt16 = 0
    var localName: String?
    var localSignature: UInt32 = 0x0403_4B50
    var localMethod: UInt16?
    var nameBytes: [UInt8]?
    /// Put both sizes and the offset in a central zip64 extra, with 0xFFFFFFFF in the 32-bit fields.
    var zip64: Bool = false
    /// Replaces the central extra field (used with `zip64` placeholders to forge malformed extras).
    var centralExtra: [UInt8]?
    var declaredCompressedSize: Int?
    var declaredOffset: Int?
    var disk: UInt16 = 0

    static func stored(_ name: String, _ data: [UInt8]) -> ZipMember {
        ZipMember(name: name, payload: data, uncompressedSize: data.count, crc: crc32(data))
    }

    /// A method-8 member whose stream is `stream`; the declared size and CRC describe `data`.
    static func deflated(_ name: String, _ data: [UInt8], stream: [UInt8]? = nil) -> ZipMember {
        ZipMember(name: name, payload: stream ?? storedDeflate(data), uncompressedSize: data.count, crc: crc32(data), method: 8)
    }
}

struct ZipArchive {
    var members: [ZipMember]
    var counts: (disk: Int, total: Int)?
    var directoryOffsetDelta = 0
    var directorySizeDelta = 0
    var endDisk: UInt16 = 0
    /// Write zip64 end record + locator, with 0xFFFF… placeholders in the classic end record.
    var zip64End = false
    var zip64RecordOffset: UInt64?
    var zip64RecordSignature: UInt32 = 0x0606_4B50
    var placeholdersWithoutLocator = false

    init(_ members: [ZipMember]) { self.members = members }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for m in members {
            let offset = out.count
            let name = m.nameBytes ?? Array(m.name.utf8)
            let localName = m.localName.map { Array($0.utf8) } ?? name
            out += le32(m.localSignature) + le16(20) + le16(m.flags) + le16(m.localMethod ?? m.method) + le16(0) + le16(0x21)
            out += le32(m.crc) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(UInt16(localName.count)) + le16(20)
            // Like numpy: a zip64 local extra with the sizes, placeholders in the 32-bit fields.
            out += localName + le16(1) + le16(16) + le64(UInt64(m.uncompressedSize)) + le64(UInt64(m.payload.count))
            out += m.payload
            let csize = m.declaredCompressedSize ?? m.payload.count
            let off = m.declaredOffset ?? offset
            var extra: [UInt8] = []
            if m.zip64 { extra = le16(1) + le16(24) + le64(UInt64(m.uncompressedSize)) + le64(UInt64(csize)) + le64(UInt64(off)) }
            if let forced = m.centralExtra { extra = forced }
            central += le32(0x0201_4B50) + le16(45) + le16(45) + le16(m.flags) + le16(m.method) + le16(0) + le16(0x21) + le32(m.crc)
            central += m.zip64 ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(UInt32(csize)) + le32(UInt32(m.uncompressedSize))
            central += le16(UInt16(name.count)) + le16(UInt16(extra.count)) + le16(0) + le16(m.disk) + le16(0) + le32(0)
            central += (m.zip64 ? le32(0xFFFF_FFFF) : le32(UInt32(off))) + name + extra
        }
        let cdOffset = out.count + directoryOffsetDelta
        let cdSize = central.count + directorySizeDelta
        out += central
        let count = counts ?? (members.count, members.count)
        if zip64End {
            let record = out.count
            out += le32(zip64RecordSignature) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0)
            out += le64(UInt64(count.disk)) + le64(UInt64(count.total)) + le64(UInt64(cdSize)) + le64(UInt64(cdOffset))
            out += le32(0x0706_4B50) + le32(0) + le64(zip64RecordOffset ?? UInt64(record)) + le32(1)
        }
        let placeholders = zip64End || placeholdersWithoutLocator
        out += le32(0x0605_4B50) + le16(endDisk) + le16(0)
        out += placeholders ? le16(0xFFFF) + le16(0xFFFF) : le16(UInt16(count.disk)) + le16(UInt16(count.total))
        out += placeholders ? le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) : le32(UInt32(cdSize)) + le32(UInt32(cdOffset))
        return out + le16(0)
    }
}

/// A raw deflate stream of stored blocks (BTYPE 00) holding exactly `data`.
func storedDeflate(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var start = 0
    repeat {
        let n = min(65_535, data.count - start)
        let final: UInt8 = start + n == data.count ? 1 : 0
        out += [final] + le16(UInt16(n)) + le16(~UInt16(n)) + data[start..<(start + n)]
        start += n
    } while start < data.count
    return out
}

func crc32(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { le16(UInt16(v & 0xFFFF)) + le16(UInt16(v >> 16)) }
func le64(_ v: UInt64) -> [UInt8] { le32(UInt32(v & 0xFFFF_FFFF)) + le32(UInt32(v >> 32)) }

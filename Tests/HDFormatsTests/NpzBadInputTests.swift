import Foundation
import HDFormats
import HDTestSupport
import Testing

struct NpzBadCase: Sendable, CustomTestStringConvertible {
    let label: String
    let kind: FormatError.Kind
    let bytes: [UInt8]
    /// Text the message must contain: the member's name, or nil for archive-level errors.
    let names: String?
    var limits = ReadLimits.default
    var testDescription: String { label }

    init(_ label: String, _ kind: FormatError.Kind, names: String? = "'w.npy'", bytes: [UInt8], limits: ReadLimits = .default) {
        self.label = label
        self.kind = kind
        self.bytes = bytes
        self.names = names
        self.limits = limits
    }

    init(_ label: String, _ kind: FormatError.Kind, names: String? = "'w.npy'", _ archive: ZipArchive, limits: ReadLimits = .default) {
        self.init(label, kind, names: names, bytes: archive.bytes, limits: limits)
    }

    init(_ label: String, _ kind: FormatError.Kind, names: String? = "'w.npy'", member: ZipMember) {
        self.init(label, kind, names: names, ZipArchive([.stored("a.npy", Self.npy), member]))
    }

    /// A valid two-float array: every row changes one thing about an archive that otherwise reads.
    static let npy = NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(2,)"), data: NpyBytes.le([Float(1).bitPattern, Float(2).bitPattern]))
    static let w = ZipMember.stored("w.npy", npy)
    static let wDeflated = ZipMember.deflated("w.npy", npy)

    static func with(_ change: (inout ZipMember) -> Void, _ base: ZipMember = w) -> ZipMember {
        var m = base
        change(&m)
        return m
    }

    static func archive(_ change: (inout ZipArchive) -> Void) -> ZipArchive {
        var a = ZipArchive([.stored("a.npy", npy), w])
        change(&a)
        return a
    }

    static let archiveLevel: [NpzBadCase] = [
        NpzBadCase("no end record", .badZip, names: nil, bytes: npy + [UInt8](repeating: 0, count: 40)),
        NpzBadCase("end record cut short", .badZip, names: nil, bytes: Array(ZipArchive([w]).bytes.dropLast(3))),
        NpzBadCase("end record comment length past the end", .badZip, names: nil, bytes: Array(ZipArchive([w]).bytes.dropLast(2)) + le16(10)),
        NpzBadCase("end-record counts disagree", .badZip, names: nil, archive { $0.counts = (1, 2) }),
        NpzBadCase("end record declares more members", .badZip, names: nil, archive { $0.counts = (3, 3) }),
        NpzBadCase("end record declares fewer members", .badZip, names: nil, archive { $0.counts = (1, 1) }),
        NpzBadCase("count the directory cannot hold", .badZip, names: nil, archive { $0.counts = (60_000, 60_000) }),
        NpzBadCase("central directory starts past the file", .badZip, names: nil, archive { $0.directoryOffsetDelta = 1 << 20 }),
        NpzBadCase("central directory runs into the end record", .badZip, names: nil, archive { $0.directorySizeDelta = 4 }),
        NpzBadCase("central directory starts mid-entry", .badZip, names: nil, archive { $0.directoryOffsetDelta = 2; $0.directorySizeDelta = -2 }),
        NpzBadCase("multi-disk archive", .unsupportedZip, names: nil, archive { $0.endDisk = 1 }),
        NpzBadCase("zip64 placeholders without a locator", .badZip, names: nil, archive { $0.placeholdersWithoutLocator = true }),
        NpzBadCase("zip64 record offset outside the file", .badZip, names: nil, archive { $0.zip64End = true; $0.zip64RecordOffset = 1 << 40 }),
        NpzBadCase("zip64 record signature wrong", .badZip, names: nil, archive { $0.zip64End = true; $0.zip64RecordSignature = 0x1234_5678 }),
        NpzBadCase("zip64 record counts disagree", .badZip, names: nil, archive { $0.zip64End = true; $0.counts = (1, 2) }),
        NpzBadCase("total decompressed size over the cap", .tooLarge, names: nil, ZipArchive([.stored("a.npy", npy), w]),
                   limits: ReadLimits(maxDecompressedBytes: 2 * npy.count - 1)),
        NpzBadCase("more members than the cap", .tooLarge, names: nil, ZipArchive([.stored("a.npy", npy), w]), limits: ReadLimits(maxTensorCount: 1)),
    ]

    static let memberLevel: [NpzBadCase] = [
        NpzBadCase("zip64 extra missing for placeholder fields", .badZip, member: with { $0.zip64 = true; $0.centralExtra = [] }),
        NpzBadCase("zip64 extra shorter than its placeholders", .badZip, member: with { $0.zip64 = true; $0.centralExtra = le16(1) + le16(8) + le64(64) }),
        NpzBadCase("extra block runs past the extra field", .badZip, member: with { $0.centralExtra = le16(0x5455) + le16(40) + [1, 2] }),
        NpzBadCase("stray bytes after the extra blocks", .badZip, member: with { $0.centralExtra = [1, 2] }),
        NpzBadCase("two zip64 extra blocks", .badZip, member: with { $0.zip64 = true; $0.centralExtra = (le16(1) + le16(24) + le64(1) + le64(1) + le64(1)) + le16(1) + le16(0) }),
        NpzBadCase("local header signature wrong", .badZip, member: with { $0.localSignature = 0x0403_4B51 }),
        NpzBadCase("local header name differs", .badZip, member: with { $0.localName = "v.npy" }),
        NpzBadCase("local header method differs", .badZip, member: with { $0.localMethod = 8 }),
        NpzBadCase("local header offset past the file", .badZip, member: with { $0.declaredOffset = 1 << 30 }),
        NpzBadCase("encrypted member", .unsupportedZip, member: with { $0.flags = 1 }),
        NpzBadCase("strong-encrypted member", .unsupportedZip, member: with { $0.flags = 0x41 }),
        NpzBadCase("method 12 (bzip2)", .unsupportedZip, member: with { $0.method = 12 }),
        NpzBadCase("member on another disk", .unsupportedZip, member: with { $0.disk = 1 }),
        NpzBadCase("stored member with differing sizes", .badZip, member: with { $0.uncompressedSize += 1 }),
        NpzBadCase("data runs into the central directory", .badZip, member: with { $0.declaredCompressedSize = 1 << 20; $0.method = 8 }),
        NpzBadCase("overlapping members (the overlap zip bomb)", .badZip, names: "'a.npy'",
                   ZipArchive([with({ $0.declaredCompressedSize = npy.count + 40; $0.method = 8 }, .stored("a.npy", npy)), w])),
        NpzBadCase("duplicate member names", .badMemberName, ZipArchive([w, w])),
        NpzBadCase("empty member name", .badMemberName, names: "''", member: .stored("", npy)),
        NpzBadCase("absolute member path", .badMemberName, names: "'/w.npy'", member: .stored("/w.npy", npy)),
        NpzBadCase("parent-directory member path", .badMemberName, names: "'../w.npy'", member: .stored("../w.npy", npy)),
        NpzBadCase("'..' inside a member path", .badMemberName, names: "'a/../w.npy'", member: .stored("a/../w.npy", npy)),
        NpzBadCase("'.' inside a member path", .badMemberName, names: "'a/./w.npy'", member: .stored("a/./w.npy", npy)),
        NpzBadCase("backslash in a member name", .badMemberName, names: "'a\\w.npy'", member: .stored("a\\w.npy", npy)),
        NpzBadCase("directory entry", .badMemberName, names: "'dir/'", member: .stored("dir/", [])),
        NpzBadCase("empty path component", .badMemberName, names: "'a//w.npy'", member: .stored("a//w.npy", npy)),
        NpzBadCase("drive-letter member path", .badMemberName, names: "'C:w.npy'", member: .stored("C:w.npy", npy)),
        NpzBadCase("non-UTF-8 member name", .badMemberName, names: "ff", member: with { $0.nameBytes = [0xFF] + Array(".npy".utf8); $0.localName = "\u{FF}.npy" }),
        NpzBadCase("member that is not .npy", .badMemberName, names: "'notes.txt'", member: .stored("notes.txt", npy)),
        NpzBadCase("member named just '.npy'", .badMemberName, names: "'.npy'", member: .stored(".npy", npy)),
        NpzBadCase("object dtype inside a member", .unsupportedDType,
                   member: .stored("w.npy", NpyBytes.image(header: NpyBytes.dict("|O", shape: "(1,)"), data: [0]))),
        NpzBadCase("member shorter than its npy shape", .truncated,
                   member: .stored("w.npy", NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(3,)"), data: NpyBytes.le([UInt32(0), 0])))),
        NpzBadCase("bad npy magic inside a member", .wrongFormat, member: .stored("w.npy", [0x50] + npy.dropFirst())),
        NpzBadCase("stored CRC mismatch", .checksumMismatch, member: with { $0.crc ^= 1 }),
        NpzBadCase("corrupt deflate stream", .corruptDeflate, member: with({ $0.payload[0] = 0x07 }, wDeflated)),
        NpzBadCase("compressed data cut short", .truncated, member: with({ $0.payload.removeLast(5) }, wDeflated)),
        NpzBadCase("stream ends before the declared size", .truncated, member: .deflated(
            "w.npy", NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(3,)"), data: NpyBytes.le([UInt32(0), 0, 0])),
            stream: storedDeflate(NpyBytes.image(header: NpyBytes.dict("<f4", shape: "(3,)"), data: NpyBytes.le([UInt32(0), 0]))))),
        NpzBadCase("stream inflates past the declared size", .corruptDeflate, member: .deflated("w.npy", npy, stream: storedDeflate(npy + [9, 9, 9, 9]))),
        NpzBadCase("input left over after the stream ends", .trailingBytes, member: with({ $0.payload += [0, 0, 0] }, wDeflated)),
        NpzBadCase("deflated CRC mismatch", .checksumMismatch, member: with({ $0.crc ^= 0x8000_0000 }, wDeflated)),
        NpzBadCase("deflated member smaller than an npy preamble", .tooSmall, member: .deflated("w.npy", Array(npy.prefix(6)))),
        NpzBadCase("empty deflate stream", .truncated, member: .deflated("w.npy", npy, stream: [])),
    ]
}

@Suite("Npz bad input")
struct NpzBadInputTests {
    @Test(arguments: NpzBadCase.archiveLevel + NpzBadCase.memberLevel)
    func refused(_ bad: NpzBadCase) {
        for threads in [1, 2] {
            do {
                _ = try bad.bytes.withUnsafeBytes { try Npz.read(bytes: $0, name: "bad.npz", limits: bad.limits, threads: threads) }
                Issue.record("\(bad.label): accepted")
            } catch let error as FormatError {
                #expect(error.kind == bad.kind, "\(bad.label): \(error)")
                #expect(error.file == "bad.npz", "\(bad.label): \(error)")
                if let names = bad.names { #expect(error.message.contains(names), "\(bad.label): \(error)") }
            } catch {
                Issue.record("\(bad.label): \(error)")
            }
        }
    }

    @Test("the builder's baseline archives read, including zip64 extras and end records")
    func baselinesRead() throws {
        let variants: [ZipArchive] = [
            ZipArchive([.stored("a.npy", NpzBadCase.npy), NpzBadCase.w]),
            ZipArchive([.stored("a.npy", NpzBadCase.npy), NpzBadCase.wDeflated]),
            ZipArchive([NpzBadCase.with { $0.zip64 = true }, NpzBadCase.with({ $0.zip64 = true }, .deflated("b.npy", NpzBadCase.npy))]),
            NpzBadCase.archive { $0.zip64End = true },
        ]
        for archive in variants {
            let set = try archive.bytes.withUnsafeBytes { try Npz.read(bytes: $0, threads: 2) }
            #expect(set.tensors.count == 2)
            #expect(set["w"]?.floats?.array == [1, 2])
        }
    }

    @Test("files: not a zip, an LFS pointer, a PyTorch checkpoint")
    func files() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let torch = ZipArchive([.stored("archive/data.pkl", [0x80, 2, 0x2E])]).bytes
        let cases: [(String, [UInt8], FormatError.Kind)] = [
            ("npy.npz", NpzBadCase.npy + [UInt8](repeating: 0, count: 30), .wrongFormat),
            ("lfs.npz", Array("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n".utf8), .gitLFSPointer),
            ("torch.npz", torch, .pickle),
        ]
        for (name, bytes, kind) in cases {
            let path = dir + "/" + name
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                _ = try Npz.read(path: path)
                Issue.record("\(name): accepted")
            } catch let error as FormatError {
                #expect(error.kind == kind && error.file == path, "\(error)")
            }
        }
    }
}

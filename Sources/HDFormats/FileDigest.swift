import Crypto

/// SHA-256 of file contents: checkpoints record the digest of what they were made from
/// (`hd.source`, the teacher of a student) so a run can be traced to its exact inputs.
public enum FileDigest {
    public static func sha256(of bytes: UnsafeRawBufferPointer) -> String {
        digest(bytes, releasingPages: false)
    }

    /// The digest of a file, read through a mapping whose pages are handed back as they are hashed:
    /// hashing a 1.3 GB student.ckpt otherwise leaves all of it resident (hd-export's peak RSS went
    /// from 1.25 to 2.09 GiB at this one call).
    public static func sha256(path: String, limits: ReadLimits = .default) throws -> String {
        let file = try MappedFile(path: path, limits: limits, minimumBytes: 0)
        return withExtendedLifetime(file) { digest(file.bytes, releasingPages: true) }
    }

    private static func digest(_ bytes: UnsafeRawBufferPointer, releasingPages: Bool) -> String {
        var hasher = SHA256()
        // Feed in slices so a multi-GB mapping is never copied whole.
        let chunk = 1 << 24
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
            hasher.update(bufferPointer: slice)
            if releasingPages { ResidentPages.release(slice) }
            offset = end
        }
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in hasher.finalize() {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

}

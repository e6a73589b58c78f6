import Crypto

/// SHA-256 of file contents: checkpoints record the digest of what they were made from
/// (`hd.source`, the teacher of a student) so a run can be traced to its exact inputs.
public enum FileDigest {
    public static func sha256(of bytes: UnsafeRawBufferPointer) -> String {
        var hasher = SHA256()
        // Feed in slices so a multi-GB mapping is never copied whole.
        let chunk = 1 << 24
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
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

    public static func sha256(path: String, limits: ReadLimits = .default) throws -> String {
        let file = try MappedFile(path: path, limits: limits, minimumBytes: 0)
        return sha256(of: file.bytes)
    }
}

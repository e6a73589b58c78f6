/// What a file's first bytes say it is, independent of its extension.
public enum FileKind: Equatable, Sendable {
    case safetensors, npy, npz, pytorchZip, pickle, gitLFSPointer, unknown

    public var description: String {
        switch self {
        case .safetensors: "a safetensors file"
        case .npy: "a NumPy .npy array"
        case .npz: "a NumPy .npz archive"
        case .pytorchZip: "a PyTorch zip checkpoint (pickle inside)"
        case .pickle: "a Python pickle"
        case .gitLFSPointer: "a Git LFS pointer"
        case .unknown: "an unrecognised file"
        }
    }

    /// Sniffs the kind from the leading bytes (and, for zips, whether a `data.pkl` member name appears).
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> FileKind {
        func starts(with prefix: [UInt8]) -> Bool {
            bytes.count >= prefix.count && zip(bytes.prefix(prefix.count), prefix).allSatisfy { $0 == $1 }
        }
        if starts(with: Array("version https://git-lfs".utf8)) { return .gitLFSPointer }
        if starts(with: [0x93] + Array("NUMPY".utf8)) { return .npy }
        if starts(with: [0x50, 0x4B, 0x03, 0x04]) || starts(with: [0x50, 0x4B, 0x05, 0x06]) {
            // PyTorch's zip format stores `<name>/data.pkl`; numpy's npz stores only `.npy` members.
            // The name appears in the first local header, so a bounded scan suffices.
            let window = bytes.prefix(4096)
            let needle = Array("data.pkl".utf8)
            if window.count >= needle.count {
                for i in 0...(window.count - needle.count) where window[i] == needle[0] {
                    if zip(window[i..<(i + needle.count)], needle).allSatisfy({ $0 == $1 }) { return .pytorchZip }
                }
            }
            return .npz
        }
        // Pickle protocol 2–5 starts with PROTO (0x80) and the protocol number.
        if bytes.count >= 2, bytes[0] == 0x80, (2...5).contains(bytes[1]) { return .pickle }
        // safetensors: u64 little-endian header length, then a JSON object. JSON whitespace may come
        // before the `{` (the reference implementation accepts it, and writers pad headers for
        // alignment), so it is skipped within the declared header; a header length of 2^48 or more
        // (bytes 6 and 7 nonzero, as in any text file) never starts a padded safetensors header.
        if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") { return .safetensors }
        if bytes.count >= 9, bytes[6] == 0, bytes[7] == 0, isJSONWhitespace(bytes[8]) {
            let declared = Int(UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self)))
            let headerEnd = 8 + declared  // < 2^48 + 8: cannot overflow
            var i = 8
            while i < bytes.count, i < headerEnd, isJSONWhitespace(bytes[i]) { i += 1 }
            if i < bytes.count, i < headerEnd, bytes[i] == UInt8(ascii: "{") { return .safetensors }
            // The sniffed window ended inside the leading whitespace: let the parser decide.
            if i == bytes.count, headerEnd > bytes.count { return .safetensors }
        }
        return .unknown
    }

    /// JSON's insignificant whitespace (RFC 8259 §2): space, tab, line feed, carriage return.
    static func isJSONWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
    }
}

extension FileKind {
    /// Refuses `bytes` unless they look like `expected` (nil: any tensor container), with one message
    /// per kind of mistake: a Git LFS pointer says how to get the real file, a pickle why it is never
    /// loaded, anything else what it looks like. `allowUnknown` lets unrecognised bytes through to a
    /// parser that reports precisely what is wrong (a safetensors header that is not an object, say).
    @discardableResult
    public static func require(_ expected: FileKind?, _ bytes: UnsafeRawBufferPointer, file: String,
                               allowUnknown: Bool = false) throws -> FileKind {
        let kind = detect(bytes)
        let wanted = expected?.description ?? "a safetensors, .npy or .npz file"
        switch kind {
        case .gitLFSPointer:
            throw FormatError(.gitLFSPointer, file: file, "is a Git LFS pointer, not the model's bytes: run `git lfs pull` in its repository (or fetch the real file) and retry")
        case .pickle, .pytorchZip:
            throw FormatError(.pickle, file: file, "is \(kind.description), expected \(wanted); loading a pickle can run arbitrary code, so it is refused: convert it to safetensors first (e.g. `safetensors.torch.save_file(torch.load(path, weights_only=True), 'model.safetensors')`)")
        case .unknown where allowUnknown:
            return kind
        case .unknown where expected == nil:
            let head = bytes.prefix(8).map { b in b >= 0x20 && b < 0x7F ? String(UnicodeScalar(b)) : "." }.joined()
            throw FormatError(.wrongFormat, file: file, "is not a safetensors, .npy or .npz file (starts with \"\(head)\"); expected one of those")
        default:
            guard let expected, kind != expected else { return kind }
            throw FormatError(.wrongFormat, file: file, "looks like \(kind.description), not \(expected.description)")
        }
    }
}

/// One entry point for every tensor container we read: sniffs the file's first bytes, checks they
/// agree with the extension, refuses what we must not load (pickles, LFS pointers), and dispatches.
public enum TensorFile {
    /// Extensions that promise a particular format. Others (`.ckpt`, none) are judged by content.
    static let promisedKind: [String: FileKind] = ["safetensors": .safetensors, "npz": .npz, "npy": .npy]

    /// Validates the path (exists, regular, non-empty, under the cap) and says what the bytes are.
    public static func sniff(path: String, limits: ReadLimits = .default) throws -> FileKind {
        let file = try MappedFile(path: path, limits: limits)
        let kind = try FileKind.require(nil, UnsafeRawBufferPointer(rebasing: file.bytes.prefix(4096)), file: path)
        let ext = path.split(separator: "/").last.flatMap { name in name.contains(".") ? name.split(separator: ".").last : nil }
        if let ext, let promised = promisedKind[ext.lowercased()], promised != kind {
            throw FormatError(.wrongFormat, file: path, "has the extension .\(ext) but its bytes look like \(kind.description); rename it or check how it was written")
        }
        return kind
    }

    /// Reads every tensor in a safetensors file or npz archive (a lone `.npy` becomes one tensor named
    /// after the file's stem).
    public static func read(path: String, limits: ReadLimits = .default, threads: Int = 0) throws -> (kind: FileKind, tensors: TensorSet) {
        let kind = try sniff(path: path, limits: limits)
        switch kind {
        case .safetensors:
            return (kind, try SafeTensors.read(path: path, limits: limits))
        case .npz:
            return (kind, try Npz.read(path: path, limits: limits, threads: threads > 0 ? threads : Npz.defaultThreads))
        case .npy:
            let base = path.split(separator: "/").last.map(String.init) ?? path
            let stem = base.hasSuffix(".npy") ? String(base.dropLast(4)) : base
            return (kind, TensorSet(tensors: [stem: try Npy.read(path: path, limits: limits)]))
        default:
            throw FormatError(.wrongFormat, file: path, "is \(kind.description), which holds no tensors we can read")
        }
    }
}

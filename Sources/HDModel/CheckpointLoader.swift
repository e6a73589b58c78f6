import Foundation
import HDFormats

extension Checkpoint {
    /// Loads a safetensors file, an npz archive, a Hugging Face directory (`model.safetensors` +
    /// `config.json` + `vocab.txt`) or a student.ckpt into canonical form, validating names, shapes
    /// and values. A student.ckpt loads as the dense model it equals (`MaskedStudent`: masks checked
    /// against the weights, pruned rows and columns removed), with its own config and vocabulary.
    public static func load(_ path: String, options: LoadOptions = LoadOptions()) throws -> Checkpoint {
        if try StudentCheckpoint.isStudent(path: path) {
            let overrides = [("--config", options.configPath != nil), ("--vocab", options.vocabPath != nil),
                             ("--heads", options.heads != nil), ("--allow-extra", options.allowExtra)].filter(\.1).map(\.0)
            guard overrides.isEmpty else {
                throw ModelError(.badInput, file: path,
                    "\(overrides.joined(separator: ", ")) cannot apply to a student.ckpt: it embeds its config and vocabulary; drop the flag")
            }
            let student = try MaskedStudent(path: path)
            return try student.checkpoint(of: try student.denseModel(), source: path)
        }
        let (modelPath, directory) = try resolveModelFile(path)
        let (kind, raw) = try TensorFile.read(path: modelPath, limits: options.limits, threads: options.threads)
        return try make(raw, kind: kind, modelPath: modelPath, directory: directory, options: options)
    }

    /// Canonicalises tensors already read from `modelPath` (whose config/vocab may sit in `directory`).
    public static func make(_ raw: TensorSet, kind: FileKind, modelPath: String, directory: String,
                            options: LoadOptions = LoadOptions()) throws -> Checkpoint {
        var notes: [String] = []

        let (canonical, scheme) = try canonicalize(raw, file: modelPath, allowExtra: options.allowExtra, notes: &notes)
        var (config, configSource) = try resolveConfig(canonical, metadata: raw.metadata, file: modelPath,
                                                       directory: directory, options: options, notes: &notes)
        if let heads = options.heads, heads != config.numAttentionHeads {
            if configSource != "inferred from shapes" {
                notes.append("--heads \(heads) overrides the config's num_attention_heads \(config.numAttentionHeads)")
            }
            config.numAttentionHeads = heads
            try config.validate(source: modelPath)
        }
        let tensors = try Self.dropRedundant(canonical, file: modelPath, notes: &notes)
        try Self.reconcileLabels(tensors, config: &config, file: modelPath, notes: &notes)
        try Self.checkShapes(tensors, config: config, file: modelPath)
        if options.checkFinite { try Self.checkFinite(tensors, file: modelPath) }
        let vocab = try resolveVocab(metadata: raw.metadata, directory: directory, options: options,
                                     config: config, notes: &notes)
        let lowercase = try resolveCasing(metadata: raw.metadata, directory: directory, vocab: vocab, file: modelPath, notes: &notes)
        return Checkpoint(config: config, tensors: tensors, vocab: vocab, lowercase: lowercase, source: modelPath, kind: kind,
                          scheme: scheme, configSource: configSource, notes: notes, sourceMetadata: raw.metadata)
    }

    /// A directory means a Hugging Face model directory; a file is read as it is.
    public static func resolveModelFile(_ path: String) throws -> (model: String, directory: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FormatError(.notFound, file: path, "no such file or directory; check the path")
        }
        guard isDirectory.boolValue else { return (path, AtomicFile.parentDirectory(of: path)) }
        for candidate in ["model.safetensors", "model.npz"] {
            let full = path + "/" + candidate
            if FileManager.default.fileExists(atPath: full) { return (full, path) }
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let safetensors = names.filter { $0.hasSuffix(".safetensors") }.sorted()
        if safetensors.count == 1 { return (path + "/" + safetensors[0], path) }
        let found = names.sorted().prefix(10).joined(separator: ", ")
        throw FormatError(.notFound, file: path, "is a directory without model.safetensors or model.npz (found: \(found.isEmpty ? "nothing" : found)); pass the model file itself")
    }

    /// Renames every tensor to its canonical name, transposing TensorFlow kernels.
    static func canonicalize(_ raw: TensorSet, file: String, allowExtra: Bool,
                             notes: inout [String]) throws -> (TensorSet, NameMapping.Scheme) {
        var scheme = NameMapping.Scheme()
        var out = TensorSet()
        var origin: [String: String] = [:]
        var unknown: [String] = []
        var ignored: [String] = []
        for name in raw.sortedNames {
            guard let tensor = raw[name] else { continue }
            switch NameMapping.map(name, scheme: &scheme) {
            case .unknown:
                unknown.append(name)
            case .ignore:
                ignored.append(name)
            case .canonical(let canonical, let transpose):
                if let first = origin[canonical] {
                    throw ModelError(.unexpectedTensor, file: file, "tensors \"\(first)\" and \"\(name)\" both map to \(canonical); keep one")
                }
                origin[canonical] = name
                out[canonical] = transpose ? try transposed(tensor, name: name, file: file) : tensor
            }
        }
        if !ignored.isEmpty { notes.append("ignored \(ignored.count) optimiser/bookkeeping tensors (e.g. \(ignored[0]))") }
        if !unknown.isEmpty {
            guard allowExtra else {
                throw ModelError(.unexpectedTensor, file: file, "\(unknown.count) tensor(s) are not part of a BERT checkpoint: \(list(unknown)); pass --allow-extra to drop them")
            }
            notes.append("dropped \(unknown.count) unknown tensor(s) (--allow-extra): \(list(unknown))")
        }
        return (out, scheme)
    }

    /// TF kernels are `[in, out]`; ours are `[out, in]`.
    static func transposed(_ tensor: Tensor, name: String, file: String) throws -> Tensor {
        guard tensor.shape.count == 2, let source = tensor.floats else {
            throw ModelError(.shapeMismatch, file: file, "tensor \(name): a TensorFlow kernel must be a 2-D float matrix, found shape \(tensor.shape)")
        }
        let rows = tensor.shape[0], cols = tensor.shape[1]
        let storage = FloatStorage(count: rows * cols) { out in
            let src = source.buffer
            // Blocked so both sides stay in cache on large embeddings-sized kernels.
            let block = 64
            for r0 in stride(from: 0, to: rows, by: block) {
                for c0 in stride(from: 0, to: cols, by: block) {
                    for r in r0..<min(r0 + block, rows) {
                        for c in c0..<min(c0 + block, cols) { out[c * rows + r] = src[r * cols + c] }
                    }
                }
            }
        }
        var out = Tensor(shape: [cols, rows], values: .float32(storage), storedAs: tensor.storedAs)
        out.float64Narrowing = tensor.float64Narrowing
        return out
    }

    /// Removes tensors that only repeat others: a tied decoder, the decoder bias copy, position ids.
    static func dropRedundant(_ set: TensorSet, file: String, notes: inout [String]) throws -> TensorSet {
        var set = set
        if let ids = set[BertNames.positionIds] {
            guard case .int64(let values) = ids.values, values.enumerated().allSatisfy({ Int64($0.offset) == $0.element }) else {
                throw ModelError(.badInput, file: file, "tensor \(BertNames.positionIds): expected the integers 0, 1, 2, … (absolute positions), found other values")
            }
            set[BertNames.positionIds] = nil
        }
        if let decoderBias = set[BertNames.mlmDecoderBias] {
            if let bias = set[BertNames.mlmBias] {
                guard equalValues(decoderBias, bias) else {
                    throw ModelError(.shapeMismatch, file: file, "tensor \(BertNames.mlmDecoderBias) differs from \(BertNames.mlmBias); Hugging Face ties them, so one of them is corrupt")
                }
            } else {
                set[BertNames.mlmBias] = decoderBias
            }
            set[BertNames.mlmDecoderBias] = nil
        }
        if let decoder = set[BertNames.mlmDecoderWeight], let words = set[BertNames.wordEmbeddings], equalValues(decoder, words) {
            set[BertNames.mlmDecoderWeight] = nil
            notes.append("the MLM decoder equals the word embeddings: stored tied")
        }
        for name in set.sortedNames where set[name]?.floats == nil {
            throw ModelError(.shapeMismatch, file: file, "tensor \(name): expected floating-point values, found integers")
        }
        return set
    }

    static func equalValues(_ a: Tensor, _ b: Tensor) -> Bool {
        guard a.shape == b.shape, let x = a.floats?.buffer, let y = b.floats?.buffer, x.count == y.count else { return false }
        return memcmp(x.baseAddress!, y.baseAddress!, x.count * MemoryLayout<Float>.stride) == 0
    }

    static func list(_ names: [String]) -> String {
        names.count <= 8 ? names.joined(separator: ", ") : names.prefix(8).joined(separator: ", ") + ", … (\(names.count) in all)"
    }
}

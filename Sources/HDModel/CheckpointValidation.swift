import Foundation
import HDTokenizer
import HDFormats

extension Checkpoint {
    static let inferredSource = "inferred from shapes"

    /// The config, from (in order) `--config`, the file's embedded `hd.config`, a `config.json` beside
    /// the input, or the tensors' shapes.
    static func resolveConfig(_ tensors: TensorSet, metadata: [String: String], file: String, directory: String,
                              options: LoadOptions, notes: inout [String]) throws -> (BertConfig, String) {
        if let path = options.configPath {
            return (try BertConfig.decode(json: try readSmallFile(path), source: path), "--config \(path)")
        }
        if let embedded = metadata[MetadataKey.config] {
            return (try BertConfig.decode(json: Data(embedded.utf8), source: "\(file) (metadata \(MetadataKey.config))"), "embedded")
        }
        let beside = directory + "/config.json"
        if FileManager.default.fileExists(atPath: beside) {
            return (try BertConfig.decode(json: try readSmallFile(beside), source: beside), "config.json beside the input")
        }
        return (try inferConfig(tensors, file: file, heads: options.heads, notes: &notes), inferredSource)
    }

    /// A uniform BERT config read off the tensors' shapes. Heads cannot be seen in shapes: they come
    /// from `--heads`, else hidden / 64 (BERT's head size), with a note saying so.
    static func inferConfig(_ t: TensorSet, file: String, heads: Int?, notes: inout [String]) throws -> BertConfig {
        func shape(_ name: String, rank: Int) throws -> [Int] {
            guard let s = t[name]?.shape else {
                throw ModelError(.missingTensor, file: file, "no config.json beside the file and tensor \(name) is missing, so the config cannot be inferred; pass --config")
            }
            guard s.count == rank else {
                throw ModelError(.shapeMismatch, file: file, "tensor \(name): expected rank \(rank), found shape \(s)")
            }
            return s
        }
        let words = try shape(BertNames.wordEmbeddings, rank: 2)
        let positions = try shape(BertNames.positionEmbeddings, rank: 2)
        let types = try shape(BertNames.tokenTypeEmbeddings, rank: 2)
        var layerCount = 0
        while t[BertNames.layer(layerCount).queryWeight] != nil { layerCount += 1 }
        guard layerCount > 0 else {
            throw ModelError(.missingTensor, file: file, "no encoder layers found (expected \(BertNames.layer(0).queryWeight))")
        }
        let ffn = try shape(BertNames.layer(0).intermediateWeight, rank: 2)
        let hidden = words[1]
        let headCount: Int
        if let heads {
            headCount = heads
        } else {
            guard hidden % 64 == 0 else {
                throw ModelError(.badConfig, file: file, "cannot infer the number of attention heads: hidden size \(hidden) is not a multiple of 64; pass --heads or --config")
            }
            headCount = hidden / 64
            notes.append("no config found: assumed \(headCount) attention heads (hidden \(hidden) / 64); pass --heads or --config if that is wrong")
        }
        let config = BertConfig(vocabSize: words[0], hiddenSize: hidden, numHiddenLayers: layerCount,
                                numAttentionHeads: headCount, intermediateSize: ffn[0],
                                maxPositionEmbeddings: positions[0], typeVocabSize: types[0])
        try config.validate(source: file)
        return config
    }

    /// Every required tensor present with the config's shape, optional groups whole or absent.
    static func checkShapes(_ t: TensorSet, config: BertConfig, file: String) throws {
        var expected: [String: [Int]] = [:]
        let required = BertNames.requiredShapes(config)
        let missing = required.map(\.0).filter { t[$0] == nil }
        if !missing.isEmpty {
            throw ModelError(.missingTensor, file: file, "missing \(missing.count) required BERT tensor(s): \(list(missing))")
        }
        for (name, shape) in required { expected[name] = shape }
        for (group, members) in BertNames.optionalGroups(config) {
            let present = members.filter { t[$0.0] != nil }.map(\.0)
            if !present.isEmpty && present.count != members.count {
                let absent = members.map(\.0).filter { t[$0] == nil }
                throw ModelError(.missingTensor, file: file, "the \(group) is incomplete: has \(list(present)) but not \(list(absent))")
            }
            for (name, shape) in members { expected[name] = shape }
        }
        for name in t.sortedNames {
            guard let want = expected[name] else {
                throw ModelError(.unexpectedTensor, file: file, "tensor \(name) is not part of a BERT checkpoint with this config")
            }
            let found = t[name]!.shape
            guard found == want else {
                throw ModelError(.shapeMismatch, file: file, "tensor \(name): expected shape \(want) from the config, found \(found)")
            }
        }
    }

    /// NaN or ±Inf anywhere is refused, naming the tensor and the first bad index.
    static func checkFinite(_ t: TensorSet, file: String) throws {
        for name in t.sortedNames {
            guard let values = t[name]?.floats?.buffer else { continue }
            for i in values.indices where !values[i].isFinite {
                throw ModelError(.nonFinite, file: file, "tensor \(name): value \(values[i]) at flat index \(i); weights must be finite")
            }
        }
    }

    /// The vocabulary, from (in order) `--vocab`, the embedded `hd.vocab`, or `vocab.txt` beside the input.
    static func resolveVocab(metadata: [String: String], directory: String, options: LoadOptions,
                             config: BertConfig, notes: inout [String]) throws -> [String]? {
        var source = ""
        var text: String?
        if let path = options.vocabPath {
            source = path
            text = try utf8Text(try readSmallFile(path), file: path)
        } else if let embedded = metadata[MetadataKey.vocab] {
            source = "metadata \(MetadataKey.vocab)"
            text = embedded
        } else if FileManager.default.fileExists(atPath: directory + "/vocab.txt") {
            source = directory + "/vocab.txt"
            text = try utf8Text(try readSmallFile(source), file: source)
        }
        guard let text else { return nil }
        var tokens = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if tokens.last == "" { tokens.removeLast() }
        guard !tokens.isEmpty else { throw ModelError(.badVocab, file: source, "vocabulary is empty") }
        guard tokens.count <= config.vocabSize else {
            throw ModelError(.badVocab, file: source, "vocabulary has \(tokens.count) tokens but the model's vocab_size is \(config.vocabSize); wrong vocab for this model?")
        }
        if tokens.count < config.vocabSize {
            notes.append("vocabulary has \(tokens.count) tokens for a vocab_size of \(config.vocabSize): ids above \(tokens.count - 1) have no token")
        }
        return tokens
    }

    /// A vocabulary file's text, refusing what is not UTF-8 (naming the line and byte, or UTF-16)
    /// instead of decoding it with replacement characters that would become tokens.
    static func utf8Text(_ data: Data, file: String) throws -> String {
        if let encoding = UTF8Validation.utf16(data) {
            throw ModelError(.badVocab, file: file, UTF8Validation.utf16Message("vocabulary", encoding: encoding))
        }
        let bad = data.withUnsafeBytes { UTF8Validation.firstInvalidLine($0.bindMemory(to: UInt8.self)) }
        if let (line, byte, failure) = bad {
            throw ModelError(.badVocab, file: file, "vocabulary line \(line), byte \(byte) (offset \(failure.offset) in the file): "
                             + "expected UTF-8 text, found \(failure.hex); \(failure.hint)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads a small side file (config, vocab) with the same refusals as the model readers.
    static func readSmallFile(_ path: String) throws -> Data {
        let file = try MappedFile(path: path, limits: ReadLimits(maxFileBytes: 64 << 20), minimumBytes: 1)
        return Data(file.bytes)
    }
}

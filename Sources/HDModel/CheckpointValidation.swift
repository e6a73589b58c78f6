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
            return (try BertConfig.decode(json: try readSmallFile(path, as: .config(flag: true)), source: path), "--config \(path)")
        }
        if let embedded = metadata[MetadataKey.config] {
            return (try BertConfig.decode(json: Data(embedded.utf8), source: "\(file) (metadata \(MetadataKey.config))"), "embedded")
        }
        let beside = directory + "/config.json"
        if FileManager.default.fileExists(atPath: beside) {
            return (try BertConfig.decode(json: try readSmallFile(beside, as: .config(flag: false)), source: beside), "config.json beside the input")
        }
        return (try inferConfig(tensors, file: file, heads: options.heads, notes: &notes), inferredSource)
    }

    /// A uniform BERT config read off the tensors' shapes. Heads cannot be seen in shapes, so they
    /// must come from `--heads`: a guess (hidden / 64) would run silently wrong on a model such as
    /// all-MiniLM-L6-v2 (384 = 12 heads of 32, not 6 of 64).
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
        guard let heads else {
            throw ModelError(.badConfig, file: file, field: "num_attention_heads",
                "no config (none embedded, no config.json beside the file): the number of attention heads cannot be read from the tensors' shapes (hidden size \(hidden)); pass --heads N or --config config.json")
        }
        notes.append("no config found: read the widths off the tensors' shapes, \(heads) attention heads from --heads")
        let config = BertConfig(vocabSize: words[0], hiddenSize: hidden, numHiddenLayers: layerCount,
                                numAttentionHeads: heads, intermediateSize: ffn[0],
                                maxPositionEmbeddings: positions[0], typeVocabSize: types[0])
        try config.validate(source: file)
        return config
    }

    /// A classifier's label count against its config. transformers omits `id2label` from config.json
    /// when it holds the default two labels, so a classifier without one gets LABEL_0 … LABEL_{n−1}
    /// from its rows (with a note); a config whose labels disagree with the rows is refused. A config
    /// with labels but no classifier keeps them: they describe a head the file does not carry.
    static func reconcileLabels(_ t: TensorSet, config: inout BertConfig, file: String, notes: inout [String]) throws {
        guard let weight = t[BertNames.classifierWeight], weight.shape.count == 2 else { return }
        let rows = weight.shape[0]
        if let labels = config.id2label {
            guard labels.count == rows else {
                throw ModelError(.shapeMismatch, file: file, field: BertNames.classifierWeight,
                    "tensor \(BertNames.classifierWeight) has \(rows) rows (one per label) but the config's id2label names \(labels.count) labels (\(labels.prefix(5).joined(separator: ", "))); the config belongs to another classifier")
            }
        } else {
            config.id2label = (0..<rows).map { "LABEL_\($0)" }
            try config.validate(source: file)
            notes.append("the config names no labels (id2label): the classifier's \(rows) outputs are called LABEL_0 … LABEL_\(rows - 1)")
        }
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
                let overflow = t[name]?.float64Narrowing == .infinity
                    ? " (this F64 tensor holds a value beyond f32's range ±3.4e38, which became infinite when read as f32)" : ""
                throw ModelError(.nonFinite, file: file, "tensor \(name): value \(values[i]) at flat index \(i)\(overflow); weights must be finite")
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
            text = try utf8Text(try readSmallFile(path, as: .vocab(flag: true)), file: path)
        } else if let embedded = metadata[MetadataKey.vocab] {
            source = "metadata \(MetadataKey.vocab)"
            text = embedded
        } else if FileManager.default.fileExists(atPath: directory + "/vocab.txt") {
            source = directory + "/vocab.txt"
            text = try utf8Text(try readSmallFile(source, as: .vocab(flag: false)), file: source)
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

    /// Whether the tokenizer lower-cases (BERT uncased) or keeps case, from (in order) the embedded
    /// `hd.do_lower_case`, `do_lower_case` in `tokenizer_config.json` beside the input, the
    /// normaliser's `lowercase` in `tokenizer.json` beside it, else the vocabulary: an uncased
    /// vocabulary holds no upper-case letter outside its [special] tokens, so one that does is taken
    /// as cased, with a note (never lower-case a cased teacher by default).
    static func resolveCasing(metadata: [String: String], directory: String, vocab: [String]?, file: String,
                              notes: inout [String]) throws -> Bool {
        if let text = metadata[MetadataKey.lowercase] {
            guard let value = Bool(text) else {
                throw ModelError(.badMetadata, file: file, field: MetadataKey.lowercase,
                                 "metadata \(MetadataKey.lowercase): expected \"true\" or \"false\", found \"\(text.prefix(40))\"")
            }
            return value
        }
        for (name, path) in [("tokenizer_config.json", ["do_lower_case"]), ("tokenizer.json", ["normalizer", "lowercase"])] {
            let side = directory + "/" + name
            guard FileManager.default.fileExists(atPath: side) else { continue }
            let data = try readSmallFile(side, as: .tokenizer)
            var value = try data.withUnsafeBytes { try StrictJSON.parse($0, file: side, maxDepth: 64) }
            for key in path {
                guard case .object(let object) = value, let next = object[key] else { value = .null; break }
                value = next
            }
            if case .bool(let lowercase) = value { return lowercase }
        }
        return casing(ofVocabulary: vocab, notes: &notes)
    }

    /// Casing read off a vocabulary alone: cased when it holds an ASCII capital outside its [special]
    /// tokens (with a note saying so), else uncased. ASCII only: an uncased vocabulary still holds
    /// symbols Unicode calls upper-case (bert-base-uncased has "ℝ"), never "The" or "A".
    static func casing(ofVocabulary vocab: [String]?, notes: inout [String]) -> Bool {
        let upper = vocab?.first { token in
            !(token.hasPrefix("[") && token.hasSuffix("]")) && token.utf8.contains { (0x41...0x5A).contains($0) }
        }
        guard let upper else { return true }
        notes.append("no recorded casing (do_lower_case): the vocabulary holds upper-case tokens (\(StrictJSON.quoted(upper))), so the model is taken as cased")
        return false
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

    /// Which side file `readSmallFile` reads, and whether the user named it (`--config`, `--vocab`) or
    /// it was found beside the model: the refusals then speak of that file, not of model files.
    enum SideFile {
        case config(flag: Bool), vocab(flag: Bool)
        /// `tokenizer_config.json` or `tokenizer.json` beside the model, read for its casing.
        case tokenizer

        var expected: String {
            switch self {
            case .config: "a config.json file (a JSON object of BERT's config keys)"
            case .vocab: "a vocab.txt file (one token per line)"
            case .tokenizer: "a tokenizer file (a JSON object)"
            }
        }

        var advice: String {
            switch self {
            case .config(true): "pass --config the config.json file itself (for a model directory: DIR/config.json)"
            case .vocab(true): "pass --vocab the vocab.txt file itself (for a model directory: DIR/vocab.txt)"
            case .config(false): "remove or replace it, or pass --config FILE"
            case .vocab(false): "remove or replace it, or pass --vocab FILE"
            case .tokenizer: "remove or replace it"
            }
        }
    }

    /// Reads a small side file (config, vocab) with the same refusals as the model readers, worded for
    /// the file it is: a directory, an empty or missing file is named as the config or vocabulary.
    static func readSmallFile(_ path: String, as what: SideFile) throws -> Data {
        let file: MappedFile
        do {
            file = try MappedFile(path: path, limits: ReadLimits(maxFileBytes: 64 << 20), minimumBytes: 1)
        } catch let error as FormatError {
            let found: String
            var advice = what.advice
            switch error.kind {
            case .notFound: found = "no such file"; advice = "check the path"
            case .notRegularFile: found = error.message.hasPrefix("is a directory") ? "a directory" : "not a regular file"
            case .tooSmall: found = "an empty file (0 bytes)"; advice = "was it written completely? " + advice
            case .tooLarge: found = "over the 64 MiB cap for a side file (\(error.message))"
            default: throw error
            }
            let label: String
            switch what {
            case .config(true): label = "--config"
            case .vocab(true): label = "--vocab"
            case .config(false): label = "config.json beside the model"
            case .vocab(false): label = "vocab.txt beside the model"
            case .tokenizer: label = "\((path as NSString).lastPathComponent) beside the model"
            }
            throw FormatError(error.kind, file: path, "\(label): expected \(what.expected), found \(found); \(advice)")
        }
        return Data(file.bytes)
    }
}

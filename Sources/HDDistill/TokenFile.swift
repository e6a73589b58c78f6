import Foundation
import HDFormats
import HDTokenizer

/// The token file (`corpus.tokens`, docs/FORMATS.md "Token file"): a corpus tokenised once by
/// `hd-distill --tokenize-only`, so neither trainer (the Swift one, `tools/torch/hd_distill.py`)
/// tokenises it again and both pack exactly the same sequences. It holds the two token streams of
/// `Corpus` (train and held-out, each paragraph's word pieces followed by `[SEP]`) and their
/// paragraph offsets, not packed sequences: packing is `[CLS]` + L − 2 ids + `[SEP]` at any
/// `--seq-len`, so one file serves every sequence length. A safetensors file, so numpy reads it.
public enum TokenFile {
    public enum Key {
        public static let format = "hd.format"
        public static let kind = "hd.kind"
        public static let vocabSize = "hd.tokens.vocab_size"
        public static let vocabSHA256 = "hd.tokens.vocab_sha256"
        public static let lowercase = "hd.do_lower_case"
        public static let special = "hd.tokens.special"
        public static let heldOutEvery = "hd.tokens.held_out_every"
        public static let sources = "hd.tokens.sources"
        public static let all: Set<String> = [format, kind, vocabSize, vocabSHA256, lowercase, special, heldOutEvery, sources]
    }

    public static let kindValue = "tokens"
    public static let formatValue = "1"
    public static let trainIDs = "train.ids", trainOffsets = "train.paragraph_offsets"
    public static let heldOutIDs = "held_out.ids", heldOutOffsets = "held_out.paragraph_offsets"

    /// SHA-256 of a vocabulary as `hd.vocab` stores it (tokens joined by `\n`): ids index it, so a
    /// token file is only valid with the very vocabulary it was tokenised with.
    public static func vocabularySHA256(_ tokens: [String]) -> String {
        Array(tokens.joined(separator: "\n").utf8).withUnsafeBytes { FileDigest.sha256(of: $0) }
    }

    /// Whether `path` is a safetensors file (then `--corpus` takes it as a token file, and
    /// `read` says what is wrong if it is not one); text never starts like one (FileKind.detect).
    public static func looksLikeTokenFile(_ path: String) -> Bool {
        (try? TensorFile.sniff(path: path)) == .safetensors
    }

    /// Writes `corpus`'s streams atomically (the project's safetensors writer: temp file, fsync,
    /// re-read and compare, rename). `heldOutEvery` is the split rule the corpus was cut with.
    public static func write(_ corpus: Corpus, vocabulary: [String], lowercase: Bool, heldOutEvery: Int, to path: String) throws {
        let ids = { (store: TokenStore) in Tensor(shape: [store.count], values: .int64(store.int64s), storedAs: .int32) }
        let offsets = { (o: [Int]) in Tensor(shape: [o.count], int64s: o.map(Int64.init)) }
        var sources: [String] = []
        for (file, mode) in zip(corpus.files, corpus.modes) {
            let digest = try FileDigest.sha256(path: file)
            sources.append("{\"file\":\(StrictJSON.quoted((file as NSString).lastPathComponent)),\"paragraphs\":\"\(mode.rawValue)\",\"sha256\":\"\(digest)\"}")
        }
        let s = corpus.specialIDs
        let metadata = [
            Key.format: formatValue, Key.kind: kindValue,
            Key.vocabSize: String(corpus.vocabularySize), Key.vocabSHA256: vocabularySHA256(vocabulary),
            Key.lowercase: lowercase ? "true" : "false",
            Key.special: "{\"cls\":\(s.cls),\"mask\":\(s.mask),\"pad\":\(s.pad),\"sep\":\(s.sep),\"unk\":\(s.unk)}",
            Key.heldOutEvery: String(heldOutEvery),
            Key.sources: "[" + sources.joined(separator: ",") + "]",
        ]
        let set = TensorSet(tensors: [trainIDs: ids(corpus.train), trainOffsets: offsets(corpus.trainParagraphOffsets),
                                      heldOutIDs: ids(corpus.heldOut), heldOutOffsets: offsets(corpus.heldOutParagraphOffsets)],
                            metadata: metadata)
        try SafeTensors.write(set, to: path)
    }

    /// What a token file says about itself, beside its streams.
    public struct Header: Sendable, Equatable {
        public var vocabularySize: Int
        public var vocabularySHA256: String
        public var lowercase: Bool
        public var specialIDs: SpecialTokenIDs
        public var heldOutEvery: Int
        public var modes: [ParagraphMode]
    }

    /// Reads and checks `path` against the tokenizer the run uses, and packs its streams into
    /// sequences of `sequenceLength`. Every defect is a `DistillError` naming the file and the
    /// tensor or key (exit 65): a token file from another vocabulary or casing would train on
    /// the wrong words without a sound, so those are refused, not converted.
    public static func read(path: String, tokenizer: BertTokenizer, sequenceLength: Int) throws -> (corpus: Corpus, header: Header) {
        let set = try SafeTensors.read(path: path)
        let header = try checkHeader(set.metadata, path: path)
        let vocab = tokenizer.vocabulary.tokens
        func mismatch(_ key: String, _ what: String) -> DistillError {
            DistillError(.badMetadata, file: path, field: key, "token file: \(what); tokenise the corpus again with this teacher (hd-distill TEACHER --tokenize-only)")
        }
        guard header.vocabularySize == vocab.count else {
            throw mismatch(Key.vocabSize, "expected the teacher's vocabulary of \(vocab.count) tokens, found ids of a \(header.vocabularySize)-token vocabulary")
        }
        guard header.vocabularySHA256 == vocabularySHA256(vocab) else {
            throw mismatch(Key.vocabSHA256, "tokenised with another vocabulary of the same size (sha256 \(header.vocabularySHA256), the teacher's is \(vocabularySHA256(vocab)))")
        }
        guard header.lowercase == tokenizer.basic.lowercase else {
            throw mismatch(Key.lowercase, "tokenised \(header.lowercase ? "lower-cased" : "cased"), the teacher's tokenizer is \(tokenizer.basic.lowercase ? "uncased" : "cased")")
        }
        guard header.specialIDs == tokenizer.specialIDs else {
            throw mismatch(Key.special, "special ids \(header.specialIDs) differ from the teacher's \(tokenizer.specialIDs)")
        }
        let expected: Set<String> = [trainIDs, trainOffsets, heldOutIDs, heldOutOffsets]
        if let extra = set.tensors.keys.filter({ !expected.contains($0) }).sorted().first {
            throw DistillError(.unexpectedTensor, file: path, field: extra,
                "token file: unexpected tensor \(extra); expected exactly \(expected.sorted().joined(separator: ", "))")
        }
        let train = try stream(set, ids: trainIDs, offsets: trainOffsets, header: header, path: path)
        let heldOut = try stream(set, ids: heldOutIDs, offsets: heldOutOffsets, header: header, path: path)
        if header.heldOutEvery == 0 && !heldOut.offsets.dropFirst().isEmpty {
            throw DistillError(.badMetadata, file: path, field: Key.heldOutEvery,
                "token file: \(Key.heldOutEvery) is 0 (nothing held out) but \(heldOutIDs) holds \(heldOut.offsets.count - 1) paragraphs")
        }
        guard sequenceLength >= 3 else {
            throw DistillError(.invalidArgument, file: "<argument>",
                "corpus: sequence length must be at least 3 ([CLS], one token, [SEP]); found \(sequenceLength)")
        }
        let perSequence = sequenceLength - 2
        guard train.store.count >= perSequence else {
            throw DistillError(.tooShort, file: path,
                "corpus: one training sequence of length \(sequenceLength) needs \(perSequence) tokens between [CLS] and [SEP]; "
                + "the token file's training split has \(train.store.count) tokens")
        }
        let corpus = Corpus(files: [path], sequenceLength: sequenceLength, vocabularySize: header.vocabularySize,
                            specialIDs: header.specialIDs, train: train.store, heldOut: heldOut.store, modes: header.modes,
                            trainParagraphOffsets: train.offsets, heldOutParagraphOffsets: heldOut.offsets)
        return (corpus, header)
    }

    /// One split: ids I32 below the vocabulary size; offsets I64 from 0, strictly increasing, ending
    /// at the id count, each paragraph closed by `[SEP]`.
    static func stream(_ set: TensorSet, ids idsName: String, offsets offsetsName: String, header: Header,
                       path: String) throws -> (store: TokenStore, offsets: [Int]) {
        func tensor(_ name: String, _ type: ElementType) throws -> [Int64] {
            guard let t = set.tensors[name] else {
                throw DistillError(.missingTensor, file: path, field: name, "token file: expected tensor \(name) (\(type.rawValue), 1-D), found none")
            }
            guard case .int64(let values) = t.values, t.storedAs == type, t.shape.count == 1 else {
                throw DistillError(.shapeMismatch, file: path, field: name,
                    "token file: expected \(name) as a 1-D \(type.rawValue) tensor, found \(t.storedAs.rawValue) of shape \(t.shape)")
            }
            return values
        }
        let ids = try tensor(idsName, .int32)
        let offsets = try tensor(offsetsName, .int64)
        let v = Int64(header.vocabularySize)
        if let bad = ids.firstIndex(where: { $0 < 0 || $0 >= v }) {
            throw DistillError(.badMetadata, file: path, field: idsName,
                "token file: expected ids in 0..<\(v) (the vocabulary), found \(ids[bad]) at index \(bad)")
        }
        guard offsets.first == 0, offsets.last == Int64(ids.count) else {
            throw DistillError(.badMetadata, file: path, field: offsetsName,
                "token file: expected paragraph offsets from 0 to the id count \(ids.count), found \(offsets.first.map(String.init) ?? "none") … \(offsets.last.map(String.init) ?? "none")")
        }
        let sep = Int64(header.specialIDs.sep)
        for k in 1..<offsets.count {
            guard offsets[k] > offsets[k - 1] else {
                throw DistillError(.badMetadata, file: path, field: offsetsName,
                    "token file: expected strictly increasing paragraph offsets, found \(offsets[k - 1]) then \(offsets[k]) at index \(k)")
            }
            guard ids[Int(offsets[k]) - 1] == sep else {
                throw DistillError(.badMetadata, file: path, field: idsName,
                    "token file: paragraph \(k - 1) (ids \(offsets[k - 1])..<\(offsets[k])) does not end with [SEP] (\(sep)); found \(ids[Int(offsets[k]) - 1])")
            }
        }
        return (TokenStore(vocabularySize: header.vocabularySize, copying: ids), offsets.map { Int($0) })
    }

    /// The metadata: the format and kind, then every key of the format, each parsed strictly.
    static func checkHeader(_ m: [String: String], path: String) throws -> Header {
        func bad(_ key: String, _ expected: String) -> DistillError {
            DistillError(.badMetadata, file: path, field: key, "token file: expected \(key) \(expected), found \(m[key].map { StrictJSON.quoted($0) } ?? "none")")
        }
        guard m[Key.kind] == kindValue else {
            throw DistillError(.badMetadata, file: path, field: Key.kind,
                "expected a token file (\(Key.kind) \"\(kindValue)\", written by hd-distill --tokenize-only), found \(m[Key.kind].map { "\(Key.kind) \"\($0)\"" } ?? "a safetensors file without \(Key.kind)")")
        }
        guard m[Key.format] == formatValue else { throw bad(Key.format, "\"\(formatValue)\"") }
        if let extra = m.keys.filter({ !Key.all.contains($0) }).sorted().first {
            throw DistillError(.badMetadata, file: path, field: extra, "token file: unexpected metadata key \(extra); expected only \(Key.all.sorted().joined(separator: ", "))")
        }
        guard let size = m[Key.vocabSize].flatMap({ Int($0) }), size > 0, size <= Int(Int32.max) else { throw bad(Key.vocabSize, "a positive integer") }
        guard let sha = m[Key.vocabSHA256], sha.count == 64, sha.allSatisfy(\.isHexDigit) else { throw bad(Key.vocabSHA256, "64 hex digits") }
        guard let lower = m[Key.lowercase].flatMap({ Bool($0) }) else { throw bad(Key.lowercase, "\"true\" or \"false\"") }
        guard let every = m[Key.heldOutEvery].flatMap({ Int($0) }), every >= 0 else { throw bad(Key.heldOutEvery, "an integer ≥ 0") }
        guard let specialObject = json(m[Key.special]) as? [String: Any],
              Set(specialObject.keys) == ["cls", "mask", "pad", "sep", "unk"] else {
            throw bad(Key.special, "a JSON object of the ids cls, mask, pad, sep, unk")
        }
        var special: [String: Int] = [:]
        for (name, value) in specialObject {
            guard let id = value as? Int, (0..<size).contains(id) else {
                throw bad(Key.special, "ids below the vocabulary size \(size) (\(name) is not)")
            }
            special[name] = id
        }
        guard let sources = json(m[Key.sources]) as? [[String: Any]] else {
            throw bad(Key.sources, "a JSON array of objects {file, paragraphs, sha256}")
        }
        var modes: [ParagraphMode] = []
        for source in sources {
            guard source["file"] is String, (source["sha256"] as? String)?.count == 64,
                  let mode = (source["paragraphs"] as? String).flatMap(ParagraphMode.init(rawValue:)), mode != .auto else {
                throw bad(Key.sources, "objects {file, paragraphs: \"blank-line\" or \"line\", sha256: 64 hex digits}")
            }
            modes.append(mode)
        }
        return Header(vocabularySize: size, vocabularySHA256: sha, lowercase: lower,
                      specialIDs: SpecialTokenIDs(pad: special["pad"]!, unk: special["unk"]!, cls: special["cls"]!,
                                                  sep: special["sep"]!, mask: special["mask"]!),
                      heldOutEvery: every, modes: modes)
    }

    private static func json(_ text: String?) -> Any? {
        guard let text else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}

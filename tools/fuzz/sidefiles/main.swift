// libFuzzer target for the side files a model brings along: the vocabulary reader
// (HDTokenizer.Vocabulary(utf8:)) and the config reader (HDModel.BertConfig.decode(json:)). Every input
// goes through both (built by tools/fuzz/run.sh sidefiles with the sources listed in ./sources).
//
// Properties checked beyond "no crash, no sanitizer report":
// - vocabulary: an accepted one is non-empty, maps every token to its line number and back, and
//   written out as vocab.txt is (one token per line) reads back as the same tokens (unless a token
//   ends in "\r", which a CRLF reader cannot tell from a line ending);
// - config: an accepted one validates, and its JSON (`jsonString`, what goes into hd.config) decodes
//   to an equal config;
// - every error is the reader's own type (TokenizerError, ModelError) naming the in-memory "file".
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSideFiles(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    fuzzVocabulary(bytes)
    fuzzConfig(bytes)
    return 0
}

func fuzzVocabulary(_ bytes: UnsafeRawBufferPointer) {
    do {
        let vocab = try Vocabulary(utf8: bytes, source: "fuzz")
        guard vocab.count > 0 else { fatalError("accepted an empty vocabulary") }
        for (i, token) in vocab.tokens.enumerated() where vocab.id(for: token) != i || vocab.token(for: i) != token {
            fatalError("token \(i) does not map to its line")
        }
        if !vocab.tokens.contains(where: { $0.hasSuffix("\r") }) {
            let text = Array((vocab.tokens.joined(separator: "\n") + "\n").utf8)
            let again = try Vocabulary(utf8: text, source: "fuzz")
            guard again.tokens == vocab.tokens else { fatalError("vocab.txt round trip changed the tokens") }
        }
    } catch let error as TokenizerError {
        if error.file != "fuzz" { fatalError("error names the wrong file: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
}

func fuzzConfig(_ bytes: UnsafeRawBufferPointer) {
    do {
        let config = try BertConfig.decode(json: Data(bytes), source: "fuzz")
        try config.validate(source: "fuzz")
        let again = try BertConfig.decode(json: Data(config.jsonString().utf8), source: "fuzz")
        guard again == config else { fatalError("hd.config round trip changed the config: \(config) → \(again)") }
    } catch let error as ModelError {
        if error.file != "fuzz" { fatalError("error names the wrong file: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
}

import ArgumentParser
import HDCommandLine

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the WordPiece ids of a text (with [CLS] and [SEP]), as Hugging Face's BertTokenizer gives them.")

    @OptionGroup var args: TextArguments

    struct Result: Encodable {
        var text: String
        var ids: [Int]
    }

    func run() throws {
        try ToolErrors.reporting("hd-infer") {
            let model = try TextModel(args)
            try args.forEachInput { line, text in
                let ids = try model.encode(text, place: args.describe(line: line))
                if args.json {
                    try JSONOutput.print(Result(text: text, ids: ids), pretty: false)
                } else {
                    let tokens = ids.map { model.tokenizer.vocabulary.tokens[$0] }
                    print(zip(tokens, ids).map { "\($0)(\($1))" }.joined(separator: " "))
                }
            }
        }
    }
}

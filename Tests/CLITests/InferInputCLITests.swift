import Foundation
import HDTestSupport
import Testing

/// hd-infer's inputs as a user meets them, on the committed tiny BERT (64 positions, its own
/// 100-token vocabulary, an MLM head): bench --text shorter than --seq-len, fill-mask with masks
/// past the --truncate cut, stdin batches with bad lines, and text that is not UTF-8 (bytes that
/// Foundation cannot put in an argument, so those runs go through /bin/sh and printf).
@Suite("hd-infer inputs")
struct InferInputCLITests {
    static let infer = TestSupport.tool("hd-infer")
    static let model = TestSupport.fixture("tiny-bert/model.safetensors")

    static func run(_ args: [String], stdin: String? = nil) throws -> TestSupport.ProcessResult {
        try TestSupport.run(infer, args, stdin: stdin, allowFailure: true)
    }

    /// `sh -c SCRIPT` with $0 = hd-infer and $1 = the model, for inputs with raw bytes.
    static func shell(_ script: String) throws -> TestSupport.ProcessResult {
        try TestSupport.run("/bin/sh", ["-c", script, infer, model], allowFailure: true)
    }

    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// "the the … the" of n words (one word piece each in the tiny vocabulary).
    static func words(_ n: Int) -> String { Array(repeating: "the", count: n).joined(separator: " ") }

    // MARK: bench --text

    /// The text is shorter than one sequence (and than the batch): bench used to trap slicing the
    /// attention mask by --seq-len while the batch was padded only to its longest row.
    @Test(arguments: [(1, 32), (2, 32), (3, 16), (2, 64)])
    func benchOnShortText(_ batch: Int, _ seqLen: Int) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let text = dir + "/short.txt"
        try Data("the cat sat\n".utf8).write(to: URL(fileURLWithPath: text))
        let r = try Self.run(["bench", Self.model, "--text", text, "--batch", String(batch), "--seq-len", String(seqLen),
                              "--warmup", "0", "--iterations", "1", "--threads", "1", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
        let report = try #require(try Self.jsonLines(r.stdout.replacingOccurrences(of: "\n", with: " ")).first)
        #expect(report["seq_len"] as? Int == seqLen && report["batch"] as? Int == batch)
        // [CLS] the cat sat [SEP] in the first row, [CLS] [SEP] in every other.
        #expect(report["tokens"] as? Int == 5 + 2 * (batch - 1))
    }

    // MARK: fill-mask

    /// One JSON shape whatever the count: a list per mask, and `cut_masks` always present.
    @Test(arguments: [1, 2, 3])
    func fillMaskShapeDoesNotDependOnTheMaskCount(_ masks: Int) throws {
        let text = "the " + Array(repeating: "[MASK] sat", count: masks).joined(separator: " on ")
        let r = try Self.run(["fill-mask", Self.model, text, "--json", "--top-k", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try Self.jsonLines(r.stdout).first)
        let predictions = try #require(object["predictions"] as? [[[String: Any]]], "\(r.stdout)")
        #expect(predictions.count == masks && predictions.allSatisfy { $0.count == 2 })
        #expect(object["cut_masks"] as? [Int] == [])
    }

    /// --truncate keeps 64 tokens: masks past it are named (JSON and stderr) instead of vanishing,
    /// and the kept ones are predicted as without the tail.
    @Test func fillMaskNamesTheMasksPastTheCut() throws {
        let head = "the [MASK] sat on the [MASK]"
        let text = head + " " + Self.words(70) + " [MASK] dog [MASK]"
        let r = try Self.run(["fill-mask", Self.model, text, "--json", "--truncate", "--top-k", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try Self.jsonLines(r.stdout).first)
        #expect(object["cut_masks"] as? [Int] == [3, 4])
        #expect((object["predictions"] as? [[[String: Any]]])?.count == 2)
        #expect(r.stderr.contains("[MASK] #3, #4 of 4 are past the cut at 64 tokens (--truncate)"), "\(r.stderr)")

        let plain = try Self.run(["fill-mask", Self.model, text, "--truncate", "--top-k", "3"])
        #expect(plain.status == 0 && plain.stdout.contains("[MASK] #4: past the --truncate cut, not predicted"), "\(plain.stdout)")
    }

    /// A text whose only masks are past the cut says so (65), not "has no [MASK]".
    @Test(arguments: [1, 2])
    func fillMaskWithEveryMaskPastTheCut(_ masks: Int) throws {
        let text = Self.words(70) + String(repeating: " [MASK]", count: masks)
        let r = try Self.run(["fill-mask", Self.model, text, "--truncate"])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("past the cut") && r.stderr.contains("keeps 64 of its") && !r.stderr.contains("no [MASK]"), "\(r.stderr)")
        let none = try Self.run(["fill-mask", Self.model, Self.words(70), "--truncate"])
        #expect(none.status == 65 && none.stderr.contains("has no [MASK]"), "\(none.stderr)")
    }

    // MARK: stdin batches

    struct Batch: CustomTestStringConvertible, Sendable {
        let command: [String]
        let json: Bool
        var testDescription: String { command.joined(separator: " ") + (json ? " --json" : "") }
    }

    static let batches: [Batch] = [["tokenize"], ["embed"], ["fill-mask"]].flatMap { [Batch(command: $0, json: true), Batch(command: $0, json: false)] }

    /// A blank line (and a line without [MASK] for fill-mask) in the middle of a batch is reported in
    /// its place and the batch goes on: with --json an {"line", "error"} object, else a line on
    /// stderr; the other lines' results are all printed; exit 65 at the end.
    @Test(arguments: batches)
    func badStdinLineIsReportedInPlace(_ batch: Batch) throws {
        let lines = ["the [MASK] sat", "", "a [MASK] dog", "   ", "the cat [MASK]"]
        let r = try Self.run(batch.command + [Self.model, "-"] + (batch.json ? ["--json"] : []), stdin: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("2 of 5 lines failed (lines 2, 4"), "\(r.stderr)")
        if batch.json {
            let out = try Self.jsonLines(r.stdout)
            #expect(out.count == 5)
            for (i, object) in out.enumerated() {
                if lines[i].allSatisfy(\.isWhitespace) {
                    #expect(object["line"] as? Int == i + 1 && (object["error"] as? String)?.contains("stdin line \(i + 1) is empty") == true, "\(object)")
                } else {
                    #expect(object["text"] as? String == lines[i] && object["error"] == nil, "\(object)")
                }
            }
        } else {
            #expect(!r.stdout.contains("{"), "plain text without --json: \(r.stdout)")
            #expect(r.stderr.contains("stdin line 2 is empty") && r.stderr.contains("stdin line 4 is empty"), "\(r.stderr)")
            let results = batch.command == ["tokenize"] ? r.stdout.split(separator: "\n").count : lines.filter { $0.contains(where: \.isLetter) }.filter { r.stdout.contains($0) }.count
            #expect(results == 3, "\(r.stdout)")
        }
    }

    /// Without bad lines: exit 0, one result per line, JSON only with --json.
    @Test func stdinWithoutJSONIsPlainText() throws {
        let plain = try Self.run(["tokenize", Self.model, "-"], stdin: "the cat\na dog\n")
        #expect(plain.status == 0 && plain.stdout == "[CLS](3) the(21) cat(24) [SEP](4)\n[CLS](3) a(22) dog(25) [SEP](4)\n", "\(plain.stdout)")
        let json = try Self.run(["tokenize", Self.model, "-", "--json"], stdin: "the cat\na dog\n")
        let ids = try Self.jsonLines(json.stdout).map { $0["ids"] as? [Int] }
        #expect(json.status == 0 && ids == [[3, 21, 24, 4], [3, 22, 25, 4]])
    }

    // MARK: text that is not UTF-8

    struct NotUTF8: CustomTestStringConvertible, Sendable {
        let name: String
        /// Shell script; $0 is hd-infer, $1 the model, $D a temporary directory.
        let script: String
        let says: [String]
        var testDescription: String { name }
    }

    static let notUTF8: [NotUTF8] = [
        NotUTF8(name: "Latin-1 TEXT argument", script: #""$0" tokenize "$1" "$(printf 'caf\351')""#,
                says: ["the text argument, byte 4", "0xE9", "Latin-1"]),
        NotUTF8(name: "Latin-1 stdin line", script: #"printf 'the cat\ncaf\351 au lait\n' | "$0" tokenize "$1" -"#,
                says: ["stdin line 2, byte 4", "0xE9", "1 of 2 lines failed"]),
        NotUTF8(name: "truncated sequence on stdin", script: #"printf 'ok \342\202' | "$0" embed "$1" - --json"#,
                says: ["stdin line 1, byte 4", "0xE2 0x82"]),
        NotUTF8(name: "UTF-16 stdin with a byte-order mark", script: #"printf '\377\376t\000h\000e\000\n\000' | "$0" tokenize "$1" -"#,
                says: ["stdin", "UTF-16 little-endian (byte-order mark FF FE)"]),
        NotUTF8(name: "Latin-1 --vocab", script: #"D=$(mktemp -d); sed 's/^cat$/ca\xe9/' "${1%/*}/vocab.txt" > "$D/v.txt"; "$0" tokenize "$1" "the cat" --vocab "$D/v.txt"; s=$?; rm -r "$D"; exit $s"#,
                says: ["v.txt", "vocabulary line 25, byte 3", "0xE9"]),
        NotUTF8(name: "UTF-16 --vocab", script: #"D=$(mktemp -d); iconv -f UTF-8 -t UTF-16 "${1%/*}/vocab.txt" > "$D/v.txt"; "$0" tokenize "$1" "the cat" --vocab "$D/v.txt"; s=$?; rm -r "$D"; exit $s"#,
                says: ["v.txt", "UTF-16"]),
        NotUTF8(name: "Latin-1 bench --text", script: #"D=$(mktemp -d); printf 'the cat\ncaf\351\n' > "$D/t.txt"; "$0" bench "$1" --text "$D/t.txt" --iterations 1 --warmup 0 --seq-len 16; s=$?; rm -r "$D"; exit $s"#,
                says: ["t.txt", "line 2, byte 4 (offset 11 in the file)"]),
    ]

    @Test(arguments: notUTF8)
    func refusesTextThatIsNotUTF8(_ bad: NotUTF8) throws {
        let r = try Self.shell(bad.script)
        #expect(r.status == 65, "\(r.stderr)")
        // With --json a stdin line's error is its JSON object on stdout; the rest goes to stderr.
        for part in bad.says { #expect((r.stdout + r.stderr).contains(part), "\(part) in: \(r.stdout)\(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error"))
    }
}

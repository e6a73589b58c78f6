import Foundation
import HDTestSupport
import Testing

/// `hd-distill --tokenize-only` writes the token file; `--corpus corpus.tokens` then trains the very run
/// the text gives (the checkpoint's bytes are equal); misuse is refused with 64, a bad file with 65.
@Suite("hd-distill --tokenize-only")
struct TokenizeOnlyCLITests {
    @Test func tokenFileTrainsTheSameRunAsTheText() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let tokens = dir + "/corpus.tokens", fromText = dir + "/text.ckpt", fromTokens = dir + "/tokens.ckpt"
        let made = try DistillCLITests.run([teacher, "--corpus", DistillCLITests.corpus, "--tokenize-only", "-o", tokens,
                                            "--held-out-every", "3", "--seq-len", "32"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stderr.contains("wrote \(tokens)"))
        let text = try DistillCLITests.run(DistillCLITests.flags(teacher, out: fromText, steps: 4) + ["--hidden", "24"])
        #expect(text.status == 0, "\(text.stderr)")
        var args = DistillCLITests.flags(teacher, out: fromTokens, steps: 4) + ["--hidden", "24"]
        args[args.firstIndex(of: "--corpus")! + 1] = tokens
        let again = try DistillCLITests.run(args)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(DistillCLITests.bytes(fromText) != nil && DistillCLITests.bytes(fromText) == DistillCLITests.bytes(fromTokens))
        // Without --held-out-every the file's split is taken; another split is a usage error.
        args.remove(at: args.firstIndex(of: "--held-out-every")! + 1)
        args.remove(at: args.firstIndex(of: "--held-out-every")!)
        #expect(try DistillCLITests.run(args).status == 0)
        let other = try DistillCLITests.run(args + ["--held-out-every", "5"])
        #expect(other.status == 64 && other.stderr.contains("was split with --held-out-every 3"), "\(other.stderr)")
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let name: String
        let args: @Sendable (_ teacher: String, _ dir: String) throws -> [String]
        let status: Int32
        let says: String
        var testDescription: String { name }
    }

    static let bad: [Bad] = [
        Bad(name: "a student.ckpt as the corpus", args: { teacher, dir in
            let ckpt = dir + "/s.ckpt"
            _ = try DistillCLITests.run(DistillCLITests.flags(teacher, out: ckpt, steps: 1))
            return [teacher, "--corpus", ckpt, "-o", dir + "/o.ckpt", "--seq-len", "32"]
        }, status: 65, says: "expected a token file (hd.kind \"tokens\""),
        Bad(name: "a token file beside text", args: { teacher, dir in
            _ = try DistillCLITests.run([teacher, "--corpus", DistillCLITests.corpus, "--tokenize-only", "-o", dir + "/c.tokens"])
            return [teacher, "--corpus", dir + "/c.tokens", DistillCLITests.corpus, "-o", dir + "/o.ckpt", "--seq-len", "32"]
        }, status: 64, says: "a token file holds a whole tokenised corpus; give it alone"),
        Bad(name: "--tokenize-only with --resume", args: { teacher, dir in
            [teacher, "--corpus", DistillCLITests.corpus, "--tokenize-only", "-o", dir + "/c.tokens", "--resume", dir + "/x.ckpt"]
        }, status: 64, says: "--tokenize-only tokenises --corpus text files"),
        Bad(name: "a token file of another vocabulary", args: { _, dir in
            // The fixture BERT's 100-token vocabulary, against the test teacher's 30522.
            let tokens = dir + "/tiny.tokens"
            _ = try DistillCLITests.run([TestSupport.fixture("tiny-bert/model.safetensors"), "--corpus", DistillCLITests.corpus,
                                         "--tokenize-only", "-o", tokens])
            return [try DistillCLITests.teacher(in: dir, name: "t2.safetensors"), "--corpus", tokens, "-o", dir + "/o.ckpt", "--seq-len", "32"]
        }, status: 65, says: "expected the teacher's vocabulary of 30522 tokens, found ids of a 100-token vocabulary"),
    ]

    @Test(arguments: bad)
    func refusesMisuse(_ bad: Bad) throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let teacher = try DistillCLITests.teacher(in: dir)
        let r = try DistillCLITests.run(try bad.args(teacher, dir))
        #expect(r.status == bad.status, "\(r.stderr)")
        #expect(r.stderr.contains(bad.says), "\(bad.says) in: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o.ckpt"))
    }
}

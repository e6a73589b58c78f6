import Foundation
import HDTasks
import HDTestSupport
import Testing

@Suite("task files")
struct TaskFileTests {
    @Test("CSV: BOM, CRLF, quoted commas, \"\" escapes, a line break inside quotes, a blank line")
    func csv() throws {
        let file = try TaskFile(contentsOfFile: Fixtures.path("tasks/pairs_small.csv"),
                                columns: TaskColumns(text: "premise", pair: "hypothesis"))
        #expect(file.format == .csv)
        #expect(file.header == ["premise", "hypothesis", "label"])
        #expect(file.examples == [
            Example(text: "A man, a plan", pair: "a canal: \"Panama\"", label: "entailment", line: 2),
            Example(text: "Two dogs run.", pair: "Animals\r\nare moving.", label: "entailment", line: 3),
            Example(text: "A cat sleeps.", pair: "A dog barks.", label: "contradiction", line: 6),
            Example(text: "She said \"hi\"", pair: "Nobody spoke.", label: "contradiction", line: 7),
            Example(text: "A child plays.", pair: "Someone is outside.", label: "neutral", line: 8),
        ])
    }

    @Test("JSON Lines: keys in any order, numeric labels as their literal, blank lines skipped, no label column")
    func jsonLines() throws {
        let path = Fixtures.path("tasks/small.jsonl")
        let file = try TaskFile(contentsOfFile: path)
        #expect(file.header == ["id", "text", "label"])
        #expect(file.examples.map(\.label) == ["1", "0", "10", "1"])
        #expect(file.examples.map(\.line) == [1, 2, 4, 5])
        #expect(file.examples[2].text == "tab\there and a \"quote\"")
        let unlabelled = try TaskFile(contentsOfFile: path, columns: TaskColumns(label: nil))
        #expect(unlabelled.examples.allSatisfy { $0.label == nil })
    }

    @Test("TSV fixture: quoted fields with tabs and line breaks, lines counted across them")
    func tsv() throws {
        let file = try TaskFile(contentsOfFile: Fixtures.path("tasks/split_small.tsv"))
        #expect(file.examples.count == 32)
        #expect(file.examples[3].text == "film a was not and bright but \"quoted\" \t tab")
        #expect(file.examples[5].text.hasSuffix("\nsecond line"))
        #expect(file.examples[6].line == 9)  // row 5 spans lines 7–8
    }

    @Test("the real rt_polarity.tsv and snli_test.tsv (skipped without ../shared)")
    func realFiles() throws {
        if let path = Fixtures.sharedTask("rt_polarity.tsv") {
            let file = try TaskFile(contentsOfFile: path)
            #expect(file.examples.count == 8530)
            #expect(file.examples[0].text == "the rock is destined to be the 21st century's new \" conan \" and that he's going to make a splash even greater than arnold schwarzenegger , jean-claud van damme or steven segal .")
            #expect(try LabelSet(examples: file.examples, file: path).id2label == ["0", "1"])
        }
        if let path = Fixtures.sharedTask("snli_test.tsv") {
            let file = try TaskFile(contentsOfFile: path, columns: TaskColumns(text: "premise", pair: "hypothesis"))
            #expect(file.examples.count == 9824)
            #expect(file.examples[1].pair == "The church is filled with song.")
            #expect(try LabelSet(examples: file.examples, file: path).id2label == ["contradiction", "entailment", "neutral"])
        }
    }

    @Test("files that are missing, a directory or over the cap")
    func files() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { TestSupport.cleanUp(dir) }
        let path = dir + "/t.tsv"
        try Data("text\tlabel\nabc\t1\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TaskError.self) { try TaskFile(contentsOfFile: dir + "/none.tsv") }
        #expect { try TaskFile(contentsOfFile: dir + "/none.tsv") } throws: { ($0 as? TaskError)?.kind == .notFound }
        try FileManager.default.createDirectory(atPath: dir + "/d.tsv", withIntermediateDirectories: false)
        #expect { try TaskFile(contentsOfFile: dir + "/d.tsv") } throws: { ($0 as? TaskError)?.kind == .notRegularFile }
        #expect { try TaskFile(contentsOfFile: path, maxBytes: 10) } throws: {
            ($0 as? TaskError)?.kind == .tooLarge && ($0 as? TaskError)?.message.contains("10 bytes") == true
        }
        #expect { try TaskFile(contentsOfFile: dir + "/t.txt") } throws: { ($0 as? TaskError)?.kind == .invalidArgument }
        #expect(try TaskFile(contentsOfFile: path).examples == [Example(text: "abc", label: "1", line: 2)])
    }
}

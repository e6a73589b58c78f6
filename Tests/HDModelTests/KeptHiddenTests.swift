import HDFormats
import HDModel
import HDTestSupport
import Testing

/// `hd.kept.hidden`: written from the hidden mask, read back only when it can be what it says — one
/// ascending teacher index per student dimension.
@Suite struct KeptHiddenTests {
    /// A 4-wide model whose metadata records `record` (or nothing).
    static func checkpoint(record: String?) throws -> Checkpoint {
        var c = try Checkpoint.load(TestSupport.fixture("tiny-bert/model.safetensors"))
        c.config.hiddenSize = 4
        c.sourceMetadata[Checkpoint.MetadataKey.keptHidden] = record
        return c
    }

    @Test func recordIsTheMasksKeptIndices() throws {
        let config = BertConfig(vocabSize: 10, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 16)
        let masks = try PruneMasks(config: config)
        for i in [1, 4, 5] { masks.flags(.hidden)[i] = 0 }
        #expect(KeptHidden.record(masks) == "[0,2,3,6,7]")
    }

    @Test func absentIsNilAndAWellFormedRecordReadsBack() throws {
        #expect(try KeptHidden.indices(in: Self.checkpoint(record: nil), teacherHiddenSize: 8) == nil)
        #expect(try KeptHidden.indices(in: Self.checkpoint(record: "[0, 2,5,7]"), teacherHiddenSize: 8) == [0, 2, 5, 7])
    }

    @Test("refused naming the key", arguments: [
        "{\"a\": 1}",      // not an array
        "[0,1,2]",         // fewer indices than the student's 4 dimensions
        "[0,1,2,3,4]",     // more
        "[0,2,1,3]",       // not ascending
        "[0,1,1,3]",       // repeated
        "[0,1,2,8]",       // past the teacher's 8
        "[0,1,2,-3]",      // negative
        "[0,1,2,3.0]",     // not an integer
        "[0,1,2,3",        // not JSON
    ])
    func malformed(_ record: String) throws {
        do {
            _ = try KeptHidden.indices(in: Self.checkpoint(record: record), teacherHiddenSize: 8)
            Issue.record("\(record) was accepted")
        } catch let error as ModelError {
            #expect(error.field == Checkpoint.MetadataKey.keptHidden && error.message.contains("4 ascending"), "\(error)")
        } catch let error as FormatError {
            #expect(error.message.contains(Checkpoint.MetadataKey.keptHidden), "\(error)")
        }
    }
}

import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

@Suite("Real checkpoints", .serialized)
struct ForwardRealModelTests {
    /// splade-tiny (bert-base-uncased vocabulary, tied decoder, legacy gamma/beta names): last hidden
    /// state and full-vocabulary MLM logits at four tokens within 1e-4 of the float64 reference.
    @Test func spladeTinyMatchesReference() throws {
        let ref = try ReferenceArrays("reference/splade-tiny-mlm.npz")
        let model = try BertModel(checkpoint: try Checkpoint.load(try TestSupport.realModel("splade-tiny")))
        #expect(model.weights.mlmHead?.isTied == true)
        let output = try model.forward(try ref.batch())
        #expect(relativeError(output.lastHiddenState, try ref.floats("last_hidden_state")) < 1e-4)
        let positions = try ref.ints("positions").values
        let chosen = stride(from: 0, to: positions.count, by: 2).map { TokenPosition(batch: positions[$0], position: positions[$0 + 1]) }
        let logits = try model.mlmLogits(output, positions: .selected(chosen))
        #expect(logits.count == chosen.count * 30522)
        #expect(relativeError(logits, try ref.floats("mlm_logits")) < 1e-4)
    }

    /// splade-tiny against PyTorch/transformers on 22 sentences (tools/make_transformers_references.py):
    /// logits of a 256-id vocabulary sample at every token, and the values at transformers' top-10 ids,
    /// within 1e-4 relative; transformers' top-1 is also our top-1 up to that tolerance.
    @Test func spladeTinyMatchesTransformers() throws {
        let ref = try ReferenceArrays("reference/splade-tiny-transformers.npz")
        let model = try BertModel(checkpoint: try Checkpoint.load(try TestSupport.realModel("splade-tiny")))
        let batch = try ref.batch()
        let logits = try model.mlmLogits(try model.forward(batch))
        let V = model.config.vocabSize, rows = batch.batchSize * batch.sequenceLength
        let sample = try ref.ints("vocab_sample").values, top = try ref.ints("top_ids").values
        let sampled = (0..<rows).flatMap { r in sample.map { logits[r * V + $0] } }
        #expect(relativeError(sampled, try ref.floats("sample_logits")) < 1e-4)
        let topK = top.count / rows
        let atTop = (0..<rows).flatMap { r in top[(r * topK)..<((r + 1) * topK)].map { logits[r * V + $0] } }
        let topValues = try ref.floats("top_values")
        #expect(relativeError(atTop, topValues) < 1e-4)
        let scale = topValues.map(abs).max() ?? 1
        for r in 0..<rows where batch.attentionMask[r] == 1 {
            let best = logits[(r * V)..<((r + 1) * V)].max() ?? 0
            #expect(best - logits[r * V + top[r * topK]] <= 1e-4 * scale, "token \(r)")
        }
    }

    /// all-MiniLM-L6-v2 (sentence-transformers names, no MLM head): mean-pooled, L2-normalised
    /// embeddings of 22 sentences within 1e-4 of transformers'.
    @Test func miniLMEmbeddingsMatchTransformers() throws {
        let ref = try ReferenceArrays("reference/minilm-transformers.npz")
        let model = try BertModel(checkpoint: try Checkpoint.load(try TestSupport.realModel("minilm")))
        #expect(model.weights.mlmHead == nil)
        let output = try model.forward(try ref.batch())
        #expect(relativeError(output.meanPooled(normalized: true), try ref.floats("embeddings")) < 1e-4)
    }
}

import HDModel
import Testing

@Suite("Name mapping onto canonical Hugging Face names")
struct NameMappingTests {
    @Test(arguments: [
        ("bert.encoder.layer.3.attention.self.query.weight", "bert.encoder.layer.3.attention.self.query.weight", false),
        ("encoder.layer.3.attention.self.query.weight", "bert.encoder.layer.3.attention.self.query.weight", false),
        ("0.auto_model.encoder.layer.0.output.dense.bias", "bert.encoder.layer.0.output.dense.bias", false),
        ("bert.embeddings.LayerNorm.gamma", "bert.embeddings.LayerNorm.weight", false),
        ("cls.predictions.transform.LayerNorm.beta", "cls.predictions.transform.LayerNorm.bias", false),
        ("bert/encoder/layer_11/attention/self/query/kernel", "bert.encoder.layer.11.attention.self.query.weight", true),
        ("bert/encoder/layer_0/output/LayerNorm/gamma", "bert.encoder.layer.0.output.LayerNorm.weight", false),
        ("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", false),
        ("bert/pooler/dense/bias", "bert.pooler.dense.bias", false),
        ("cls/predictions/output_bias", "cls.predictions.bias", false),
        ("cls/predictions/transform/dense/kernel", "cls.predictions.transform.dense.weight", true),
        ("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", false),
    ])
    func maps(source: String, canonical: String, transpose: Bool) {
        var scheme = NameMapping.Scheme()
        #expect(NameMapping.map(source, scheme: &scheme) == .canonical(canonical, transpose: transpose))
    }

    @Test(arguments: ["global_step", "bert/encoder/layer_0/output/dense/kernel/adam_m", "bert/embeddings/word_embeddings/adam_v"])
    func ignoresOptimizerState(name: String) {
        var scheme = NameMapping.Scheme()
        if case .ignore = NameMapping.map(name, scheme: &scheme) {} else { Issue.record("\(name) not ignored") }
    }

    @Test(arguments: ["lm_head.weight", "roberta.encoder.layer.0.attention.self.query.weight", "bert//embeddings/x", "model/x/y"])
    func unknown(name: String) {
        var scheme = NameMapping.Scheme()
        #expect(NameMapping.map(name, scheme: &scheme) == .unknown)
    }

    @Test func schemeDescribesWhatItSaw() {
        var scheme = NameMapping.Scheme()
        _ = NameMapping.map("bert.embeddings.LayerNorm.gamma", scheme: &scheme)
        #expect(scheme.description.contains("bert. prefix"))
        #expect(scheme.description.contains("gamma"))
    }
}

import Foundation
import HDFormats
import HDModel
import HDTestSupport
import Testing

/// Every layout of the tiny fixture model (HF, legacy gamma/beta, sentence-transformers, TF, npz stored
/// and deflated, f16, bf16) loads to canonical tensors whose values hash to what the generator
/// (`tools/make_fixtures.py`) recorded in `expected.json`.
@Suite("Checkpoint variants load to the same canonical model")
struct CheckpointVariantTests {
    struct Expected: Decodable {
        struct Entry: Decodable { let name: String; let sha256: String }
        struct File: Decodable { let dtype: String; let tensors: [String: Entry] }
        let files: [String: File]
    }

    static let expected: Expected = {
        let url = URL(fileURLWithPath: TestSupport.fixture("tiny-bert/expected.json"))
        return try! JSONDecoder().decode(Expected.self, from: Data(contentsOf: url))
    }()

    static func digest(_ tensor: Tensor) -> String {
        FileDigest.sha256(of: UnsafeRawBufferPointer(tensor.floats!.buffer))
    }

    @Test(arguments: ["model.safetensors", "model-legacy.safetensors", "model-st.safetensors", "model-f16.safetensors",
                      "model-bf16.safetensors", "model.npz", "model-deflated.npz", "model-tf.npz"])
    func variantLoads(file: String) throws {
        let want = try #require(Self.expected.files[file])
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert/\(file)"))
        #expect(checkpoint.configSource == "config.json beside the input")
        #expect(checkpoint.vocab?.count == 100)
        #expect(Set(checkpoint.tensors.tensors.keys) == Set(want.tensors.keys), "canonical names")
        for (name, entry) in want.tensors {
            guard let tensor = checkpoint.tensors[name] else { continue }
            #expect(Self.digest(tensor) == entry.sha256, "\(file): \(name) (stored as \(entry.name))")
        }
        #expect(checkpoint.tensors.tensors.values.allSatisfy { $0.storedAs.rawValue == want.dtype })
    }

    @Test("schemes are recognised", arguments: [
        ("model.safetensors", "Hugging Face (bert. prefix)"),
        ("model-legacy.safetensors", "old LayerNorm.gamma/beta names"),
        ("model-st.safetensors", "no bert. prefix"),
        ("model-tf.npz", "TensorFlow"),
    ])
    func scheme(file: String, says: String) throws {
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert/\(file)"))
        #expect(checkpoint.scheme.description.contains(says), "\(checkpoint.scheme)")
    }

    @Test("a Hugging Face directory loads through model.safetensors")
    func directoryLoads() throws {
        let checkpoint = try Checkpoint.load(TestSupport.fixture("tiny-bert"))
        #expect(checkpoint.source.hasSuffix("tiny-bert/model.safetensors"))
        #expect(checkpoint.hasMLMHead && checkpoint.hasPooler)
    }
}

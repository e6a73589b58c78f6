// libFuzzer target for the safetensors reader and the strict JSON parser (built by tools/fuzz/run.sh
// together with the HDFormats sources listed in ./sources, so internal code is reachable).
//
// Properties checked beyond "no crash, no sanitizer report":
// - whatever the reader accepts, the writer serialises and the reader reads back with the same
//   names, shapes, dtypes and metadata (a reader/writer disagreement would be a real bug);
// - F64 tensors, and only they, record how much rounding to f32 changed them (a value in [0, ∞]), and
//   the canonical F32 form (`storingFloatsAsF32`, what hd-convert writes) reads back bit for bit with
//   no F64 tensor left;
// - every error is a FormatError naming the in-memory "file".

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // Small caps keep each run fast; the checks they trigger are themselves under test.
    let limits = ReadLimits(maxFileBytes: 1 << 20, maxHeaderBytes: 1 << 16, maxDecompressedBytes: 1 << 20, maxTensorCount: 256)
    do {
        let set = try SafeTensors.read(bytes: bytes, limits: limits, name: "fuzz")
        let again = try SafeTensors.read(bytes: try SafeTensors.serialize(set), limits: .default, name: "fuzz")
        guard again.metadata == set.metadata, again.sortedNames == set.sortedNames else {
            fatalError("round trip changed names or metadata")
        }
        for name in set.sortedNames where again[name]?.shape != set[name]?.shape || again[name]?.storedAs != set[name]?.storedAs {
            fatalError("round trip changed tensor \(name)")
        }
        let canonical = set.storingFloatsAsF32()
        let back = try SafeTensors.read(bytes: try SafeTensors.serialize(canonical), limits: .default, name: "fuzz")
        for (name, tensor) in set.tensors {
            let narrowing = tensor.float64Narrowing
            if (tensor.storedAs == .float64) != (narrowing != nil) || (narrowing.map { !($0 >= 0) } ?? false) {
                fatalError("tensor \(name) stored as \(tensor.storedAs.rawValue) has narrowing \(String(describing: narrowing))")
            }
            guard let read = back[name] else { fatalError("canonical form lost \(name)") }
            if read.storedAs == .float64 { fatalError("canonical form kept \(name) as F64") }
            if let a = tensor.floats, let b = read.floats, !zip(a.buffer, b.buffer).allSatisfy({ $0.bitPattern == $1.bitPattern }) {
                fatalError("canonical form changed the values of \(name)")
            }
        }
    } catch let error as FormatError {
        if error.file != "fuzz" { fatalError("error names the wrong file: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    _ = try? StrictJSON.parse(bytes, file: "fuzz", maxDepth: 16)
    return 0
}

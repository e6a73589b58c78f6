// libFuzzer target for the safetensors reader and the strict JSON parser (built by tools/fuzz/run.sh
// together with the HDFormats sources listed in ./sources, so internal code is reachable).
//
// Properties checked beyond "no crash, no sanitizer report":
// - whatever the reader accepts, the writer serialises and the reader reads back with the same
//   names, shapes, dtypes and metadata (a reader/writer disagreement would be a real bug);
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
    } catch let error as FormatError {
        if error.file != "fuzz" { fatalError("error names the wrong file: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    _ = try? StrictJSON.parse(bytes, file: "fuzz", maxDepth: 16)
    return 0
}

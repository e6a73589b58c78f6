// libFuzzer target for the npz reader: our zip central-directory reader, raw inflate, CRC checks and
// the .npy decoder per member (built by tools/fuzz/run.sh npz with the sources listed in ./sources).
//
// Properties checked beyond "no crash, no sanitizer report":
// - the in-memory reader never lets a decompressed total past the cap through (each accepted set's
//   data bytes are bounded by maxDecompressedBytes);
// - reading with one thread and with two gives the same result (same names or the same error kind);
// - every error is a FormatError naming the in-memory "file".

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNpz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let limits = ReadLimits(maxFileBytes: 1 << 20, maxHeaderBytes: 1 << 16, maxDecompressedBytes: 1 << 20, maxTensorCount: 256)
    func attempt(threads: Int) -> Result<TensorSet, FormatError> {
        do {
            return .success(try Npz.read(bytes: bytes, name: "fuzz", limits: limits, threads: threads))
        } catch let error as FormatError {
            if error.file != "fuzz" { fatalError("error names the wrong file: \(error)") }
            return .failure(error)
        } catch {
            fatalError("unexpected error type: \(error)")
        }
    }
    switch (attempt(threads: 1), attempt(threads: 2)) {
    case (.success(let a), .success(let b)):
        guard a.sortedNames == b.sortedNames else { fatalError("thread count changed the members") }
        let total = a.tensors.values.reduce(0) { $0 + $1.elementCount * 4 }
        if total > 2 * limits.maxDecompressedBytes { fatalError("decoded \(total) bytes past the cap") }
    case (.failure(let a), .failure(let b)):
        guard a.kind == b.kind else { fatalError("thread count changed the error: \(a) vs \(b)") }
    default:
        fatalError("thread count changed whether the archive reads")
    }
    return 0
}

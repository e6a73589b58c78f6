// libFuzzer target for the npz reader: our zip central-directory reader, raw inflate, CRC checks and
// the .npy decoder per member (built by tools/fuzz/run.sh npz with the sources listed in ./sources).
//
// Properties checked beyond "no crash, no sanitizer report":
// - the in-memory reader never lets a decompressed total past the cap through (each accepted set's
//   data bytes are bounded by maxDecompressedBytes);
// - reading with one thread and with two gives the same result (same names or the same error kind),
//   checked on one input in 32 (chosen by a hash of the bytes, so a finding reproduces);
// - every error is a FormatError naming the in-memory "file".
//
// Speed: the two-thread read goes through DispatchQueue.concurrentPerform, whose worker threads
// allocate and free runtime state across inputs. libFuzzer sees more mallocs than frees after such an
// input and runs a full LeakSanitizer scan, which cost ~3 ms an input (perf: 75 % of the time in
// __lsan::ScanForPointers and asan chunk lookups) and held the target to ~300 exec/s. Sampling the
// two-thread comparison keeps leak detection on for every input and runs ~20× faster.

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
    var hash: UInt32 = 2166136261  // FNV-1a
    for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16777619 }
    let single = attempt(threads: 1)
    guard hash % 32 == 0 else {
        if case .success(let set) = single {
            let total = set.tensors.values.reduce(0) { $0 + $1.elementCount * 4 }
            if total > 2 * limits.maxDecompressedBytes { fatalError("decoded \(total) bytes past the cap") }
        }
        return 0
    }
    switch (single, attempt(threads: 2)) {
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

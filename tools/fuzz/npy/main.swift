// libFuzzer target for the .npy reader (built by tools/fuzz/run.sh npy with the HDFormats sources
// listed in ./sources, so internal code is reachable).
//
// Properties checked beyond "no crash, no sanitizer report":
// - whatever the reader accepts, the writer encodes and the reader reads back with the same shape,
//   element type and values (big-endian and Fortran-order inputs come back little-endian C order);
// - every error is a FormatError naming the in-memory "file" and the array.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNpy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let limits = ReadLimits(maxFileBytes: 1 << 20, maxHeaderBytes: 1 << 16, maxDecompressedBytes: 1 << 20, maxTensorCount: 256)
    do {
        let tensor = try Npy.decode(bytes, name: "arr", file: "fuzz", owner: nil, limits: limits)
        let encoded = try Npy.encode(tensor, name: "arr")
        let again = try encoded.withUnsafeBytes { try Npy.decode($0, name: "arr", file: "fuzz", owner: nil) }
        guard again.shape == tensor.shape, again.storedAs == tensor.storedAs else {
            fatalError("round trip changed shape or type: \(tensor.shape) \(tensor.storedAs) → \(again.shape) \(again.storedAs)")
        }
        switch (tensor.values, again.values) {
        case (.float32(let a), .float32(let b)):
            if tensor.storedAs != .float16, !zip(a.buffer, b.buffer).allSatisfy({ $0.bitPattern == $1.bitPattern }) {
                fatalError("round trip changed values")
            }
        case (.int64(let a), .int64(let b)):
            if a != b { fatalError("round trip changed values") }
        default:
            fatalError("round trip changed the kind of values")
        }
    } catch let error as FormatError {
        if error.file != "fuzz" || !error.message.contains("'arr'") { fatalError("error does not name the file and array: \(error)") }
    } catch {
        fatalError("unexpected error type: \(error)")
    }
    return 0
}

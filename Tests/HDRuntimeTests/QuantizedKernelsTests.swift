import CRuntimeKernels
import HDRuntime
import HDTensor
import Testing

/// The int8 and bf16 GEMMs against exact references written plainly here: int8 against the int32
/// sums of the same quantised values (bit-exact) and the same dequantisation, bf16 against an f64
/// product of the bf16-rounded inputs, each on every `MatrixInstructions` this CPU has (int8: the
/// same floats from both). Shapes around the 12-row register tile and the AMX blocks of 16 / 32
/// rows, the 16-lane vectors and 32-column panels, the 4- (int8) and 2-input (bf16) groups, the
/// tile steps (64 int8 / 32 bf16 inputs) and the passes over the depth (1,024 int8 / 512 bf16
/// inputs), one row, no inputs; an input row stride past its width; panel ranges split as the
/// workers split them, with a canary column past n; every epilogue.
struct QuantizedKernelsTests {
    static let shapes = [
        (1, 1, 1), (1, 33, 5), (12, 32, 4), (13, 33, 7), (11, 31, 1027), (5, 16, 2), (7, 17, 513), (25, 100, 3),
        (24, 48, 768), (3, 15, 0), (2, 70, 2050), (16, 32, 64), (17, 45, 63), (32, 64, 65), (33, 40, 130),
        (70, 33, 129),
    ]

    /// The instructions this CPU runs `precision` on: AVX-512 always (the tests are enabled only
    /// then), AMX where it has the tiles.
    static func instructions(_ precision: Precision) -> [MatrixInstructions] {
        precision.defaultInstructions() == .amx ? [.avx512, .amx] : [.avx512]
    }

    /// k rounded up to a whole tile step of `step` inputs: the converted rows' padding.
    static func padded(_ k: Int, to step: Int32) -> Int { (k + Int(step) - 1) / Int(step) * Int(step) }
    static let epilogues: [hd_epilogue] = [HD_EPILOGUE_NONE, HD_EPILOGUE_BIAS, HD_EPILOGUE_BIAS_GELU, HD_EPILOGUE_BIAS_GELU_TANH]

    /// The epilogue applied by the Swift kernels (`want` is m × n, row-major).
    static func applyEpilogue(_ epilogue: hd_epilogue, _ want: inout [Float], m: Int, n: Int, bias: [Float]) {
        switch epilogue {
        case HD_EPILOGUE_BIAS: for i in 0..<m { for j in 0..<n { want[i * n + j] += bias[j] } }
        case HD_EPILOGUE_BIAS_GELU: FusedKernels.biasGelu(&want, rows: m, width: n, bias: bias)
        case HD_EPILOGUE_BIAS_GELU_TANH: FusedKernels.biasGeluTanh(&want, rows: m, width: n, bias: bias)
        default: break
        }
    }

    /// Runs `gemm(first, end, c, ldc)` over the whole panel range and over two halves into a C with
    /// one canary column; returns C without it (m × n), checking the canary.
    static func run(m: Int, n: Int, _ gemm: (Int, Int, UnsafeMutablePointer<Float>, Int) -> Void) -> [[Float]] {
        let panels = (n + 31) / 32, ldc = n + 1
        return [[0, panels], [0, panels / 2, panels]].map { splits in
            var got = [Float](repeating: -7, count: m * ldc)
            got.withUnsafeMutableBufferPointer { c in
                for (first, end) in zip(splits, splits.dropFirst()) { gemm(first, end, c.baseAddress!, ldc) }
            }
            for i in 0..<m { #expect(got[i * ldc + n] == -7, "column \(n) of row \(i) was written") }
            return (0..<m).flatMap { i in got[(i * ldc)..<(i * ldc + n)] }
        }
    }

    // MARK: int8

    /// Per-column (weights) symmetric quantisation, as the header documents it:
    /// q = clamp(round_to_nearest_even(x · (127 / max|x|)), −127, 127), scale max|x| / 127.
    static func quantize<C: Collection<Float>>(_ x: C) -> (q: [Int32], scale: Float) {
        let amax = x.map(abs).max() ?? 0
        let inverse: Float = amax > 0 ? 127 / amax : 0
        return (x.map { Int32(min(max(($0 * inverse).rounded(.toNearestOrEven), -127), 127)) }, amax / 127)
    }

    /// Per-row (activations) asymmetric quantisation, as the header documents it: over [lo, hi] =
    /// [min(0, min x), max(0, max x)], v = 255 / (hi − lo), u = clamp(round(x · v) + z, 0, 255),
    /// z = round(−lo · v), scale (hi − lo) / 255.
    static func quantizeRow<C: Collection<Float>>(_ x: C) -> (u: [Int32], scale: Float, zero: Int32) {
        let lo = min(0, x.min() ?? 0), range = max(0, x.max() ?? 0) - lo
        let inverse: Float = range > 0 ? 255 / range : 0
        let z = Int32((-lo * inverse).rounded(.toNearestOrEven))
        return (x.map { min(max(Int32(($0 * inverse).rounded(.toNearestOrEven)) + z, 0), 255) }, range / 255, z)
    }

    @Test(.enabled(if: Precision.Capabilities.current.avx512VNNI, "the int8 GEMM needs AVX-512 VNNI"),
          arguments: shapes)
    func int8EqualsIntegerReference(m: Int, n: Int, k: Int) {
        let lda = k + 3, a = FusedKernelTests.values(m * lda, seed: 11, spread: 3), w = ParallelTests.values(n * k, seed: 12)
        let bias = ParallelTests.values(n, seed: 13)
        // The reference: the same quantisation, exact integer sums, the same dequantisation.
        let rows = (0..<m).map { Self.quantizeRow(a[($0 * lda)..<($0 * lda + k)]) }
        let columns = (0..<n).map { Self.quantize(w[($0 * k)..<($0 * k + k)]) }
        var exact = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Int32 = 0
                for t in 0..<k { sum += (rows[i].u[t] - rows[i].zero) * columns[j].q[t] }
                exact[i * n + j] = Float(sum) * (columns[j].scale * rows[i].scale)
            }
        }
        // The C quantisation of the rows: u8 as above, padded with the zero point to a tile step.
        let ldq = Self.padded(k, to: HD_INT8_DEPTH_STEP) + 4
        var q = [UInt8](repeating: 0, count: m * ldq), scales = [Float](repeating: .nan, count: m)
        var zeros = [Int32](repeating: -1, count: m)
        hd_int8_quantize_rows(m, k, a, lda, &q, ldq, &scales, &zeros)
        for i in 0..<m {
            #expect(scales[i] == rows[i].scale && zeros[i] == rows[i].zero,
                    "row \(i): scale \(scales[i]), zero point \(zeros[i]); expected \(rows[i].scale), \(rows[i].zero)")
            let want = rows[i].u.map { UInt8($0) }
                + [UInt8](repeating: UInt8(rows[i].zero), count: Self.padded(k, to: HD_INT8_DEPTH_STEP) - k)
            #expect(Array(q[(i * ldq)..<(i * ldq + want.count)]) == want, "row \(i) quantised differently")
        }
        var packed = [UInt8](repeating: 0xAB, count: hd_int8_packed_bytes(n, k))
        w.withUnsafeBufferPointer { w in
            hd_int8_pack_weights((0..<n).map { j in w.baseAddress.map { UnsafePointer($0 + j * k) } }, n, k, &packed)
        }
        for epilogue in Self.epilogues {
            var want = exact
            Self.applyEpilogue(epilogue, &want, m: m, n: n, bias: bias)
            let results = Self.instructions(.int8).map { instructions in
                Self.run(m: m, n: n, { first, end, c, ldc in
                    switch instructions {
                    case .avx512: hd_int8_gemm(m, n, k, q, ldq, scales, zeros, packed, first, end, c, ldc, epilogue, bias)
                    case .amx: hd_int8_gemm_tiles(m, n, k, q, ldq, scales, zeros, packed, first, end, c, ldc, epilogue, bias)
                    }
                })
            }
            // The same integers and the same float operations on either: bit for bit the same.
            #expect(results.allSatisfy { $0 == results[0] }, "\(m)×\(n)×\(k), epilogue \(epilogue.rawValue): AMX differs from AVX-512")
            for got in results.joined() {
                if epilogue == HD_EPILOGUE_NONE || epilogue == HD_EPILOGUE_BIAS {
                    // Same integers, same float operations: bit-exact.
                    #expect(got == want, "\(m)×\(n)×\(k), epilogue \(epilogue.rawValue): differs from the integer reference")
                } else {
                    let scale = max(want.map(abs).max() ?? 0, 1)
                    #expect(FusedKernelTests.maxError(got, want) <= 1e-5 * scale, "\(m)×\(n)×\(k), epilogue \(epilogue.rawValue)")
                }
            }
        }
    }

    /// A zero row quantises to all 0 with scale 0 and zero point 0, and its outputs are 0 (+ bias);
    /// a one-sided row (as after GELU or ReLU) uses the whole u8 range.
    @Test(.enabled(if: Precision.Capabilities.current.avx512VNNI, "the int8 GEMM needs AVX-512 VNNI"))
    func int8ZeroRow() {
        let k = 9, n = 3, a = [Float](repeating: 0, count: k), w = ParallelTests.values(n * k, seed: 1)
        let ldq = Int(HD_INT8_DEPTH_STEP)
        var q = [UInt8](repeating: 7, count: ldq), scale: [Float] = [.nan], zero: [Int32] = [-1]
        hd_int8_quantize_rows(1, k, a, k, &q, ldq, &scale, &zero)
        #expect(q == [UInt8](repeating: 0, count: ldq) && scale == [0] && zero == [0])
        var packed = [UInt8](repeating: 0, count: hd_int8_packed_bytes(n, k))
        w.withUnsafeBufferPointer { w in
            hd_int8_pack_weights((0..<n).map { j in w.baseAddress.map { UnsafePointer($0 + j * k) } }, n, k, &packed)
        }
        for instructions in Self.instructions(.int8) {
            var c = [Float](repeating: .nan, count: n)
            switch instructions {
            case .avx512: hd_int8_gemm(1, n, k, q, ldq, scale, [0], packed, 0, 1, &c, n, HD_EPILOGUE_BIAS, [1, 2, 3])
            case .amx: hd_int8_gemm_tiles(1, n, k, q, ldq, scale, [0], packed, 0, 1, &c, n, HD_EPILOGUE_BIAS, [1, 2, 3])
            }
            #expect(c == [1, 2, 3], "\(instructions)")
        }
        let positive: [Float] = [0, 0.5, 1, 2]
        hd_int8_quantize_rows(1, 4, positive, 4, &q, ldq, &scale, &zero)
        #expect(Array(q[0..<4]) == [0, 64, 128, 255] && scale == [2 / 255] && zero == [0])
    }

    // MARK: bf16

    /// f32 → bf16 → f32, rounding to nearest even.
    static func bf16(_ x: Float) -> Float {
        let bits = x.bitPattern
        return Float(bitPattern: ((bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16) << 16)
    }

    @Test(.enabled(if: Precision.Capabilities.current.avx512BF16, "the bf16 GEMM needs AVX-512 BF16"),
          arguments: shapes)
    func bf16EqualsF64Reference(m: Int, n: Int, k: Int) {
        let lda = k + 3, a = FusedKernelTests.values(m * lda, seed: 21, spread: 3), w = ParallelTests.values(n * k, seed: 22)
        let bias = ParallelTests.values(n, seed: 23)
        var exact = [Float](repeating: 0, count: m * n), bound = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for t in 0..<k {
                    let p = Double(Self.bf16(a[i * lda + t])) * Double(Self.bf16(w[j * k + t]))
                    sum += p
                    magnitude += abs(p)
                }
                exact[i * n + j] = Float(sum)
                // f32 accumulation of k exact products: at most k rounding errors of 2⁻²⁴ · Σ|p|.
                bound[i * n + j] = Float(Double(k + 1) * 0x1p-24 * magnitude)
            }
        }
        // The conversion of the rows: round to nearest even, zeros past k up to a tile step.
        let ldo = Self.padded(k, to: HD_BF16_DEPTH_STEP) + 2
        var converted = [UInt16](repeating: 0xFFFF, count: m * ldo)
        hd_bf16_convert_rows(m, k, a, lda, &converted, ldo)
        for i in 0..<m {
            let want = (0..<k).map { UInt16(Self.bf16(a[i * lda + $0]).bitPattern >> 16) }
                + [UInt16](repeating: 0, count: Self.padded(k, to: HD_BF16_DEPTH_STEP) - k)
            #expect(Array(converted[(i * ldo)..<(i * ldo + want.count)]) == want, "row \(i) converted differently")
        }
        var packed = [UInt16](repeating: 0xFFFF, count: hd_bf16_packed_bytes(n, k) / 2)
        w.withUnsafeBufferPointer { w in
            hd_bf16_pack_weights((0..<n).map { j in w.baseAddress.map { UnsafePointer($0 + j * k) } }, n, k, &packed)
        }
        for epilogue in Self.epilogues {
            var want = exact
            Self.applyEpilogue(epilogue, &want, m: m, n: n, bias: bias)
            for got in Self.instructions(.bf16).flatMap({ instructions in
                Self.run(m: m, n: n, { first, end, c, ldc in
                    switch instructions {
                    case .avx512: hd_bf16_gemm(m, n, k, converted, ldo, packed, first, end, c, ldc, epilogue, bias)
                    case .amx: hd_bf16_gemm_tiles(m, n, k, converted, ldo, packed, first, end, c, ldc, 0, epilogue, bias)
                    }
                })
            }) {
                // GELU's slope is below 1.13, and its polynomials are within 1e-6 of the Swift kernels'.
                var worst: Float = 0
                for e in 0..<(m * n) {
                    let allowed: Float = 1.13 * bound[e] + 1e-6 * max(1, abs(want[e]))
                    worst = max(worst, abs(got[e] - want[e]) - allowed)
                }
                #expect(worst <= 0, "\(m)×\(n)×\(k), epilogue \(epilogue.rawValue): \(worst) past the bound")
            }
        }
        guard Self.instructions(.bf16).contains(.amx) else { return }
        // The training GEMM's layout of A (`hd_bf16_convert_tiles`, and `hd_bf16_transpose_tiles`
        // from Aᵀ): each value where the layout says, and the tile kernel's floats from it the same
        // bits as from the rows above.
        let steps = Self.padded(k, to: HD_BF16_DEPTH_STEP) / Int(HD_BF16_DEPTH_STEP)
        var tiles = [UInt16](repeating: 0xFFFF, count: hd_bf16_tiled_values(m, k))
        hd_bf16_convert_tiles(m, k, a, lda, &tiles)
        for i in 0..<m {
            let row = (0..<(steps * 32)).map { t in tiles[i / 32 * steps * 1024 + t / 32 * 1024 + i % 32 * 32 + t % 32] }
            #expect(Array(row[0..<k]) == Array(converted[(i * ldo)..<(i * ldo + k)]) && row[k...].allSatisfy { $0 == 0 },
                    "row \(i) in the tiles' layout")
        }
        var transposed = [Float](repeating: 0, count: k * m), fromTransposed = [UInt16](repeating: 0xFFFF, count: tiles.count)
        for i in 0..<m { for t in 0..<k { transposed[t * m + i] = a[i * lda + t] } }
        hd_bf16_transpose_tiles(transposed, k, m, m, 0, m, &fromTransposed)
        #expect(fromTransposed == tiles)
        let panels = (n + Int(HD_PACKED_PANEL) - 1) / Int(HD_PACKED_PANEL)
        var fromRows = [Float](repeating: 1, count: m * n), fromTiles = fromRows
        hd_bf16_gemm_tiles(m, n, k, converted, ldo, packed, 0, panels, &fromRows, n, 1, HD_EPILOGUE_BIAS, bias)
        hd_bf16_gemm_tiled(m, n, k, tiles, packed, 0, panels, &fromTiles, n, 1, HD_EPILOGUE_BIAS, bias)
        #expect(fromRows == fromTiles)
    }

    // MARK: dispatch

    /// What each CPU lacks, named; fp32 needs nothing extra; int8 and bf16 only on the packed kernel.
    @Test(arguments: [
        (Precision.int8, false, false, false, "AVX-512F and AVX-512 VNNI"),
        (.int8, true, false, true, "needs AVX-512 VNNI (vpdpbusd), which this CPU lacks"),
        (.bf16, true, true, false, "needs AVX-512 BF16 (vdpbf16ps), which this CPU lacks"),
        (.bf16, false, false, false, "AVX-512F and AVX-512 BF16"),
    ])
    func refusesWithoutTheInstructions(precision: Precision, f: Bool, vnni: Bool, bf16: Bool, expected: String) {
        let cpu = Precision.Capabilities(avx512f: f, avx512VNNI: vnni, avx512BF16: bf16)
        let reason = precision.unsupportedReason(on: cpu, kernel: .packed)
        #expect(reason?.contains(expected) == true, "\(reason ?? "nil")")
        #expect(throws: Error.self) { try precision.check(on: cpu, kernel: .packed) }
    }

    /// AMX asked for where the CPU or OS lacks the tiles is refused, naming what is missing; never
    /// the default there; fp32 has no AMX kernel.
    @Test(arguments: [
        (Precision.int8, false, true, "AMX-TILE and AMX-INT8"),
        (.bf16, true, false, "AMX-TILE and AMX-BF16"),
        (.fp32, true, true, "AMX multiplies int8 and bf16 only"),
    ])
    func refusesAMXWithoutTheTiles(precision: Precision, amxInt8: Bool, amxBF16: Bool, expected: String) {
        let cpu = Precision.Capabilities(avx512f: true, avx512VNNI: true, avx512BF16: true, amxInt8: amxInt8, amxBF16: amxBF16)
        let reason = precision.unsupportedReason(on: cpu, kernel: .packed, instructions: .amx)
        #expect(reason?.contains(expected) == true, "\(reason ?? "nil")")
        #expect(throws: Error.self) { try precision.check(on: cpu, kernel: .packed, instructions: .amx) }
        if precision != .fp32 { #expect(precision.defaultInstructions(on: cpu) == .avx512) }
        #expect(precision.unsupportedReason(on: cpu, kernel: .packed, instructions: .avx512) == nil)
    }

    @Test func amxIsTheDefaultWhereTheCPUHasIt() {
        let cpu = Precision.Capabilities(avx512f: true, avx512VNNI: true, avx512BF16: true, amxInt8: true, amxBF16: true)
        #expect(Precision.int8.defaultInstructions(on: cpu) == .amx && Precision.bf16.defaultInstructions(on: cpu) == .amx)
        #expect(Precision.fp32.defaultInstructions(on: cpu) == .avx512)
    }

    @Test func fp32NeedsNothingAndLowPrecisionNeedsThePackedKernel() {
        let none = Precision.Capabilities(avx512f: false, avx512VNNI: false, avx512BF16: false)
        let all = Precision.Capabilities(avx512f: true, avx512VNNI: true, avx512BF16: true)
        #expect(Precision.fp32.unsupportedReason(on: none, kernel: .openBLAS) == nil)
        #expect(Precision.int8.unsupportedReason(on: all, kernel: .packed) == nil)
        #expect(Precision.bf16.unsupportedReason(on: all, kernel: .packed) == nil)
        #expect(Precision.int8.unsupportedReason(on: all, kernel: .openBLAS)?.contains("packed kernel only") == true)
    }
}

import HDTensor
import Testing

@Suite struct ArenaTests {
    @Test func slicesAreAlignedDisjointAndZeroed() throws {
        var layout = ArenaLayout()
        let a = try layout.reserve("a", count: 3)
        let b = try layout.reserve("b", shape: [5, 7])
        let c = try layout.reserve("c", count: 0)
        let arena = Arena(layout: layout)
        for slot in [a, b, c] {
            #expect(Int(bitPattern: arena[slot].baseAddress) % 64 == 0)
        }
        #expect(arena[a].count == 3 && arena[b].count == 35 && arena[c].count == 0)
        #expect(arena[b].allSatisfy { $0 == 0 })
        arena[a].update(repeating: 1)
        arena[b].update(repeating: 2)
        #expect(arena[a].allSatisfy { $0 == 1 })
        #expect(arena.slice(named: "b")?.count == 35)
        arena.zero()
        #expect(arena[a].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [
        ("negative count", [-1]),
        ("negative dimension", [4, -2]),
        ("overflowing product", [Int.max / 2, 3]),
        ("over the cap", [1 << 20, 1 << 20]),
    ])
    func badSizesAreRefused(_ label: String, _ shape: [Int]) {
        var layout = ArenaLayout(maxCount: 1 << 30)
        #expect(throws: TensorError.self, "\(label)") { try layout.reserve("x", shape: shape) }
    }
}

import Foundation

/// A read-only hash map from UTF-8 byte strings to token ids, probed with a pointer and a length.
///
/// WordPiece tries every candidate substring of a word, longest first; a `[String: Int]` would
/// build a String (and for continuations a "##" + String) per candidate. Here a candidate is a
/// slice of the word's bytes: hashing and comparing it allocates nothing.
struct PieceTable: Sendable {
    private struct Slot {
        var start: Int32
        /// -1 marks an empty slot.
        var length: Int32
        var id: Int32
    }

    /// Every key's bytes, back to back.
    private let arena: [UInt8]
    /// Open addressing, linear probing; power-of-two size, at most half full.
    private let slots: [Slot]
    private let slotMask: Int
    /// No key is longer, so longer candidates need no probe.
    let maxKeyBytes: Int

    /// `entries` are (key bytes, id) with distinct keys (the vocabulary refuses duplicates). Empty
    /// keys are left out: WordPiece never looks up an empty piece.
    init(_ entries: [(key: ArraySlice<UInt8>, id: Int)]) {
        let entries = entries.filter { !$0.key.isEmpty }
        var size = 16
        while size < 2 * entries.count { size *= 2 }
        var arena: [UInt8] = []
        var slots = [Slot](repeating: Slot(start: 0, length: -1, id: 0), count: size)
        var maxKeyBytes = 0
        for (key, id) in entries {
            let start = arena.count
            arena.append(contentsOf: key)
            var slot = key.withUnsafeBufferPointer { Self.hash($0.baseAddress!, $0.count) } & (size - 1)
            while slots[slot].length >= 0 { slot = (slot + 1) & (size - 1) }
            // Vocabularies are far below 2^31 bytes; the caller's file cap guarantees it.
            slots[slot] = Slot(start: Int32(start), length: Int32(key.count), id: Int32(id))
            maxKeyBytes = max(maxKeyBytes, key.count)
        }
        self.arena = arena
        self.slots = slots
        self.slotMask = size - 1
        self.maxKeyBytes = maxKeyBytes
    }

    /// FNV-1a with a final fold: keys are a few bytes, so a byte loop beats anything wider.
    @inline(__always)
    private static func hash(_ key: UnsafePointer<UInt8>, _ count: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in 0..<count { h = (h ^ UInt64(key[i])) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The id of the key equal to the `count` bytes at `key`, if any.
    @inline(__always)
    func id(_ key: UnsafePointer<UInt8>, _ count: Int) -> Int? {
        if count > maxKeyBytes || count == 0 { return nil }
        return arena.withUnsafeBufferPointer { arena -> Int? in
            slots.withUnsafeBufferPointer { slots -> Int? in
                var index = Self.hash(key, count) & slotMask
                while true {
                    let slot = slots[index]
                    if slot.length < 0 { return nil }
                    if Int(slot.length) == count, memcmp(arena.baseAddress! + Int(slot.start), key, count) == 0 {
                        return Int(slot.id)
                    }
                    index = (index + 1) & slotMask
                }
            }
        }
    }
}

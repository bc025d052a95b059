/// The `custom_id`s seen so far in one ingest, with the line each first appeared on, for duplicate detection in
/// bounded memory: 16 bytes a slot (a 96-bit fingerprint and the line), open addressing, at most 3/4 full,
/// instead of a `[String: Int]` whose keys grow with the length of the ids (a million ids: 32 MB).
///
/// Fingerprints come from two independently seeded `Hasher`s (per process); two different ids are taken for one
/// only if all 96 bits collide (for a million ids, a chance below 10⁻¹⁷).
struct CustomIDTable {
    private struct Slot {
        var hash: UInt64 = 0
        var check: UInt32 = 0
        var line: Int32 = 0
    }

    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1 << 14) {
        var size = 16
        while size < capacity { size <<= 1 }
        slots = Array(repeating: Slot(), count: size)
        mask = size - 1
    }

    /// Records `id` as first seen on `line`; returns the earlier line when it was already recorded.
    mutating func firstLine(of id: String, recordingAt line: Int) -> Int? {
        var a = Hasher()
        var b = Hasher()
        b.combine(0x9E37_79B9_7F4A_7C15 as UInt64)
        var id = id
        id.withUTF8 { bytes in
            a.combine(bytes: UnsafeRawBufferPointer(bytes))
            b.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        let hash = UInt64(bitPattern: Int64(a.finalize())) | 1
        let check = UInt32(truncatingIfNeeded: b.finalize())
        var i = Int(truncatingIfNeeded: hash >> 7) & mask
        while slots[i].hash != 0 {
            if slots[i].hash == hash, slots[i].check == check { return Int(slots[i].line) }
            i = (i + 1) & mask
        }
        slots[i] = Slot(hash: hash, check: check, line: Int32(clamping: line))
        count += 1
        if count * 4 > slots.count * 3 { grow() }
        return nil
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: Slot(), count: old.count * 2)
        mask = slots.count - 1
        for s in old where s.hash != 0 {
            var i = Int(truncatingIfNeeded: s.hash >> 7) & mask
            while slots[i].hash != 0 { i = (i + 1) & mask }
            slots[i] = s
        }
    }
}

/// Chooses how many parts a poison batch is split into from the key's handler-latency fit `t ≈ a·items + b`
/// (``LatencyModel``), instead of a fixed ``FailurePolicy/bisectionFanout``. A pure value.
///
/// For a part of n items it picks the fanout f in `2...maxFanout` with the shortest predicted critical path to
/// isolate one bad item: the sum over split levels of `rounds · (b + a · partSize) + (f - 1) · d`, where a level of f
/// parts run on `lanes` concurrent calls takes `ceil(f / lanes)` rounds and `d` is how much later each further
/// concurrent part finishes (task start-up, timers, wake-ups: the executor measures how far apart the first calls of a
/// split's parts end, per key). Every level is planned again for its own size.
///
/// The trade-off is latency against load: with enough lanes a wider split has fewer levels (for n = 256: 2 levels
/// with f = 16 against 4 with f = 4 and 8 with f = 2), so a bad item is isolated and its neighbours answered sooner,
/// but it costs more handler calls, at most `f · ceil(log_f n)` per bad item (32 for n = 256 with f = 16, 16 with
/// f = 2 or 4). `maxFanout` bounds both the calls (k bad items stay O(k log n)) and the concurrent calls a split
/// sends downstream. With one lane (sequential parts) the same model picks a narrow split.
///
/// ```swift
/// let choice = AdaptiveFanout(maxFanout: 16)
/// choice.fanout(items: 256, perItem: 1e-6, fixed: 100e-6, lanes: .max)                 // 16: 2 levels of ~0.1 ms
/// choice.fanout(items: 256, perItem: 1e-6, fixed: 100e-6, perPart: 10e-6, lanes: .max)  // 8: 17 late parts, not 30
/// choice.fanout(items: 256, perItem: 1e-6, fixed: 100e-6, lanes: 1)                    // 4: each call in sequence
/// ```
public struct AdaptiveFanout: Sendable, Hashable {
    /// The widest split (at least 2). Also bounds a split's concurrent calls and its extra calls per bad item,
    /// `maxFanout · ceil(log_maxFanout n)`.
    public var maxFanout: Int

    /// Creates the setting; 16 by default.
    public init(maxFanout: Int = 16) { self.maxFanout = max(2, maxFanout) }

    /// The fanout for a part of `items` items, given the fitted cost per item `perItem` and per call `fixed`, the
    /// delay per further concurrent part `perPart` (seconds) and the calls that can run at once (`lanes`, at least 1;
    /// `.max` when unbounded).
    public func fanout(items: Int, perItem: Double, fixed: Double, perPart: Double = 0, lanes: Int) -> Int {
        let top = min(max(2, maxFanout), items)
        guard top > 2 else { return 2 }
        let lanes = max(1, lanes)
        var best = 2
        var bestTime = Double.infinity
        for f in 2...top {
            let time = Self.criticalPath(
                items: items, fanout: f, perItem: perItem, fixed: fixed, perPart: perPart, lanes: lanes)
            if time < bestTime * (1 - 1e-9) {
                best = f
                bestTime = time
            }
        }
        return best
    }

    /// Predicted time to isolate one bad item among `items` splitting in `fanout` parts at every level: per level,
    /// `ceil(parts / lanes)` rounds of a call on the largest part, plus the delay of the parts after the first.
    static func criticalPath(
        items: Int, fanout: Int, perItem: Double, fixed: Double, perPart: Double = 0, lanes: Int
    ) -> Double {
        var time = 0.0
        var size = items
        while size > 1 {
            let parts = min(fanout, size)
            let part = (size + parts - 1) / parts
            let rounds = Double((parts - 1) / lanes + 1)
            time += rounds * (fixed + perItem * Double(part)) + Double(parts - 1) * max(0, perPart)
            size = part
        }
        return time
    }
}

import Foundation
import GRDB

/// Formats a `Date` as GRDB stores it (`yyyy-MM-dd HH:mm:ss.SSS`, UTC, nearest millisecond) with integer
/// arithmetic instead of GRDB's `DateFormatter`, which costs several microseconds per value on Linux: in a batch of
/// thousands of rows that formatting, not SQLite, was the writer's largest per-row cost.
public enum SQLiteDateText {
    /// The text GRDB would store for `date` (proleptic Gregorian years 1583…9999; other dates, where GRDB's formatter
    /// switches to the Julian calendar or widens the year, go through GRDB itself).
    public static func string(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000 + 0.5).rounded(.down)
        guard ms.isFinite, abs(ms) < 2.5e14 else { return String.fromDatabaseValue(date.databaseValue) ?? "" }
        let total = Int64(ms)
        var days = total / 86_400_000
        var msOfDay = total % 86_400_000
        if msOfDay < 0 { msOfDay += 86_400_000; days -= 1 }
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        guard (1583...9999).contains(year) else { return String.fromDatabaseValue(date.databaseValue) ?? "" }
        var bytes = [UInt8](repeating: 0, count: 23)
        func put(_ value: Int64, _ width: Int, at offset: Int) {
            var v = value
            for i in stride(from: offset + width - 1, through: offset, by: -1) {
                bytes[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(year, 4, at: 0); bytes[4] = 45 // -
        put(month, 2, at: 5); bytes[7] = 45
        put(day, 2, at: 8); bytes[10] = 32 // space
        put(msOfDay / 3_600_000, 2, at: 11); bytes[13] = 58 // :
        put(msOfDay / 60_000 % 60, 2, at: 14); bytes[16] = 58
        put(msOfDay / 1000 % 60, 2, at: 17); bytes[19] = 46 // .
        put(msOfDay % 1000, 3, at: 20)
        return String(decoding: bytes, as: UTF8.self)
    }
}

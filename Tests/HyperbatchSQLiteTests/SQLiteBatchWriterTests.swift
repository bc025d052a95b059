import Foundation
import GRDB
import Hyperbatch
import HyperbatchSQLite
import Testing

private struct Entity: Sendable {
    var id: Int
    var hp: Int
    var state: String
}

@Suite struct SQLiteBatchWriterTests {
    private func makeDatabase() throws -> DatabaseQueue {
        let db = try DatabaseQueue()
        try db.write {
            try $0.execute(sql: "CREATE TABLE entities (id INTEGER PRIMARY KEY, state TEXT NOT NULL, hp INTEGER NOT NULL CHECK (hp >= 0))")
        }
        return db
    }

    @Test(.timeLimit(.minutes(1))) func threeBadRowsAmongAThousandFailAlone() async throws {
        let db = try makeDatabase()
        let table = WriterTable<Entity>("entities", operation: .insert)
            .key("id", .int, \.id)
            .column("hp", .int, \.hp)
            .column("state", .jsonb, \.state)
        let writer = try SQLiteBatchWriter(writer: db, table: table)
        let bad: Set<Int> = [17, 500, 999]
        let rows = (0..<1000).reversed().map { Entity(id: $0, hp: bad.contains($0) ? -1 : $0, state: "{}") }
        let results = try await writer.write(rows)
        #expect(results.count == 1000)
        let failedIDs = Set(zip(rows, results).compactMap { row, r -> Int? in
            if case .failure = r { return row.id } else { return nil }
        })
        #expect(failedIDs == bad)
        let (count, sum) = try await db.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM entities")!, try Int.fetchOne(db, sql: "SELECT sum(hp) FROM entities")!)
        }
        #expect(count == 997)
        #expect(sum == (0..<1000).filter { !bad.contains($0) }.reduce(0, +))
    }

    @Test(.timeLimit(.minutes(1))) func updateAndUpsertRenderQuotedParameterizedSQL() async throws {
        let db = try makeDatabase()
        let insert = try SQLiteBatchWriter(writer: db, table: WriterTable<Entity>("entities", operation: .upsert)
            .key("id", .int, \.id).column("hp", .int, \.hp).column("state", .text, \.state))
        _ = try await insert.write([Entity(id: 1, hp: 1, state: "a"), Entity(id: 2, hp: 2, state: "b")])
        _ = try await insert.write([Entity(id: 1, hp: 10, state: "a2")])
        let update = try SQLiteBatchWriter(writer: db, table: WriterTable<Entity>("entities", operation: .update)
            .key("id", .int, \.id).column("hp", .int, \.hp))
        #expect(try SQLiteBatchWriter<Entity>.render(update.table) == #"UPDATE "entities" SET "hp" = ? WHERE "id" = ?"#)
        let results = try await update.write([Entity(id: 2, hp: 20, state: ""), Entity(id: 1, hp: -5, state: "")])
        #expect((try? results[0].get()) != nil)
        #expect((try? results[1].get()) == nil)
        let hps = try await db.read { try Int.fetchAll($0, sql: "SELECT hp FROM entities ORDER BY id") }
        #expect(hps == [10, 20])
    }
}

@Suite struct SQLiteDateTextTests {
    @Test func matchesGRDBStorageText() {
        var generator = SystemRandomNumberGenerator()
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: -0.0005), Date(timeIntervalSince1970: 951_782_400.999),
                     Date(timeIntervalSinceReferenceDate: 0), Date(timeIntervalSince1970: -62_135_596_800)]
        for _ in 0..<2000 { dates.append(Date(timeIntervalSince1970: Double.random(in: -5e10...5e10, using: &generator))) }
        for date in dates {
            #expect(SQLiteDateText.string(date) == String.fromDatabaseValue(date.databaseValue), "\(date.timeIntervalSince1970)")
        }
    }
}

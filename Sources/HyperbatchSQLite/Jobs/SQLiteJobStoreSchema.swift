import GRDB

/// The migrations of ``SQLiteJobStore``'s tables (`hb_job`, `hb_request`, `hb_batch`, `hb_outcome`, `hb_checkpoint`).
enum SQLiteJobStoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("hb-jobs-v1") { db in
            try db.execute(sql: """
                CREATE TABLE hb_job (
                    id TEXT PRIMARY KEY NOT NULL,
                    provider TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    max_attempts INTEGER NOT NULL,
                    label TEXT,
                    state TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    finished_at REAL
                );
                CREATE TABLE hb_request (
                    id INTEGER PRIMARY KEY,
                    job_id TEXT NOT NULL REFERENCES hb_job(id),
                    custom_id TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    model TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    body BLOB NOT NULL,
                    encoded_size INTEGER NOT NULL,
                    app_reference TEXT,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    batch_id INTEGER,
                    updated_at REAL NOT NULL,
                    UNIQUE (job_id, custom_id)
                );
                CREATE INDEX hb_request_by_state ON hb_request (job_id, state, provider, endpoint, model, tenant, id);
                CREATE INDEX hb_request_by_batch ON hb_request (batch_id, custom_id);
                CREATE TABLE hb_response (
                    request_id INTEGER PRIMARY KEY,
                    body BLOB NOT NULL,
                    input_tokens INTEGER,
                    output_tokens INTEGER
                );
                CREATE TABLE hb_batch (
                    id INTEGER PRIMARY KEY,
                    job_id TEXT NOT NULL REFERENCES hb_job(id),
                    provider TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    model TEXT NOT NULL,
                    tenant TEXT NOT NULL,
                    state TEXT NOT NULL,
                    idempotency_tag TEXT NOT NULL UNIQUE,
                    request_count INTEGER NOT NULL,
                    byte_count INTEGER NOT NULL,
                    input_file_id TEXT,
                    provider_batch_id TEXT,
                    outcome TEXT,
                    counts TEXT,
                    output_file_id TEXT,
                    error_file_id TEXT,
                    results_url TEXT,
                    created_at REAL NOT NULL,
                    submitted_at REAL,
                    ended_at REAL,
                    reconciled_at REAL,
                    last_polled_at REAL
                );
                CREATE INDEX hb_batch_by_state ON hb_batch (state, id);
                CREATE TABLE hb_outcome (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    request_id INTEGER NOT NULL,
                    job_id TEXT NOT NULL,
                    created_at REAL NOT NULL
                );
                CREATE INDEX hb_outcome_by_job ON hb_outcome (job_id, seq);
                CREATE TABLE hb_checkpoint (
                    consumer TEXT PRIMARY KEY NOT NULL,
                    seq INTEGER NOT NULL
                );
                """)
        }
        // v2 (bulk performance): the request indexes a million-request job writes on every insert and state change
        // are narrowed. The wide `(job, state, key…, id)` index becomes a partial index of pending requests only
        // (what the dispatcher scans), plus a narrow `(job, state)` for counts; the batch index no longer holds
        // an entry for every unbatched request (a random-order `(NULL, custom_id)` insert per ingested line);
        // in-flight counts per key read a partial index. Result lookups go through `UNIQUE (job_id, custom_id)`.
        migrator.registerMigration("hb-jobs-v2-narrow-indexes") { db in
            try db.execute(sql: """
                DROP INDEX hb_request_by_state;
                DROP INDEX hb_request_by_batch;
                CREATE INDEX hb_request_pending ON hb_request (job_id, provider, endpoint, model, tenant, id) WHERE state = 'pending';
                CREATE INDEX hb_request_by_job_state ON hb_request (job_id, state);
                CREATE INDEX hb_request_by_batch ON hb_request (batch_id) WHERE batch_id IS NOT NULL;
                CREATE INDEX hb_request_in_flight ON hb_request (provider, endpoint, model, tenant) WHERE state IN ('packed','submitted');
                """)
        }
        // v3: responses are appended in arrival order (their own rowid) with a unique index on the request, instead of
        // being keyed by request id: providers return results in their own order, so keyed inserts landed on random
        // pages and rewrote most of the table's tail per transaction; now only the small index is written at random.
        migrator.registerMigration("hb-jobs-v3-append-responses") { db in
            try db.execute(sql: """
                CREATE TABLE hb_response_v3 (
                    seq INTEGER PRIMARY KEY,
                    request_id INTEGER NOT NULL UNIQUE,
                    body BLOB NOT NULL,
                    input_tokens INTEGER,
                    output_tokens INTEGER
                );
                INSERT INTO hb_response_v3 (request_id, body, input_tokens, output_tokens)
                    SELECT request_id, body, input_tokens, output_tokens FROM hb_response ORDER BY request_id;
                DROP TABLE hb_response;
                ALTER TABLE hb_response_v3 RENAME TO hb_response;
                """)
        }
        return migrator
    }
}
